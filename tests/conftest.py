"""Shared test helpers and fixtures: tiny image data, NB201 tables and API files made on the fly (no ../shared)."""

from __future__ import annotations

import random
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


# NB201 table columns -> (API dataset, the set get_more_info reads for them), as nas.benchmarks.NB201Api.COLUMNS
_NB201_SETS = {"cifar10_valid_acc": ("cifar10-valid", "x-valid"), "cifar10_test_acc": ("cifar10", "ori-test"),
               "cifar100_valid_acc": ("cifar100", "x-valid"), "cifar100_test_acc": ("cifar100", "x-test"),
               "imagenet16_valid_acc": ("ImageNet16-120", "x-valid"),
               "imagenet16_test_acc": ("ImageNet16-120", "x-test")}


def write_nb201_pth(path: Path, less: dict[str, dict[str, float]], full: dict[str, dict[str, float]]) -> Path:
    """A NAS-Bench-201 API file built with the API's own classes (ArchResults, ResultsCount) from table rows.

    ``less`` / ``full``: arch string -> {table column: value} of the 12-epoch and 200-epoch tables (our CSV
    format). Every arch of either gets an index; each column becomes the API's result for its dataset and set
    at every epoch, so ``get_more_info(..., iepoch=None)`` returns it.
    """
    import torch
    from nas_201_api import ArchResults, ResultsCount

    archs = sorted(set(less) | set(full))

    def results(index: int, arch: str, row: dict[str, float] | None, epochs: int) -> dict:
        res = ArchResults(index, arch)
        by_dataset: dict[str, dict[str, float]] = {}
        for column, value in (row or {}).items():
            dataset, setname = _NB201_SETS[column]
            by_dataset.setdefault(dataset, {})[setname] = float(value)
        for dataset, sets in by_dataset.items():
            count = ResultsCount(dataset, None, {e: 100.0 for e in range(epochs)}, {e: 0.01 for e in range(epochs)},
                                 params=0.1, flop=10.0, arch_config={"arch_str": arch, "channel": 16, "num_cells": 5,
                                                                     "class_num": 10}, seed=777, epochs=epochs,
                                 latency=None)
            for setname, value in sets.items():
                count.update_eval({f"{setname}@{e}": value for e in range(epochs)},
                                  {f"{setname}@{e}": 1.0 for e in range(epochs)},
                                  {f"{setname}@{e}": 0.5 for e in range(epochs)})
            res.update(dataset, 777, count)
        return res.state_dict()

    torch.save({"meta_archs": archs, "evaluated_indexes": list(range(len(archs))), "total_archs": len(archs),
                "arch2infos": {i: {"less": results(i, a, less.get(a), 12), "full": results(i, a, full.get(a), 200)}
                               for i, a in enumerate(archs)}}, path)
    return path


def make_table(path, n=40, seed=0, time_col=False):
    """A CSV of ``n`` distinct NB201 cells with made-up metrics."""
    from nas.spaces import NB201Space

    rng = random.Random(seed)
    space = NB201Space()
    archs = list(space.enumerate())
    rng.shuffle(archs)
    archs = archs[:n]
    lines = ["arch_index,arch_str,cifar10_valid_acc,cifar10_test_acc" + (",cifar10_train_time" if time_col else "")]
    for i, a in enumerate(archs):
        v = rng.uniform(10, 90)
        lines.append(f"{i},{a},{v:.4f},{v + 1:.4f}" + (f",{i + 100.0}" if time_col else ""))
    path.write_text("\n".join(lines) + "\n")
    return archs


@pytest.fixture(scope="session")
def full_table(tmp_path_factory):
    """A synthetic table covering all 15,625 cells (searches sample anywhere in the space)."""
    path = tmp_path_factory.mktemp("tab") / "t.csv"
    make_table(path, n=15625)
    return path
