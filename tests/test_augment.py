"""augment.py end to end on tiny data: results, resume after a kill without retraining, bad input."""

from __future__ import annotations

import json

import pytest
import torch

import augment
import nas.augment
import nas.train
import random_darts_generator
from genotypes import read_genotype_file
from nas.data import load_dataset
from param_setting import BPE1


class SimulatedKill(RuntimeError):
    """Stands for a SIGKILL mid-run (pytest reserves KeyboardInterrupt for itself)."""


TINY = ["--param", "BPE1", "--epochs", "2", "--layers", "3", "--init_channels", "4", "--image_size", "8",
        "--batch_size", "8", "--device", "cpu", "--dataset", "folder", "--quiet"]


@pytest.fixture
def cells(tmp_path):
    f = tmp_path / "cells.txt"
    assert random_darts_generator.main(["--num", "3", "--saveto", str(f), "--seed", "1"]) == 0
    return f


def _run(tiny_folder, tmp_path, cells, *extra):
    return augment.main(["--name", "run", "--file", str(cells), "--data_path", str(tiny_folder),
                         "--save_path", str(tmp_path / "exp"), *TINY, *extra])


def test_augment_writes_records_and_resumes_without_retraining(tiny_folder, tmp_path, cells, monkeypatch):
    calls = []
    real = nas.train.train_architecture

    def counting(arch, **kw):
        calls.append(str(arch))
        if len(calls) == 2:  # simulate a kill while the second genotype trains, after its first epoch
            kw["budget"] = kw["budget"].replace(epochs=1)
            real(arch, **kw)
            raise SimulatedKill("simulated kill")
        return real(arch, **kw)

    monkeypatch.setattr(nas.augment, "train_architecture", counting)
    with pytest.raises(SimulatedKill, match="simulated kill"):
        _run(tiny_folder, tmp_path, cells)
    run = tmp_path / "exp" / "run"
    doc = json.loads((run / "results.json").read_text())
    assert [r["index"] for r in doc["records"]] == [0]
    assert (run / "arch_001" / "checkpoint.pt").exists()  # the interrupted genotype kept its epoch checkpoint

    calls.clear()
    monkeypatch.setattr(nas.augment, "train_architecture", real)
    seen = []

    def recording(arch, **kw):
        seen.append(str(arch))
        return real(arch, **kw)

    monkeypatch.setattr(nas.augment, "train_architecture", recording)
    assert _run(tiny_folder, tmp_path, cells) == 0
    genos = [str(g) for g in read_genotype_file(cells)]
    assert seen == genos[1:]  # genotype 0 is not retrained
    doc = json.loads((run / "results.json").read_text())
    assert [r["index"] for r in doc["records"]] == [0, 1, 2]
    rec = doc["records"][1]
    assert [h["epoch"] for h in rec["history"]] == [1, 2]  # epoch 1 came from the checkpoint
    for key in ("genotype", "valid_acc", "best_valid_acc", "params", "flops", "seconds"):
        assert key in rec
    assert 0.0 <= rec["valid_acc"] <= 100.0
    assert doc["meta"]["config"]["budget"]["epochs"] == 2 and doc["meta"]["seed"] == 2
    assert "torch" in doc["meta"]["versions"]
    assert (run / "config.json").exists() and (run / "run.log").exists() and any((run / "tb").iterdir())
    seen.clear()
    assert _run(tiny_folder, tmp_path, cells) == 0 and seen == []  # a finished run trains nothing


def test_resumed_training_equals_uninterrupted(tiny_folder, tmp_path, monkeypatch):
    data = load_dataset("folder", tiny_folder, image_size=8)
    budget = BPE1.replace(epochs=2, layers=3, init_channels=4, image_size=8, batch_size=8)
    arch = read_genotype_file(_write_one(tmp_path))[0]
    kw = dict(space_kind="darts", data=data, device=torch.device("cpu"), seed=7)
    full = nas.train.train_architecture(arch, budget=budget, workdir=tmp_path / "a", **kw)
    real_save = nas.train.save_checkpoint

    def save_then_die(path, state):  # a kill right after the first epoch's checkpoint
        real_save(path, state)
        raise SimulatedKill("simulated kill")

    monkeypatch.setattr(nas.train, "save_checkpoint", save_then_die)
    with pytest.raises(SimulatedKill, match="simulated kill"):
        nas.train.train_architecture(arch, budget=budget, workdir=tmp_path / "b", **kw)
    monkeypatch.setattr(nas.train, "save_checkpoint", real_save)
    state = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1
    resumed = nas.train.train_architecture(arch, budget=budget, workdir=tmp_path / "b", **kw)
    assert [h["valid_acc"] for h in resumed["history"]] == [h["valid_acc"] for h in full["history"]]
    assert resumed["history"][-1]["train_loss"] == pytest.approx(full["history"][-1]["train_loss"], rel=1e-6)


def _write_one(tmp_path):
    f = tmp_path / "one.txt"
    random_darts_generator.main(["--num", "1", "--saveto", str(f), "--seed", "3"])
    return f


def test_bad_inputs_exit_nonzero_with_one_line(tiny_folder, tmp_path, cells, capsys):
    from nas.cli import run_cli

    def cli(*args):
        return run_cli(augment.main, ["--name", "x", "--save_path", str(tmp_path / "exp"), *args])

    assert cli("--file", str(cells), "--data_path", str(tiny_folder), "--dataset", "folder", "--param", "BPE9") == 2
    assert "allowed: BPE1, BPE2, DARTS" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text(cells.read_text().splitlines()[0] + "\nGenotype(normal=[[('conv_11', 0)]], reduce=[])\n")
    assert cli("--file", str(bad), "--data_path", str(tiny_folder), "--dataset", "folder") == 1
    err = capsys.readouterr().err
    assert "bad.txt:2:" in err and "conv_11" in err and "Traceback" not in err and err.count("\n") == 1
    assert cli("--file", str(cells), "--data_path", str(tmp_path / "none"), "--dataset", "folder") == 1
    assert "train/<class>" in capsys.readouterr().err
    # an existing run with another budget is refused, and left as it was
    assert _run(tiny_folder, tmp_path, cells, "--first", "1", "--epochs", "1") == 0
    before = (tmp_path / "exp" / "run" / "results.json").read_text()
    code = run_cli(augment.main, ["--name", "run", "--file", str(cells), "--data_path", str(tiny_folder),
                                  "--save_path", str(tmp_path / "exp"), *TINY, "--first", "1", "--lr", "0.5"])
    # one run-folder contract for every tool: another setting under an existing name is a usage error (2)
    assert code == 2 and "other settings (budget.epochs: 1 -> 2)" in capsys.readouterr().err
    assert (tmp_path / "exp" / "run" / "results.json").read_text() == before


def test_random_generator_is_seeded_and_safe(tmp_path):
    a, b, c = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    assert random_darts_generator.main(["--num", "20", "--saveto", str(a), "--seed", "5"]) == 0
    random_darts_generator.main(["--num", "20", "--saveto", str(b), "--seed", "5"])
    random_darts_generator.main(["--num", "20", "--saveto", str(c), "--seed", "6"])
    assert a.read_text() == b.read_text() != c.read_text()
    genos = read_genotype_file(a)
    assert len(genos) == 20
    for g in genos:  # BPE's rule: two distinct inputs per node, never 'none'
        for node in g.normal + g.reduce:
            assert len({s for _, s in node}) == 2 and all(op != "none" for op, _ in node)
    from nas.cli import NASError
    before = a.read_text()
    assert random_darts_generator.main(["--num", "20", "--saveto", str(a), "--seed", "5"]) == 0  # same: no-op
    with pytest.raises(NASError, match="exists with other content"):
        random_darts_generator.main(["--num", "2", "--saveto", str(a)])
    assert a.read_text() == before


def test_torchrun_two_processes_split_the_genotypes(tiny_folder, tmp_path, cells):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(root / "augment.py"), "--name", "dist", "--file", str(cells), "--data_path", str(tiny_folder),
           "--save_path", str(tmp_path / "exp"), *TINY, "--epochs", "1"]
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads((tmp_path / "exp" / "dist" / "results.json").read_text())
    assert [r["index"] for r in doc["records"]] == [0, 1, 2]
    assert doc["meta"]["world_size"] == 2
    assert [r["genotype"] for r in doc["records"]] == [str(g) for g in read_genotype_file(cells)]
    assert not list((tmp_path / "exp" / "dist").glob("arch_*"))  # finished checkpoints are cleaned up
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0 and again.stdout.startswith("3 trained")
    redo = json.loads((tmp_path / "exp" / "dist" / "results.json").read_text())
    assert redo["records"] == doc["records"]  # nothing retrained: identical records, seconds included
