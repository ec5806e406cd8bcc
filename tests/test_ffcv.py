"""FFCV path: .beton round trip (images and labels), the PertNAS pipeline, and a search from --train_path."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from nas.cli import NASError
from nas.data import ImageData
from nas.ffcv_data import ffcv_available, ffcv_loader, read_meta, require_ffcv, write_split_files

needs_ffcv = pytest.mark.skipif(not ffcv_available(),
                                reason="ffcv not importable (install with .ci/install-ffcv.sh)")


# one intra-op thread (conftest.one_thread): on a busy shared CPU, spinning threads make tiny nets 10x slower
pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny(n_train: int = 24, n_test: int = 12, size: int = 8) -> ImageData:
    """Random uint8 images whose labels are recoverable from pixel 0 (so a reorder would be caught)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n_train + n_test, 3, size, size), dtype=torch.uint8, generator=g)
    y = torch.arange(n_train + n_test) % 3
    return ImageData("tiny", x[:n_train], y[:n_train], x[n_train:], y[n_train:], 3, (0.5, 0.5, 0.5),
                     (0.25, 0.25, 0.25))


def test_missing_ffcv_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ffcv", None)  # as if not installed
    with pytest.raises(NASError, match="install-ffcv.sh"):
        require_ffcv()
    assert not ffcv_available()


@needs_ffcv
def test_beton_round_trip_images_and_labels(tmp_path):
    data = _tiny()
    meta = write_split_files(tmp_path, data)
    assert meta["n_classes"] == 3 and read_meta(tmp_path)["n_test"] == 12
    with pytest.raises(NASError, match="already exist"):
        write_split_files(tmp_path, data)  # never clobbers
    loader = ffcv_loader(tmp_path, "test", batch_size=5, device="cpu", train=False, num_workers=1)
    xs, ys = zip(*[(x.clone(), y.clone()) for x, y in loader])
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.shape == (12, 3, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    # undo the normalisation: raw write mode keeps every pixel exactly
    pixels = (x * 0.25 * 255 + 0.5 * 255).round().to(torch.uint8)
    assert torch.equal(pixels, data.valid_x) and torch.equal(y, data.valid_y)
    train = ffcv_loader(tmp_path, "train", batch_size=8, device="cpu", train=True, num_workers=1, limit=16)
    batches = [(x.clone(), y.clone()) for x, y in train]
    assert len(batches) == 2 and all(b[0].shape == (8, 3, 8, 8) for b in batches)
    seen = torch.cat([b[1] for b in batches]).sort().values
    assert torch.equal(seen, data.train_y[:16].sort().values)  # --limit_train keeps the first 16


@needs_ffcv
def test_search_runs_from_train_path(tmp_path, capsys):
    import search_evolutionary

    write_split_files(tmp_path / "betons", _tiny(n_train=16, n_test=8))
    argv = ["--train_path", str(tmp_path / "betons"), "--save", str(tmp_path / "run"), "--npop", "1",
            "--distributed", "--batch_size", "8", "--epochs_per_step", "1", "--finetune_steps", "1",
            "--finetune_extra", "0,0,0", "--init_channels", "4", "--layers", "2", "--device", "cpu",
            "--workers", "1", "--threads", "1"]
    assert search_evolutionary.main(argv) == 0
    res = json.loads((tmp_path / "run/search-try/results.json").read_text())  # shared valuation (default)
    assert res["data"] == "ffcv" and res["data_info"]["n_classes"] == 3
    member = json.loads((tmp_path / "run/search-try/member0/valuation.json").read_text())
    assert member["data"] == "ffcv" and res["valuation_matrix"] == member["valuation_matrix"]
    assert "best genotype" in capsys.readouterr().out
