"""The work queue: every task taken exactly once, results back to rank 0; augment under torchrun with a
rank killed mid-cell and the command rerun trains every cell, records each exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch.distributed as dist

import random_darts_generator
from nas.distributed import DistContext
from nas.workqueue import Board, Collector, WorkQueue

ROOT = Path(__file__).resolve().parents[1]


def test_single_process_queue_hands_out_each_task_once():
    q = WorkQueue("t-single", 3)
    taken = []
    while (t := q.take()) is not None:
        taken.append(t)
        q.post({"task": t, "value": t * 10})
    assert taken == [0, 1, 2] and q.take() is None
    q.finish()
    got = []
    q.drain(got.extend)
    assert [r["value"] for r in got] == [0, 10, 20]
    b = Board(DistContext())
    b.publish("k", {"a": 1})
    assert b.wait("k") == {"a": 1}


def test_store_queue_two_ranks_in_threads_take_disjoint_tasks_and_rank0_gets_all_results():
    store = dist.HashStore()
    n = 40
    taken: dict[int, list[int]] = {0: [], 1: []}
    received: list[dict] = []

    def worker(rank: int) -> None:
        q = WorkQueue("t-store", n, DistContext(rank=rank, world_size=2), store=store)
        col = Collector(q, received.extend, poll_s=0.01) if rank == 0 else None
        while (t := q.take()) is not None:
            taken[rank].append(t)
            time.sleep(0.001 * (rank + 1))  # ranks of unequal speed
            q.post({"task": t, "rank": rank})
        q.finish()
        if col is not None:
            col.stop()

    threads = [threading.Thread(target=worker, args=(r,)) for r in (1, 0)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert sorted(taken[0] + taken[1]) == list(range(n))  # each task taken once
    assert taken[0] and taken[1]  # both ranks worked
    assert sorted(r["task"] for r in received) == list(range(n))  # each result reached rank 0 once
    assert {r["task"]: r["rank"] for r in received} == {t: r for r in (0, 1) for t in taken[r]}


def test_board_waits_for_a_later_publish():
    store = dist.HashStore()
    reader = Board(DistContext(rank=1, world_size=2), store=store)
    writer = Board(DistContext(rank=0, world_size=2), store=store)
    out = []
    th = threading.Thread(target=lambda: out.append(reader.wait("batch/3", poll_s=0.01)))
    th.start()
    time.sleep(0.1)
    assert not out  # still waiting: nothing published yet
    writer.publish("batch/3", {"vecs": [[1, 2]]})
    th.join(timeout=10)
    assert out == [{"vecs": [[1, 2]]}]


TINY = ["--param", "BPE1", "--layers", "3", "--init_channels", "4", "--image_size", "8", "--batch_size", "8",
        "--device", "cpu", "--dataset", "folder", "--quiet"]


def _rank_pids(parent: int) -> dict[int, int]:
    """RANK -> pid of the worker processes torchrun ``parent`` started (Linux /proc)."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (d / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent:
            for kv in env:
                if kv.startswith(b"RANK="):
                    out[int(kv[5:])] = int(d.name)
    return out


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds torchrun's workers through /proc")
def test_torchrun_queue_killed_rank_then_rerun_records_every_cell_once(tiny_folder, tmp_path):
    cells = tmp_path / "cells.txt"
    assert random_darts_generator.main(["--num", "4", "--saveto", str(cells), "--seed", "1"]) == 0
    run = tmp_path / "exp" / "q"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "augment.py"), "--name", "q", "--file", str(cells), "--data_path", str(tiny_folder),
           "--save_path", str(tmp_path / "exp"), *TINY, "--epochs", "25"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = None
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120 and p.poll() is None:
            if list(run.glob("arch_*/checkpoint.pt")):  # a cell is past its first epoch: kill rank 1 now
                victim = _rank_pids(p.pid).get(1)
                if victim:
                    os.kill(victim, signal.SIGKILL)
                    break
            time.sleep(0.05)
        p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert victim is not None, "rank 1 was never seen training"
    assert p.returncode != 0  # torchrun reports the dead rank and stops the job
    before = json.loads((run / "results.json").read_text())["records"] if (run / "results.json").exists() else []
    assert len(before) < 4  # the kill came mid-run
    assert list(run.glob("arch_*/checkpoint.pt"))  # the interrupted cell kept its checkpoint
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stderr[-2000:]
    doc = json.loads((run / "results.json").read_text())
    assert [r["index"] for r in doc["records"]] == [0, 1, 2, 3]  # every cell, each exactly once
    assert {r["index"]: r for r in before} == {r["index"]: r for r in doc["records"] if r["index"] in
                                                {b["index"] for b in before}}  # finished ones not retrained
    assert all(len(r["history"]) == 25 for r in doc["records"])
    assert not list(run.glob("arch_*"))


def test_zero_shot_torchrun_two_ranks_scores_each_cell_once_like_one_process(tiny_folder, tmp_path):
    import csv

    from nas.spaces import get_space

    archs = tmp_path / "archs.txt"
    cells = list(get_space("nb201").enumerate())[::1500]  # 11 cells
    archs.write_text("\n".join(cells) + "\n")
    common = ["zero_shot.py", "--space", "nb201", "--archs", str(archs), "--dataset", "folder", "--data_path",
              str(tiny_folder), "--batch_size", "4", "--seeds", "1", "2", "--init_channels", "4", "--layers", "1",
              "--measures", "synflow", "snip", "params", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    one = subprocess.run([sys.executable, *common, "--out", str(tmp_path / "one.csv")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          *common, "--out", str(tmp_path / "two.csv")], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert two.returncode == 0, two.stderr[-2000:]
    assert "2 ranks on CPU" in two.stderr

    def rows(name):
        return {r["arch_str"]: {k: float(v) for k, v in r.items() if k not in ("arch_str", "seconds")}
                for r in csv.DictReader((tmp_path / name).open())}

    lines = (tmp_path / "two.csv").read_text().splitlines()
    assert len(lines) == 1 + len(cells) and len(set(lines)) == len(lines)  # each cell once
    assert rows("two.csv") == rows("one.csv")  # whichever rank scored a cell, its scores are the same
