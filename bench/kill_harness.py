"""Kill each long-running script with SIGKILL at random moments, rerun it, and compare with an uninterrupted run.

For every scenario: one uninterrupted reference run, then ``--trials`` runs, each killed (the whole process
group, SIGKILL) at a uniformly random moment of the reference's duration and rerun with the same command
until it finishes. A trial is a mismatch when the rerun's result differs from the reference's (scores and
genotypes, not timings), and the lost work is the number of units (evaluations, epochs, rows) that the killed
run had finished and logged but the rerun did again.

    python bench/kill_harness.py --data_path /work/cifar10 --trials 10 --out runs/kill

Needs a folder CIFAR-10 (``../shared/tools/unpack-cifar10 DIR``) and the NB201 table in ../shared.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT.parent / "shared" / "benchmarks" / "nb201_12epoch.csv"
TINY = ["--dataset", "folder", "--device", "cpu", "--threads", "1", "--quiet"]


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _augment(out: Path, data: str) -> tuple[list[str], Callable[[], object], Path, str]:
    cells = out.parent / "cells.txt"
    if not cells.exists():
        subprocess.run([sys.executable, "random_darts_generator.py", "--num", "4", "--saveto", str(cells), "--seed",
                        "1"], cwd=ROOT, check=True, capture_output=True)
    cmd = ["augment.py", "--name", "run", "--file", str(cells), "--save_path", str(out), "--data_path", data,
           "--param", "BPE1", "--epochs", "3", "--layers", "3", "--init_channels", "4", "--limit_train", "512",
           "--limit_valid", "256", *TINY]

    def result() -> object:
        return [(r["index"], r["genotype"], [round(h["valid_acc"], 6) for h in r["history"]])
                for r in _json(out / "run" / "results.json")["records"]]
    return cmd, result, out / "run" / "run.log", r"\[\d+/\d+\] epoch \d+"


def _evolution(out: Path, data: str) -> tuple[list[str], Callable[[], object], Path, str]:
    cmd = ["run_evolution.py", "--space", "nb201", "--benchmark", str(TABLE), "--n_iters", "60", "--pop_size", "10",
           "--sample_size", "3", "--seed", "1", "--output_path", str(out), "--quiet"]

    def result() -> object:
        r = _json(next(out.glob("run_*_0.json")))
        return r["val_acc"], r["sample"]
    tag = "nb201-12epoch"  # nas.strategies.runner.run_tag of the table's name
    return cmd, result, out / f"EA_{tag}_0.log", r"eval (\d+)/\d+"


def _rl_budgeted(out: Path, data: str) -> tuple[list[str], Callable[[], object], Path, str]:
    cmd = ["run_rl.py", "--space", "darts", "--param", "BPE1", "--epochs", "1", "--layers", "3", "--init_channels",
           "4", "--limit_train", "256", "--limit_valid", "128", "--n_iters", "4", "--seed", "1", "--output_path",
           str(out), "--data_path", data, *TINY]

    def result() -> object:
        r = _json(out / "run_BPE1_0.json")
        return [round(v, 6) for v in r["val_acc"]], r["sample"]
    return cmd, result, out / "RL_BPE1_0.log", r"eval (\d+)/\d+"


def _search(out: Path, data: str) -> tuple[list[str], Callable[[], object], Path, str]:
    cmd = ["search.py", "--space", "nb201", "--method", "darts", "--seed", "0", "--name", "s", "--save_path", str(out),
           "--init_channels", "4", "--layers", "1", "--image_size", "16", "--batch_size", "64", "--epochs", "4",
           "--limit_train", "512", "--limit_valid", "256", "--data_path", data, "--no_tensorboard", *TINY]

    def result() -> object:
        r = _json(out / "s" / "search.json")
        return r["genotype"], [(h["epoch"], h["alphas"], round(h["valid_acc"], 6)) for h in r["history"]]
    return cmd, result, out / "s" / "search.log", r"epoch (\d+)/\d+ lr"


def _zero_shot(out: Path, data: str) -> tuple[list[str], Callable[[], object], Path, str]:
    cmd = ["zero_shot.py", "--space", "nb201", "--sample", "24", "--seed", "0", "--measures", "synflow", "snip",
           "params", "--seeds", "1", "--batch_size", "8", "--init_channels", "4", "--layers", "1", "--limit_train",
           "256", "--data_path", data, "--out", str(out / "z.csv"), *TINY]

    def result() -> object:
        with (out / "z.csv").open() as f:
            return sorted(tuple(r[:-1]) for r in csv.reader(f))  # scores, not the seconds column
    return cmd, result, out / "z.csv", r"^(\|[^,]+),"


SCENARIOS = {"augment": _augment, "run_evolution": _evolution, "run_rl_budgeted": _rl_budgeted, "search": _search,
             "zero_shot": _zero_shot}


def _run(cmd: list[str], env: dict, kill_after: float | None = None) -> tuple[float, bool]:
    t0 = time.time()
    p = subprocess.Popen([sys.executable, *cmd], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        p.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # the whole group: torchrun-style workers included
        p.wait()
        return time.time() - t0, True
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {p.stderr.read().decode()[-500:]}")
    return time.time() - t0, False


def _units(log: Path, pattern: str) -> Counter:
    """Work units a run logged (evaluations, epochs, rows): a unit logged twice was done twice."""
    if not log.exists():
        return Counter()
    rx = re.compile(pattern)
    return Counter(m.group(0) for line in log.read_text(errors="replace").splitlines() if (m := rx.search(line)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_path", default="/work/cifar10", help="folder CIFAR-10 (train/<class>/*.jpg)")
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--out", default="runs/kill", help="work folder (emptied per scenario)")
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    total = Counter()
    print(f"{'scenario':<16} {'trials':>6} {'killed':>6} {'mismatch':>8} {'lost units':>10} {'ref s':>6}")
    for name in args.scenarios:
        base = Path(args.out) / name
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        cmd, result, _, _ = SCENARIOS[name](base / "ref", args.data_path)
        ref_s, _ = _run(cmd, env)
        ref = result()
        killed = mismatch = lost = 0
        for t in range(args.trials):
            cmd, result, log, pattern = SCENARIOS[name](base / f"t{t}", args.data_path)
            _, was_killed = _run(cmd, env, kill_after=rng.uniform(0.05, 0.95) * ref_s)
            before = _units(log, pattern)
            _run(cmd, env)
            after = _units(log, pattern)
            killed += was_killed
            lost += sum(max(0, after[u] - before[u]) for u in before if before[u] >= 1 and after[u] > before[u])
            if result() != ref:
                mismatch += 1
                print(f"  {name} trial {t}: MISMATCH")
        total.update(trials=args.trials, killed=killed, mismatch=mismatch, lost=lost)
        print(f"{name:<16} {args.trials:>6} {killed:>6} {mismatch:>8} {lost:>10} {ref_s:>6.1f}", flush=True)
    print(f"{'all':<16} {total['trials']:>6} {total['killed']:>6} {total['mismatch']:>8} {total['lost']:>10}")
    return 1 if total["mismatch"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
