"""The official nas_201_api over a .pth file built with its own classes: the strategies and search/project
read it through nas.benchmarks exactly as they read our CSV table (the same rows give the same numbers)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import write_nb201_pth

import project
import run_evolution
import search
from nas.benchmarks import NB201Api
from nas.cli import run_cli
from nas.errors import NASError
from nas.spaces import NB201Space

pytest.importorskip("nas_201_api")
COLS = ("cifar10_valid_acc", "cifar10_test_acc")


def _tables(tmp_path):
    """Made-up 12-epoch and 200-epoch tables over the whole space (our CSV format)."""
    archs = list(NB201Space().enumerate())
    rng = np.random.default_rng(0)
    out = []
    for name, top in (("t12.csv", 80.0), ("t200.csv", 94.0)):
        df = pd.DataFrame({"arch_str": archs, **{c: np.round(rng.uniform(10, top, len(archs)), 3) for c in COLS}})
        df.to_csv(tmp_path / name, index=False)
        out.append(df.set_index("arch_str"))
    return out


def _rows(df: pd.DataFrame, archs) -> dict[str, dict[str, float]]:
    key = NB201Space().key
    return {key(a): {c: float(df.at[key(a), c]) for c in COLS} for a in archs}


def test_strategy_and_search_read_the_api_file_like_the_table(tmp_path, tiny_folder, one_thread):
    t12, t200 = _tables(tmp_path)
    evo = ["--space", "nb201", "--n_iters", "12", "--pop_size", "4", "--sample_size", "2", "--seed", "1",
           "--metric", "cifar10_valid_acc", "--quiet"]
    assert run_evolution.main(evo + ["--benchmark", str(tmp_path / "t12.csv"), "--output_path",
                                     str(tmp_path / "ea_csv")]) == 0
    ref = json.loads((tmp_path / "ea_csv" / "run_t12_0.json").read_text())

    # the search on the table, then its projection: every cell they report is a row of the API file
    common = ["--data_path", str(tiny_folder), "--device", "cpu", "--threads", "1", "--quiet", "--no_tensorboard"]
    toy = ["--space", "nb201", "--method", "darts", "--epochs", "2", "--layers", "1", "--init_channels", "4",
           "--image_size", "8", "--batch_size", "8", "--seed", "0"] + common
    bench = ["--benchmark", str(tmp_path / "t12.csv"), "--truth", str(tmp_path / "t200.csv")]
    assert search.main(toy + bench + ["--name", "csv", "--save_path", str(tmp_path)]) == 0
    assert project.main(["--resume_expid", str(tmp_path / "csv"), "--proj_intv", "0", *bench, *common]) == 0
    s_csv = json.loads((tmp_path / "csv" / "search.json").read_text())
    p_csv = json.loads((tmp_path / "csv" / "projection.json").read_text())

    cells = set(ref["genotype"]) | {h["genotype"] for h in s_csv["history"]} | {p_csv["genotype"]}
    extra = list(NB201Space().enumerate())[:3]  # rows nobody asks for
    pth = write_nb201_pth(tmp_path / "NAS-Bench-201-tiny.pth", _rows(t12, [*cells, *extra]),
                          _rows(t200, [*cells, *extra]))
    api = NB201Api(pth, trust_pickle=True)
    some = sorted(cells)[0]
    assert api.query(some, "cifar10_test_acc") == pytest.approx(t12.at[NB201Space().key(some), "cifar10_test_acc"])
    with pytest.raises(NASError, match="not in the NAS-Bench-201 API file"):
        api.index(next(a for a in NB201Space().enumerate() if NB201Space().key(a) not in cells | set(extra)))

    # the strategy: the same evaluations and values from the API file
    assert run_evolution.main(evo + ["--benchmark", str(pth), "--trust_benchmark_pickle", "--output_path",
                                     str(tmp_path / "ea_pth")]) == 0
    got = json.loads((tmp_path / "ea_pth" / "run_NAS-Bench-201-tiny_0.json").read_text())
    assert got["genotype"] == ref["genotype"] and got["val_acc"] == pytest.approx(ref["val_acc"])
    assert isinstance(got["best_genotype"][0], str)

    # search.py and project.py: the same signal (12 epochs) and truth (200 epochs) per cell
    pbench = ["--benchmark", str(pth), "--truth", str(pth), "--trust_benchmark_pickle"]
    assert search.main(toy + pbench + ["--name", "pth", "--save_path", str(tmp_path)]) == 0
    assert project.main(["--resume_expid", str(tmp_path / "pth"), "--proj_intv", "0", *pbench, *common]) == 0
    s_pth = json.loads((tmp_path / "pth" / "search.json").read_text())
    p_pth = json.loads((tmp_path / "pth" / "projection.json").read_text())
    for a, b in zip(s_csv["history"], s_pth["history"], strict=True):
        assert a["genotype"] == b["genotype"]
        assert (b["bench_signal"], b["bench_truth"]) == pytest.approx((a["bench_signal"], a["bench_truth"]))
    for k in ("bench_signal", "bench_truth", "argmax_bench_signal", "argmax_bench_truth"):
        assert p_pth[k] == pytest.approx(p_csv[k]) and p_pth[k] is not None, k
    assert p_pth["benchmarks"]["bench_truth"] == "NAS-Bench-201-tiny.pth:cifar10_test_acc"
    # without the opt-in the pickle is refused, with a one-line hint
    assert run_cli(search.main, toy + ["--benchmark", str(pth), "--name", "x", "--save_path", str(tmp_path)]) == 2
