"""evaluate_estimators.py and zero_shot.py main([...]) on tiny files, and the BPE xlsx check (slow)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import evaluate_estimators
import zero_shot
from nas.cli import run_cli

XLSX = Path(__file__).resolve().parents[2] / "shared" / "bpe" / "Search_Hyperparameters_Results.xlsx"
OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]


def _nb201(i: int) -> str:
    """A distinct NB201 arch string for each i < 5**6."""
    ops = [OPS[(i // 5 ** k) % 5] for k in range(6)]
    return f"|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|"


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    archs = [_nb201(i * 7 + 1) for i in range(20)]
    truth = _write_csv(tmp_path / "truth.csv", ["arch_index", "arch_str", "cifar10_test_acc"],
                       [[i, a, 50.0 + i] for i, a in enumerate(archs)])
    # 'good' ranks like the truth, 'bad' reverses it; 'seconds' must not be taken for an estimator
    est = _write_csv(tmp_path / "scores.csv", ["arch_str", "good", "bad", "seconds"],
                     [[a, float(i) ** 2, -float(i), 1.0] for i, a in enumerate(archs)])
    return est, truth


def test_csv_estimates_every_column(tiny, tmp_path, capsys):
    est, truth = tiny
    out = tmp_path / "eval.json"
    assert evaluate_estimators.main(["--estimates", str(est), "--truth", str(truth), "--out", str(out),
                                     "--plot", str(tmp_path / "s.png")]) == 0
    rows = json.loads(out.read_text())
    assert [r["setting"] for r in rows] == ["good", "bad"]
    good, bad = rows
    for key in ("setting", "kendall_tau", "spearman", "pearson", "p_at_top_k", "p_at_bottom_k", "br_at_k", "wr_at_k"):
        assert key in good
    assert good["spearman"] == pytest.approx(1.0) and bad["kendall_tau"] == pytest.approx(-1.0)
    assert good["p_at_top_k"]["10%"] == 1.0 and bad["br_rank_at_k"]["10%"] == 19
    assert (tmp_path / "s.png").stat().st_size > 0
    assert "good" in capsys.readouterr().out
    # nothing written is lost: a second run refuses to overwrite
    assert run_cli(evaluate_estimators.main, ["--estimates", str(est), "--truth", str(truth), "--out", str(out)]) == 2


def test_json_records_and_one_column(tiny, tmp_path):
    _, truth = tiny
    recs = {"records": [{"index": i, "genotype": _nb201(i * 7 + 1), "valid_acc": 90.0 - i} for i in range(10)]}
    res = tmp_path / "results.json"
    res.write_text(json.dumps(recs))
    out = tmp_path / "e.json"
    assert evaluate_estimators.main(["--estimates", str(res), "--truth", str(truth), "--out", str(out),
                                     "--ks", "10", "50"]) == 0
    (row,) = json.loads(out.read_text())
    assert row["setting"] == "valid_acc" and row["n"] == 10 and row["spearman"] == pytest.approx(-1.0)
    assert set(row["p_at_top_k"]) == {"10%", "50%"}


@pytest.mark.parametrize("argv_tail, msg", [
    (["--est-col", "nope"], "no numeric column 'nope'"),
    (["--truth-col", "cifar100_test_acc"], "no numeric column 'cifar100_test_acc'"),
    (["--ks", "0"], "percents"),
])
def test_bad_inputs_one_line_nonzero(tiny, capsys, argv_tail, msg):
    est, truth = tiny
    code = run_cli(evaluate_estimators.main, ["--estimates", str(est), "--truth", str(truth), *argv_tail])
    err = capsys.readouterr().err
    assert code != 0 and msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_arch_and_missing_file(tmp_path, tiny, capsys):
    _, truth = tiny
    bad = _write_csv(tmp_path / "bad.csv", ["arch_str", "x"], [["|conv_9x9~0|+|x|", 1.0], [_nb201(1), 2.0]])
    assert run_cli(evaluate_estimators.main, ["--estimates", str(bad), "--truth", str(truth)]) == 1
    assert "row 2" in capsys.readouterr().err
    assert run_cli(evaluate_estimators.main, ["--estimates", str(tmp_path / "no.csv"), "--truth", str(truth)]) == 1
    assert "no such file" in capsys.readouterr().err


def _tiny_folder(root: Path, n_per_class: int = 3) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in ("a", "b"):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n_per_class):
                Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(d / f"{i}.jpg")
    return root


def test_zero_shot_cli_writes_resumes_and_feeds_evaluate(tmp_path, capsys):
    pytest.importorskip("models.networks", reason="models/networks.py not there yet")
    data = _tiny_folder(tmp_path / "data")
    archs = tmp_path / "archs.txt"
    archs.write_text("# three cells\n" + "\n".join(_nb201(i) for i in (1, 500, 9000)) + "\n")
    out = tmp_path / "zs.csv"
    argv = ["--space", "nb201", "--archs", str(archs), "--dataset", "folder", "--data_path", str(data),
            "--batch_size", "4", "--seeds", "1", "--init_channels", "4", "--layers", "1",
            "--measures", "synflow", "params", "relu_logdet", "--device", "cpu", "--out", str(out)]
    assert zero_shot.main(argv) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["arch_str"] for r in rows] == [_nb201(i) for i in (1, 500, 9000)]
    assert set(rows[0]) == {"arch_str", "synflow", "params", "relu_logdet", "seconds"}
    assert zero_shot.main(argv) == 0  # resume: nothing re-scored
    assert len(list(csv.DictReader(out.open()))) == 3
    truth = _write_csv(tmp_path / "t.csv", ["arch_str", "cifar10_test_acc"],
                       [[_nb201(i), 50.0 + k] for k, i in enumerate((1, 500, 9000))])
    assert evaluate_estimators.main(["--estimates", str(out), "--truth", str(truth), "--ks", "50"]) == 0
    # bad input: a malformed line names file:line
    archs.write_text(_nb201(1) + "\n|bogus|\n")
    assert run_cli(zero_shot.main, [*argv[:-1], str(tmp_path / "z2.csv")]) == 1
    assert "archs.txt:2" in capsys.readouterr().err


@pytest.mark.slow
def test_bpe_xlsx_spearman_matches_sheet_correlation():
    if not XLSX.is_file():
        pytest.skip(f"BPE trails workbook not found at {XLSX}")
    from nas import bpe_trails

    trails = bpe_trails.read_trails(XLSX)
    assert len(trails.tasks) == 32 and len(trails.truth) == 100
    rows = bpe_trails.evaluate_trails(trails)
    for r in rows:  # the sheet's 'Correlation' row is Spearman's rho, given to 3+ decimals
        assert abs(r["spearman"] - r["sheet_correlation"]) < 5e-4, r["setting"]
    imp = bpe_trails.knob_importance(rows, seed=0)
    assert set(imp) == set(bpe_trails.KNOBS) and sum(imp.values()) == pytest.approx(1.0)


def test_zero_shot_cli_oneshot_column(tmp_path):
    sn = pytest.importorskip("nas.supernet_search", reason="nas/supernet_search.py not there yet")
    import dataclasses

    import torch

    from nas.checkpoint import save_checkpoint

    data = _tiny_folder(tmp_path / "data", n_per_class=4)
    cfg = sn.SearchConfig(space="nb201", init_channels=4, layers=1, seed=0, train_portion=0.5)
    model = sn.build_search_model(cfg, 2, 3, torch.device("cpu"))
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoint.pt", {"epoch": 1, "config": dataclasses.asdict(cfg),
                                            "model": model.state_dict()})
    archs = tmp_path / "archs.txt"
    archs.write_text(_nb201(3) + "\n" + _nb201(77) + "\n")
    out = tmp_path / "os.csv"
    assert zero_shot.main(["--space", "nb201", "--archs", str(archs), "--dataset", "folder", "--data_path",
                           str(data), "--measures", "--oneshot", str(run), "--device", "cpu", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["arch_str", "oneshot", "seconds"]
    # 4 held-out images (half of 8): accuracy is a multiple of 25%
    assert all(float(r["oneshot"]) in (0.0, 25.0, 50.0, 75.0, 100.0) for r in rows)
