"""PertNAS under torchrun (2 ranks, gloo, CPU): the members' valuation matrices are all-reduced into their
mean, the selection runs once on rank 0, and one process with the same two members gives the same mean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
search_evolutionary = pytest.importorskip("search_evolutionary")
pytestmark = pytest.mark.usefixtures("one_thread")


def _torchrun(args: list[str], timeout: float = 100) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "search_evolutionary.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_two_ranks_share_the_mean_valuation_and_select_once(tmp_path, tiny_folder):
    data = tiny_folder  # 3 classes, 8 train and 4 test images each
    args = ["--dataset", "folder", "--data_path", str(data), "--batch_size", "8", "--epochs_per_step", "1",
            "--finetune_steps", "1", "--finetune_extra", "0,0,0", "--init_channels", "4", "--layers", "1",
            "--device", "cpu", "--threads", "1", "--npop", "2", "--seed", "5", "--distributed", "--quiet"]
    p = _torchrun(args + ["--save", str(tmp_path / "two")])
    assert p.returncode == 0, p.stderr[-3000:]
    run = tmp_path / "two/search-try"
    res = json.loads((run / "results.json").read_text())
    m0, m1 = (np.asarray(json.loads((run / f"member{k}/valuation.json").read_text())["valuation_matrix"])
              for k in (0, 1))
    assert res["world_size"] == 2 and res["population"] == "shared"
    assert m0.shape == (14, 9) and not np.array_equal(m0, m1)  # members differ (their random initial ops)
    assert np.allclose(res["valuation_matrix"], (m0 + m1) / 2, rtol=0, atol=1e-12)
    # selection once, on rank 0: one coarse selection in rank 0's log, none in rank 1's, one printed cell
    assert (run / "log_p0.txt").read_text().count("coarse selection") == 1
    assert "coarse selection" not in (run / "log_p1.txt").read_text()
    assert "member 1 step 14/14" in (run / "log_p1.txt").read_text()  # rank 1 expanded member 1
    assert p.stdout.count("best genotype") == 1
    sel = json.loads((run / "selection/state.json").read_text())
    assert sel["members"] == 2 and sel["phase"] == "done"
    assert (run / "best_genotype.txt").read_text().strip() == res["best_genotype"]

    # one process running both members gives the same members, the same mean and the same cell
    assert search_evolutionary.main([a for a in args if a != "--distributed"] + ["--save", str(tmp_path / "one")]) == 0
    one = json.loads((tmp_path / "one/search-try/results.json").read_text())
    assert one["world_size"] == 1
    assert [m["valuation_matrix"] for m in one["members"]] == [m0.tolist(), m1.tolist()]
    assert np.allclose(one["valuation_matrix"], res["valuation_matrix"], rtol=0, atol=1e-12)
    assert one["best_genotype"] == res["best_genotype"]

    # an error under torchrun (rank 0 refuses other settings) ends both ranks at once, with one clear line
    p = _torchrun(args + ["--save", str(tmp_path / "two"), "--seed", "6"], timeout=90)
    assert p.returncode != 0 and "holds a run with other settings (seed: 5 -> 6)" in p.stderr
