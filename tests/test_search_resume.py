"""Kill mid-run, rerun the same command: no completed evaluation is redone, history is unchanged."""

from __future__ import annotations

import json

import pytest

from nas.estimators import TableEstimator
from tests.conftest import make_table


class Killed(Exception):
    pass


@pytest.mark.parametrize("script,extra", [("run_evolution", ["--pop_size", "4", "--sample_size", "2"]),
                                          ("run_rl", []), ("run_random", [])])
def test_kill_and_resume_redoes_nothing(tmp_path, monkeypatch, full_table, script, extra):
    mod = __import__(script)
    calls = []
    real = TableEstimator.score
    kill_at = {"n": None}

    def counting(self, arch):
        if len(calls) == kill_at["n"]:  # a kill after that many completed (and checkpointed) evaluations
            raise Killed("simulated kill")
        calls.append(arch)
        return real(self, arch)

    monkeypatch.setattr(TableEstimator, "score", counting)
    argv = ["--space", "nb201", "--benchmark", str(full_table), "--n_iters", "9", "--seed", "3",
            "--batch_candidates", "2", *extra]

    # uninterrupted reference run
    assert mod.main([*argv, "--output_path", str(tmp_path / "ref")]) == 0
    ref = json.loads((tmp_path / "ref" / "run_t_0.json").read_text())
    assert len(calls) == 9
    calls.clear()

    kill_at["n"] = 5  # mid-batch: evaluation 5 is the first of the third batch of 2
    with pytest.raises(Killed, match="simulated kill"):
        mod.main([*argv, "--output_path", str(tmp_path / "run")])
    assert len(calls) == 5 and not (tmp_path / "run" / "run_t_0.json").exists()
    kill_at["n"] = None
    assert mod.main([*argv, "--output_path", str(tmp_path / "run")]) == 0
    assert len(calls) == 9, "a finished evaluation was scored again"
    got = json.loads((tmp_path / "run" / "run_t_0.json").read_text())
    assert got["val_acc"] == ref["val_acc"] and got["sample"] == ref["sample"]
    if script == "run_rl":
        flat = [x for step in got["optim_prob"] for pos in step for x in pos]
        assert flat == pytest.approx([x for step in ref["optim_prob"] for pos in step for x in pos])
    # a third run finds the work done and scores nothing
    assert mod.main([*argv, "--output_path", str(tmp_path / "run")]) == 0
    assert len(calls) == 9


def test_corrupt_checkpoint_is_one_clear_error(tmp_path, capsys):
    import run_evolution
    from nas.cli import run_cli

    make_table(tmp_path / "t.csv", n=50)
    out = tmp_path / "o"
    out.mkdir()
    (out / "EA_t_0.ckpt").write_bytes(b"not a checkpoint")
    rc = run_cli(run_evolution.main, ["--space", "nb201", "--benchmark", str(tmp_path / "t.csv"), "--n_iters", "3",
                                      "--output_path", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "corrupt checkpoint" in err[0]
    assert (out / "EA_t_0.ckpt").read_bytes() == b"not a checkpoint"  # nothing lost


@pytest.mark.parametrize("args,code,msg", [
    (["--space", "nb999"], 2, "unknown space"),  # a usage error: exit 2, as the README promises
    (["--metric", "nope"], 2, "metric column 'nope'"),
])
def test_bad_input_one_line(tmp_path, capsys, args, code, msg):
    import run_random
    from nas.cli import run_cli

    make_table(tmp_path / "t.csv", n=20)
    base = ["--space", "nb201", "--benchmark", str(tmp_path / "t.csv"), "--n_iters", "2", "--output_path",
            str(tmp_path / "o")]
    rc = run_cli(run_random.main, base + args)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == code and len(err) == 1 and msg in err[0]


def test_arch_missing_from_table_stops_cleanly(tmp_path, capsys):
    import run_random
    from nas.cli import run_cli

    make_table(tmp_path / "t.csv", n=3)  # random samples will miss this tiny table
    rc = run_cli(run_random.main, ["--space", "nb201", "--benchmark", str(tmp_path / "t.csv"), "--n_iters", "5",
                                   "--output_path", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if "error" in line]
    assert rc == 1 and len(errors) == 1 and "is not in t.csv" in errors[0] and "Traceback" not in "".join(err)


def test_refuses_to_clobber_foreign_results(tmp_path, capsys):
    import run_random
    from nas.cli import run_cli

    make_table(tmp_path / "t.csv", n=50)
    out = tmp_path / "o"
    out.mkdir()
    (out / "run_t_0.json").write_text("{}")
    rc = run_cli(run_random.main, ["--space", "nb201", "--benchmark", str(tmp_path / "t.csv"), "--n_iters", "2",
                                   "--output_path", str(out)])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err
    assert (out / "run_t_0.json").read_text() == "{}"
