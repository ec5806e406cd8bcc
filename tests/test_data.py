"""The data module: folder datasets, limits and splits, clear errors, and batch augmentation on tensors."""

from __future__ import annotations

import pytest
import torch

from nas import data as nas_data
from nas.cli import NASError
from nas.data import TensorLoader, load_dataset, resize_uint8, resolve_dataset


def test_folder_dataset_loads_and_limits(tiny_folder):
    d = load_dataset("folder", tiny_folder)
    assert d.train_x.dtype == torch.uint8 and d.train_x.shape == (24, 3, 8, 8)
    assert d.valid_x.shape == (12, 3, 8, 8) and d.n_classes == 3
    assert sorted(d.train_y.unique().tolist()) == [0, 1, 2]
    small = load_dataset("folder", tiny_folder, image_size=4, limit_train=5, limit_valid=3)
    assert small.train_x.shape == (5, 3, 4, 4) and len(small.valid_y) == 3
    assert len(small.train_y.unique()) > 1  # the first N images span classes
    split = load_dataset("folder", tiny_folder, valid=0.75)
    assert len(split.train_y) == 18 and len(split.valid_y) == 6
    assert len(list((tiny_folder / ".nas_cache").glob("train-*.pt"))) == 1
    again = load_dataset("folder", tiny_folder)  # from the cache: same tensors
    assert torch.equal(again.train_x, d.train_x) and torch.equal(again.train_y, d.train_y)


def test_missing_data_names_folder(tmp_path):
    with pytest.raises(NASError, match="train/<class>"):
        load_dataset("folder", tmp_path / "nowhere")
    with pytest.raises(NASError, match="folder does not exist"):
        load_dataset("cifar10", tmp_path / "absent", download=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(NASError, match="cifar-10-batches-py"):
        load_dataset("cifar10", tmp_path / "empty", download=False)
    with pytest.raises(ValueError, match="allowed: cifar10"):
        load_dataset("imagenet", tmp_path)


def test_resize_is_exact_for_constant_images():
    x = torch.full((2, 3, 8, 8), 77, dtype=torch.uint8)
    assert torch.equal(resize_uint8(x, 4), torch.full((2, 3, 4, 4), 77, dtype=torch.uint8))


def _images(n=16, size=8):
    return torch.arange(n * 3 * size * size, dtype=torch.int64).remainder(251).to(torch.uint8).view(n, 3, size, size)


def test_loader_without_augmentation_normalises_in_order():
    x, y = _images(), torch.arange(16)
    loader = TensorLoader(x, y, batch_size=5, mean=(0.0,) * 3, std=(1.0,) * 3)
    batches = list(loader)
    assert len(batches) == len(loader) == 4
    assert torch.allclose(torch.cat([b for b, _ in batches]), x.float() / 255.0)
    assert torch.equal(torch.cat([t for _, t in batches]), y)


def test_crop_and_flip_match_reference():
    x, y = _images(8), torch.arange(8)
    loader = TensorLoader(x, y, batch_size=8, augment=True, mean=(0.0,) * 3, std=(1.0 / 255.0,) * 3, seed=3)
    xb, yb = next(iter(loader))
    # rebuild each sample by hand: zero-pad by size/8, crop at some offset, maybe flip; one must match exactly
    p = loader.pad
    padded = torch.nn.functional.pad(x.float(), (p, p, p, p))
    for img, label in zip(xb, yb):
        cands = [padded[label, :, i:i + 8, j:j + 8] for i in range(2 * p + 1) for j in range(2 * p + 1)]
        cands += [c.flip(-1) for c in cands]
        assert any(torch.equal(img, c) for c in cands)


def test_loader_is_deterministic_per_epoch_and_cutout_zeroes():
    x, y = _images(), torch.arange(16)
    a = TensorLoader(x, y, batch_size=4, shuffle=True, augment=True, cutout=4, seed=1)
    b = TensorLoader(x, y, batch_size=4, shuffle=True, augment=True, cutout=4, seed=1)
    a.set_epoch(5)
    b.set_epoch(5)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    c = TensorLoader(torch.full((4, 3, 8, 8), 200, dtype=torch.uint8), torch.zeros(4, dtype=torch.long),
                     batch_size=4, cutout=4, mean=(0.0,) * 3, std=(1.0,) * 3)
    xb, _ = next(iter(c))
    zeros = (xb == 0).all(dim=1).flatten(1).sum(1)
    assert ((zeros >= 4) & (zeros <= 16)).all()  # a 4x4 hole, clipped at the border to at least 2x2


def test_cache_follows_the_file_list(tiny_folder):
    full = load_dataset("folder", tiny_folder, valid="none")
    caches = list((tiny_folder / ".nas_cache").glob("train-*.pt"))
    assert len(full.train_y) == 24 and len(caches) == 1
    victim = sorted((tiny_folder / "train" / "class1").iterdir())[0]
    victim.unlink()  # the folder's own mtime changes, train/'s does not: the old check missed this
    fewer = load_dataset("folder", tiny_folder, valid="none")
    assert len(fewer.train_y) == 23
    new = list((tiny_folder / ".nas_cache").glob("train-*.pt"))
    assert len(new) == 1 and new != caches  # rebuilt under the new fingerprint, the stale one removed


def test_limit_decodes_only_the_kept_images(tiny_folder, monkeypatch):
    whole = load_dataset("folder", tiny_folder, valid=0.5)  # also writes the cache
    for p in (tiny_folder / ".nas_cache").iterdir():
        p.unlink()
    calls = []
    real = nas_data._decode
    monkeypatch.setattr(nas_data, "_decode", lambda path: calls.append(path) or real(path))
    small = load_dataset("folder", tiny_folder, valid=0.5, limit_train=5, limit_valid=3)
    assert len(calls) == 8  # 5 + 3 images decoded, not 24
    assert torch.equal(small.train_x, whole.train_x[:5]) and torch.equal(small.valid_x, whole.valid_x[:3])
    assert torch.equal(small.valid_y, whole.valid_y[:3])
    assert not list((tiny_folder / ".nas_cache").glob("*.pt"))  # a partial decode is not cached as the split
    calls.clear()
    test = load_dataset("folder", tiny_folder, limit_train=4, limit_valid=2)
    assert len(calls) == 6 and len(test.valid_y) == 2


def test_auto_and_named_datasets_read_what_is_there(tiny_folder, tmp_path):
    assert resolve_dataset("auto", tiny_folder) == "folder"
    assert resolve_dataset("auto", tmp_path / "nothing") == "cifar10"  # the download
    (tmp_path / "tv" / "cifar-10-batches-py").mkdir(parents=True)
    assert resolve_dataset("auto", tmp_path / "tv") == "cifar10"
    assert resolve_dataset("SVHN", tiny_folder) == "svhn"
    auto = load_dataset("auto", tiny_folder, limit_train=6)
    assert auto.name == "folder" and auto.n_classes == 3
    svhn = load_dataset("svhn", tiny_folder, limit_train=6)  # the folder layout under SVHN's name and statistics
    assert svhn.name == "svhn" and svhn.mean == nas_data.STATS["svhn"][0]
    assert torch.equal(svhn.train_x, auto.train_x)
