"""Two processes under torchrun (gloo, CPU) give the same history as one process with the same seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, timeout=180):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr[-2000:]


@pytest.mark.parametrize("script,extra", [("run_evolution.py", ["--pop_size", "4", "--sample_size", "2"]),
                                          ("run_rl.py", [])])
def test_torchrun_two_ranks_equal_one_process(tmp_path, full_table, script, extra):
    args = ["--space", "nb201", "--benchmark", str(full_table), "--n_iters", "8", "--seed", "5",
            "--batch_candidates", "2", "--device", "cpu", *extra]
    _run([sys.executable, script, *args, "--output_path", str(tmp_path / "one")])
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", script, *args,
          "--output_path", str(tmp_path / "two")])
    one = json.loads((tmp_path / "one" / "run_t_0.json").read_text())
    two = json.loads((tmp_path / "two" / "run_t_0.json").read_text())
    assert two["run_metadata"]["world_size"] == 2 and one["run_metadata"]["world_size"] == 1
    assert one["sample"] == two["sample"] and one["val_acc"] == two["val_acc"]
    assert len(one["val_acc"]) == 8
