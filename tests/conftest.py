"""Shared fixtures: tiny image datasets made on the fly (no download, no ../shared)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def make_folder_dataset(root: Path, *, n_classes: int = 3, per_class: int = 8, size: int = 8, seed: int = 0) -> Path:
    """``root/{train,test}/<class>/*.png`` of random images whose colour depends on the class."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), ("test", max(2, per_class // 2))):
        for c in range(n_classes):
            d = root / split / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
                img[..., c % 3] += np.uint8(120)  # learnable signal: the class colour channel
                Image.fromarray(img).save(d / f"{i:04d}.png")
    return root


@pytest.fixture
def tiny_folder(tmp_path: Path) -> Path:
    return make_folder_dataset(tmp_path / "tiny")


@pytest.fixture
def one_thread():
    """Run a test with one torch intra-op thread, restoring the setting afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_image_data(n_train: int = 32, n_valid: int = 16, size: int = 8, n_classes: int = 3, seed: int = 0):
    """A tiny random ``nas.data.ImageData`` (uint8 images) for supernet and training tests."""
    import torch

    from nas.data import ImageData

    g = torch.Generator().manual_seed(seed)
    tx = torch.randint(0, 256, (n_train, 3, size, size), dtype=torch.uint8, generator=g)
    vx = torch.randint(0, 256, (n_valid, 3, size, size), dtype=torch.uint8, generator=g)
    ty = torch.randint(0, n_classes, (n_train,), generator=g)
    vy = torch.randint(0, n_classes, (n_valid,), generator=g)
    return ImageData("tiny", tx, ty, vx, vy, n_classes, (0.5,) * 3, (0.25,) * 3)
