"""Zero-shot estimators on NAS-Bench-201 cells: Spearman against the 200-epoch truth (and the 12-epoch table).

    nice -n 5 .venv/bin/python bench/zero_shot_nb201.py --n 500 --seed 0 --seeds 20 --batch_size 64 \\
        --data_path /work/cifar10 --out runs/zs_nb201.csv

Samples ``--n`` cells with ``random.Random(--seed)`` from the truth table, scores each with every measure
(network as NAS-Bench-201 trains it: C=16, N=5; CIFAR-10 training batches) into a resumable CSV
(``nas.estimators.scoring.ScoreTable``: rerun the same command to continue), then prints each measure's
Spearman and Kendall against ``--truth_col`` of the 200-epoch table (the accuracy papers report), the
same against the 12-epoch table, its seconds per cell, the ratio of that cost to one training step of the
same network on the same batch (measured in this run), and the published NB201 values.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from models.networks import NB201Network
from nas import ranking
from nas.cli import NASError, run_cli
from nas.data import load_dataset
from nas.estimators import zeroshot as zs
from nas.estimators.scoring import ScoreTable

SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500, help="cells to sample")
    p.add_argument("--seed", type=int, default=0, help="seed of the cell sample")
    p.add_argument("--seeds", type=int, nargs="+", default=[20], help="init/batch seeds averaged per cell")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--data_path", default="/work/cifar10", help="CIFAR-10 as train/<class>/*.jpg")
    p.add_argument("--truth", default=str(SHARED / "nb201_200epoch.csv"), help="200-epoch NB201 table")
    p.add_argument("--signal", default=str(SHARED / "nb201_12epoch.csv"), help="12-epoch NB201 table (compared too)")
    p.add_argument("--truth_col", default="cifar10_test_acc")
    p.add_argument("--measures", nargs="+", default=list(zs.MEASURES))
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    p.add_argument("--out", default="runs/zs_nb201.csv", help="per-cell scores (appended, resumable)")
    return p


def _train_step_seconds(arch: str, x: torch.Tensor, y: torch.Tensor, reps: int = 3) -> float:
    """Baseline: one SGD step (forward + backward + update) of the same network on the same batch."""
    net = NB201Network(arch, C=16, N=5, n_classes=10)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(net(x)[0], y).backward()
        opt.step()
        best = min(best, time.perf_counter() - t0)
    return best


def _column(path: str, col: str) -> dict[str, float]:
    if not Path(path).is_file():
        raise NASError(f"{path}: missing (the NAS-Bench-201 table; see ../shared/README.md)")
    t = pd.read_csv(path)
    return dict(zip(map(str, t.arch_str), map(float, t[col])))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = zs.check_measures(args.measures)
    truth_all = _column(args.truth, args.truth_col)
    signal_all = _column(args.signal, args.truth_col) if Path(args.signal).is_file() else {}
    archs = random.Random(args.seed).sample(sorted(truth_all), args.n)
    t0 = time.perf_counter()
    data = load_dataset("folder", args.data_path, valid="none")  # only training batches are needed
    print(f"data: {len(data.train_y)} training images loaded in {time.perf_counter() - t0:.1f}s", flush=True)
    batches = zs.BatchSource(data, batch_size=args.batch_size)
    cfg = zs.default_net_config("nb201", n_classes=data.n_classes, input_size=32)
    settings = {"measures": names, "seeds": args.seeds, "batch_size": args.batch_size, "net": vars(cfg)}
    seconds: dict[str, float] = {}
    n_new = 0
    with ScoreTable(args.out, arch_column="arch_str", columns=names, settings=settings) as table:
        for i, arch in enumerate(archs):
            if arch in table.done:
                continue
            vals, sec = zs.score_architecture(arch, cfg=cfg, batches=batches.get, seeds=args.seeds, names=names,
                                              seconds=seconds)
            table.append(arch, vals, sec)
            n_new += 1
            if (i + 1) % 10 == 0 or i + 1 == len(archs):
                print(f"[{i + 1}/{len(archs)}] {sec:.2f}s/cell last; {time.perf_counter() - t0:.0f}s elapsed",
                      flush=True)
        done = table.done
    x, y = batches.get(args.seeds[0])
    step = _train_step_seconds(archs[0], x, y)
    tru = [truth_all[a] for a in archs]
    per_cell = sum(done[a]["seconds"] for a in archs) / len(archs)
    print(f"\n{len(archs)} NB201 cells (sample seed {args.seed}), seeds {args.seeds}, batch {args.batch_size}, "
          f"{torch.get_num_threads()} torch threads; truth {args.truth_col} of {Path(args.truth).name}")
    print(f"baseline: one training step of the same network on the same batch = {step:.3f}s")
    print(f"{'measure':12s} {'spearman':>9s} {'kendall':>8s} {'P@top10%':>8s} {'published':>9s} "
          f"{'rho 12ep':>9s}")
    for n in names:
        est = [done[a][n] for a in archs]
        r = ranking.evaluate_all(est, tru, setting=n)
        r12 = ranking.evaluate_all(est, [signal_all[a] for a in archs], setting=n) if signal_all else None
        pub = zs.PUBLISHED_NB201_CIFAR10.get(n)
        sp = "nan" if r["spearman"] is None else f"{r['spearman']:.3f}"
        kt = "nan" if r["kendall_tau"] is None else f"{r['kendall_tau']:.3f}"
        p10 = r["p_at_top_k"].get("10%")
        s12 = "-" if r12 is None or r12["spearman"] is None else f"{r12['spearman']:.3f}"
        print(f"{n:12s} {sp:>9s} {kt:>8s} {p10 if p10 is None else round(p10, 3)!s:>8s} "
              f"{pub if pub is not None else '-':>9} {s12:>9s}"
              + (f"  ({r['n_nonfinite_estimates']} non-finite)" if r["n_nonfinite_estimates"] else ""))
    if n_new:
        print(f"seconds per cell by pass (measures sharing a pass are timed together), {n_new} cells this run:")
        for g, sec in seconds.items():
            print(f"  {g:30s} {sec / n_new:7.3f}s  = {sec / n_new / step:6.2f} training steps")
    print(f"all measures: {per_cell:.2f}s per cell ({per_cell / step:.1f} training steps); "
          f"total {time.perf_counter() - t0:.0f}s this run ({n_new} cells scored now)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
