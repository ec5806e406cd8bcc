"""Hints are complete commands; result files keep one shape on every space (BPE's keys, genotypes as text)."""

from __future__ import annotations

import json

import pytest

import augment
import parse_json
import run_evolution
import run_rl
from genotypes import NAMED_GENOTYPES
from nas.io import get_logger


@pytest.mark.parametrize("space,encoding", [("nb201", "auto"), ("darts", "auto"), ("s3", "pair")])
def test_best_genotype_is_text_on_every_space(tmp_path, tiny_folder, one_thread, space, encoding):
    common = ["--space", space, "--encoding", encoding, "--estimator", "zeroshot:params", "--dataset", "folder",
              "--data_path", str(tiny_folder), "--n_iters", "3", "--quiet", "--device", "cpu"]
    for main, out in ((run_rl.main, "rl"), (run_evolution.main, "ea")):
        assert main(common + ["--output_path", str(tmp_path / out)]) == 0
        run = json.loads((tmp_path / out / "run_zeroshot-params_0.json").read_text())
        assert all(isinstance(g, str) for g in run["genotype"] + run["best_genotype"])
        assert run["best_genotype"][0] == run["genotype"][run["best_index"]]
    # parse_json.py's pick is drawn next to the run
    assert parse_json.main(["--method", "RL", "--file", str(tmp_path / "rl" / "run_zeroshot-params_0.json")]) == 0
    assert (tmp_path / "rl" / "cell_zeroshot-params_0.png").is_file()


def test_augment_hint_without_name_is_a_complete_command(tmp_path, tiny_folder, one_thread):
    # search_evolutionary.py prints `python augment.py --arch "<genotype>" --param BPE1` as its hint
    text = str(NAMED_GENOTYPES["DARTS_V2"])
    args = augment.build_parser().parse_args(["--arch", text, "--param", "BPE1"])
    assert augment.default_name(args).startswith("arch-") and augment.default_name(args).endswith("_BPE1")
    toy = ["--dataset", "folder", "--data_path", str(tiny_folder), "--save_path", str(tmp_path), "--epochs", "1",
           "--layers", "3", "--init_channels", "4", "--image_size", "8", "--batch_size", "8", "--quiet"]
    assert augment.main(["--arch", "DARTS_V2", "--param", "BPE1", *toy]) == 0
    assert json.loads((tmp_path / "DARTS_V2_BPE1" / "results.json").read_text())["records"][0]["index"] == 0


def test_a_log_line_prints_once_whatever_the_logger_name(capsys):
    """PertNAS and write_ffcv.py log through get_logger("nas"), the package's own logger."""
    for name in ("nas", "nas.pertnas.run"):
        get_logger(name).info("line of %s", name)
        assert capsys.readouterr().err.count(f"line of {name}") == 1
    get_logger("nas", quiet=True)
