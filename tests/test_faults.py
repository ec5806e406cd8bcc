"""Runs that cannot mix settings or writers, and bad values that end in one line (issue 13).

Each case failed on the toolkit before: --overwrite kept the per-evaluation folders, the strategies'
resume key missed the budget and data, two writers both exited 0, zero_shot.py could not resume a CSV
cut mid-row or empty, search.py could lose an epoch's history between two writes, and many bad values
ended in a traceback.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import augment
import evaluate_estimators
import parse_json
import run_random
import search
import zero_shot
from nas.checkpoint import load_checkpoint, save_checkpoint
from nas.cli import run_cli
from nas.rundir import RunFolder, RunLock
from tests.conftest import make_image_data

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["--param", "BPE1", "--epochs", "2", "--layers", "3", "--init_channels", "4", "--image_size", "8",
         "--batch_size", "8", "--device", "cpu", "--dataset", "folder", "--quiet"]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


# ----------------------------------------------------------------------------- wrong numbers without an error


def test_overwrite_removes_every_file_of_the_run(tiny_folder, tmp_path):
    argv = ["--space", "darts", "--n_iters", "2", "--data_path", str(tiny_folder), "--output_path", str(tmp_path),
            *TRAIN]
    assert run_random.main(argv) == 0
    ckpt = tmp_path / "work_RS_BPE1_0" / "eval_0000" / "checkpoint.pt"
    assert load_checkpoint(ckpt)["epoch"] == 2
    argv1 = [*argv, "--epochs", "1", "--overwrite"]
    assert run_random.main(argv1) == 0
    # the 1-epoch rerun trained: it did not resume the 2-epoch folders
    assert load_checkpoint(ckpt)["epoch"] == 1
    cfg = json.loads((tmp_path / "work_RS_BPE1_0" / "config.json").read_text())
    assert cfg["budget"]["epochs"] == 1


def test_changed_budget_or_data_is_refused_and_harmless_flags_are_not(tiny_folder, tmp_path, capsys):
    argv = ["--space", "darts", "--n_iters", "2", "--data_path", str(tiny_folder), "--output_path", str(tmp_path),
            *TRAIN]
    assert run_random.main([*argv, "--n_iters", "1"]) == 0  # a first, shorter run
    before = _files(tmp_path)
    for extra, field in ((["--epochs", "1"], "budget.epochs: 2 -> 1"), (["--limit_train", "6"], "limit_train"),
                         (["--lr", "0.1"], "budget.lr")):
        assert run_cli(run_random.main, [*argv, *extra]) == 2
        assert field in _one_line(capsys)
        assert _files(tmp_path) == before
    # --device, --quiet and a trailing slash change no result: the run extends to 2 evaluations
    assert run_random.main([*argv[:5], str(tiny_folder) + "/", *argv[6:], "--device", "cpu"]) == 0
    assert len(json.loads((tmp_path / "run_BPE1_0.json").read_text())["val_acc"]) == 2


def test_a_second_writer_is_refused_and_the_first_keeps_its_results(tiny_folder, tmp_path, capsys):
    cells = tmp_path / "cells.txt"
    cells.write_text("DARTS_V2\n")
    argv = ["--name", "r", "--file", str(cells), "--data_path", str(tiny_folder), "--save_path", str(tmp_path),
            *TRAIN, "--epochs", "1"]
    lock = RunLock(tmp_path / ".r.lock", "run folder r").acquire()  # the first writer, still running
    try:
        assert run_cli(augment.main, argv) == 1
        assert f"in use by another process (pid {os.getpid()})" in _one_line(capsys)
        assert not (tmp_path / "r" / "results.json").exists()
    finally:
        lock.release()
    assert augment.main(argv) == 0
    done = (tmp_path / "r" / "results.json").read_bytes()
    # a holder killed with SIGKILL leaves no stale lock: the kernel releases it
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from nas.rundir import RunLock; "
                               f"RunLock({str(tmp_path / '.r.lock')!r}, 'x').acquire(); print('held', flush=True); "
                               "time.sleep(60)"], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        assert run_cli(augment.main, argv) == 1 and f"pid {holder.pid}" in _one_line(capsys)
    finally:
        holder.kill()
        holder.wait()
    assert augment.main(argv) == 0  # finished run: nothing retrained, nothing lost
    assert json.loads((tmp_path / "r" / "results.json").read_bytes())["records"] == json.loads(done)["records"]


def test_zero_shot_resumes_an_empty_csv_and_a_torn_row(tiny_folder, tmp_path, capsys):
    archs = tmp_path / "archs.txt"
    cells = ["|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|",
             "|skip_connect~0|+|nor_conv_3x3~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
             "|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|skip_connect~2|"]
    archs.write_text("\n".join(cells) + "\n")
    out = tmp_path / "z.csv"
    argv = ["--space", "nb201", "--archs", str(archs), "--dataset", "folder", "--data_path", str(tiny_folder),
            "--measures", "synflow", "params", "--seeds", "1", "--batch_size", "4", "--init_channels", "4",
            "--layers", "1", "--device", "cpu", "--out", str(out)]
    ref = tmp_path / "ref.csv"
    assert zero_shot.main([*argv[:-1], str(ref)]) == 0
    # a kill before the first row: header (and settings) only
    lines = ref.read_text().splitlines(keepends=True)
    out.write_text(lines[0])
    Path(str(out) + ".settings.json").write_text(Path(str(ref) + ".settings.json").read_text())
    assert zero_shot.main(argv) == 0
    rows = list(csv.reader(out.open()))
    assert [r[0] for r in rows[1:]] == [r[0] for r in csv.reader(ref.open())][1:]
    # a kill mid-row: the torn row is dropped and scored again, nothing glued to it
    out.write_text(lines[0] + lines[1] + lines[2][:25])
    assert zero_shot.main(argv) == 0
    rows = list(csv.reader(out.open()))
    assert len(rows) == 4 and all(len(r) == len(rows[0]) for r in rows)
    assert [r[:-1] for r in rows] == [r[:-1] for r in csv.reader(ref.open())]  # same scores (seconds differ)
    # other settings are refused, naming the field
    capsys.readouterr()
    assert run_cli(zero_shot.main, [*argv, "--seeds", "2"]) == 2
    assert "seeds" in _one_line(capsys)


def test_search_kill_between_checkpoint_and_record_loses_no_epoch(tmp_path, monkeypatch):
    import nas.supernet.search as ss

    data = make_image_data()
    cfg = ss.SearchConfig(space="nb201", epochs=2, batch_size=16, layers=1, init_channels=4, image_size=8, seed=3)
    real = ss.atomic_write_json

    def die_on_record(path, obj):
        if Path(path).name == "search.json" and obj["epochs_done"] == 1:
            raise KeyboardInterrupt("simulated kill")  # killed right after epoch 1's checkpoint
        real(path, obj)

    monkeypatch.setattr(ss, "atomic_write_json", die_on_record)
    with pytest.raises(KeyboardInterrupt, match="simulated kill"):
        ss.run_search(cfg, tmp_path / "s", device=torch.device("cpu"), data=data, tensorboard=False)
    monkeypatch.setattr(ss, "atomic_write_json", real)
    rec = ss.run_search(cfg, tmp_path / "s", device=torch.device("cpu"), data=data, tensorboard=False)
    assert [h["epoch"] for h in rec["history"]] == [0, 1]


# ----------------------------------------------------------------------------- bad values, one line each


def _table(path: Path, nan_row: int | None = None) -> Path:
    from nas.spaces import NB201Space

    lines = ["arch_index,arch_str,cifar10_valid_acc,cifar10_test_acc"]
    for i, a in enumerate(NB201Space().enumerate()):
        v = "nan" if i == nan_row else f"{(i * 37) % 100}.0"
        lines.append(f"{i},{a},{v},{v}")
    path.write_text("\n".join(lines) + "\n")
    return path


BAD = [  # (script, args, exit code, words in the line)
    (augment, ["--epochs", "0"], 2, "--epochs must be a positive integer"),
    (augment, ["--epochs", "-1"], 2, "--epochs must be a positive integer"),
    (augment, ["--layers", "0"], 2, "--layers"),
    (augment, ["--image_size", "0"], 2, "--image_size"),
    (augment, ["--lr", "nan"], 2, "--lr must be a finite number"),
    (augment, ["--precision", "8"], 2, "allowed: 32, 16, bf16"),
    (augment, ["--save_path", "{file}/sub"], 1, "Not a directory"),
    (augment, ["--file", "{huge}"], 1, "at most 20000"),
    (augment, ["--file", "{bigrange}"], 1, "at most 64"),
    (augment, ["--file", "{binary}"], 1, "a binary file"),
    (run_random, ["--space", "foo"], 2, "unknown space 'foo'"),
    (run_random, ["--space", "nb201", "--benchmark", "{nantable}"], 1, "non-finite values"),
    (run_random, ["--space", "nb201", "--benchmark", "{table}", "--output_path", "{ckptdir}"], 1,
     "missing strategy"),
    (evaluate_estimators, ["--estimates", "{torn}", "--truth", "{table}"], 1, "last row is incomplete"),
    (parse_json, ["--method", "RL", "--file", "{badsample}"], 1, "sample 0"),
    (search, ["--space", "nb201", "--method", "darts", "--epochs", "0"], 2, "--epochs must be a positive integer"),
    (search, ["--space", "nb201", "--method", "darts", "--lr", "nan"], 2, "--lr must be a positive finite"),
]


@pytest.mark.parametrize("script,args,code,words", BAD, ids=[f"{m.__name__}-{a[-1][:12]}" for m, a, _, _ in BAD])
def test_bad_values_one_line_and_nothing_changed(tiny_folder, tmp_path, capsys, script, args, code, words):
    f = tmp_path / "afile"
    f.write_text("x")
    base = "DARTS_V2"
    paths = {"file": f, "huge": tmp_path / "huge.txt", "bigrange": tmp_path / "range.txt",
             "binary": tmp_path / "bin.txt", "table": _table(tmp_path / "t.csv"),
             "nantable": _table(tmp_path / "n.csv", nan_row=100), "torn": tmp_path / "torn.csv",
             "ckptdir": tmp_path / "ck", "badsample": tmp_path / "bad.json"}
    paths["huge"].write_text("Genotype(normal=[" + "x" * 6_000_000 + "])\n")
    paths["bigrange"].write_text(f"{base}\nGenotype(normal=[[('sep_conv_3x3', 0)]], reduce=[[('sep_conv_3x3', 0)]], "
                                 "normal_concat=range(2, 3000000000))\n")
    paths["binary"].write_bytes(b"\x00\x01\x02Genotype")
    paths["torn"].write_text("arch_str,score\n|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|,1.0\n|nor")
    paths["ckptdir"].mkdir()
    save_checkpoint(paths["ckptdir"] / "RS_t_0.ckpt", {"history": []})  # a state file missing its keys
    paths["badsample"].write_text(json.dumps({"val_acc": [1.0], "sample": [[9] * 28], "best_genotype": ["x"],
                                              "run_metadata": {"encoding": "darts-bpe"}}))
    args = [a.format(**paths) for a in args]
    if script is augment:
        args = ["--name", "x", "--save_path", str(tmp_path / "exp"), "--data_path", str(tiny_folder), *TRAIN,
                *([] if "--file" in args else ["--arch", base]), *args]
    elif script is run_random:
        args = ["--n_iters", "2", "--output_path", str(tmp_path / "o"), *args]
    elif script is search:
        args = [*args, "--save_path", str(tmp_path / "s"), "--dataset", "folder", "--data_path", str(tiny_folder)]
    before = _files(tmp_path)
    assert run_cli(script.main, args) == code
    line = _one_line(capsys)
    assert words in line, line
    after = _files(tmp_path)
    assert {k: after.get(k) for k in before} == before  # nothing already written changed or went away


def test_leftovers_of_killed_writes_are_removed_by_the_next_run(tiny_folder, tmp_path):
    cells = tmp_path / "cells.txt"
    cells.write_text("DARTS_V2\n")
    argv = ["--name", "r", "--file", str(cells), "--data_path", str(tiny_folder), "--save_path", str(tmp_path),
            *TRAIN, "--epochs", "1"]
    assert augment.main(argv) == 0
    torn = tmp_path / "r" / ".results.json.abc123.tmp"  # what a kill inside atomic_write leaves
    torn.write_text('{"records": [')
    trash = tmp_path / ".trash-999-r"  # what a kill inside --overwrite leaves
    trash.mkdir()
    (trash / "x").write_text("old")
    assert augment.main(argv) == 0
    assert not torn.exists() and not trash.exists()
    assert json.loads((tmp_path / "r" / "results.json").read_text())["records"]


def test_a_try_that_saved_nothing_does_not_bind_the_corrected_rerun(tiny_folder, tmp_path, capsys):
    argv = ["--space", "darts", "--n_iters", "1", "--output_path", str(tmp_path), *TRAIN]
    assert run_cli(run_random.main, [*argv, "--data_path", str(tmp_path / "nodata")]) == 1  # data missing
    assert "not found" in _one_line(capsys)
    assert (tmp_path / "work_RS_BPE1_0" / "config.json").is_file()
    # the corrected rerun (other data, other budget) runs: the failed try left a config and a log, no result
    assert run_random.main([*argv, "--data_path", str(tiny_folder), "--epochs", "1"]) == 0
    cfg = json.loads((tmp_path / "work_RS_BPE1_0" / "config.json").read_text())
    assert cfg["budget"]["epochs"] == 1 and cfg["data_path"] == str(tiny_folder)
    # once a result is saved, other settings are refused again
    assert run_cli(run_random.main, [*argv, "--data_path", str(tiny_folder), "--epochs", "2"]) == 2
    assert "budget.epochs: 1 -> 2" in _one_line(capsys)


def test_a_run_leaves_the_unfinished_writes_of_its_neighbours_alone(tmp_path):
    mine, other = RunFolder(tmp_path / "work_a", {"x": 1}, extra=[tmp_path / "a.json"]), tmp_path / "b.json"
    left = [tmp_path / ".a.json.k2j4.tmp", tmp_path / ".trash-12-work_a", tmp_path / "work_a" / ".s.json.x1.tmp"]
    kept = [tmp_path / ".b.json.q9z8.tmp", tmp_path / ".trash-13-work_b", other]  # another run's write in flight
    (tmp_path / "work_a").mkdir()
    for p in left + kept:
        p.write_text("{")
    with mine:
        mine.open()
    assert not any(p.exists() for p in left) and all(p.exists() for p in kept)
