"""Zero-shot estimators on NAS-Bench-201 cells: Spearman against the 12-epoch table and seconds per cell.

    nice -n 5 .venv/bin/python bench/zero_shot_nb201.py --n 300 --seed 0 --seeds 20 --batch_size 64 \\
        --data_path /work/cifar10 --table ../shared/benchmarks/nb201_12epoch.csv --out runs/zs_nb201.csv

Samples ``--n`` cells with ``random.Random(--seed)`` from the table, scores each with every measure
(network as NAS-Bench-201 trains it: C=16, N=5; CIFAR-10 training batches), appends one CSV row per
cell as it goes (rerun the same command to resume), then prints each measure's Spearman and Kendall
against ``--truth_col``, its seconds per cell, the ratio of that cost to one training step of the same
network on the same batch (the baseline, measured in this run), and the published NB201 values.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file from anywhere

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from nas import ranking  # noqa: E402
from nas import zeroshot as zs  # noqa: E402
from nas.cli import run_cli  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300, help="cells to sample")
    p.add_argument("--seed", type=int, default=0, help="seed of the cell sample")
    p.add_argument("--seeds", type=int, nargs="+", default=[20], help="init/batch seeds averaged per cell")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--data_path", default="/work/cifar10", help="CIFAR-10 as train/<class>/*.jpg")
    p.add_argument("--table", default=str(Path(__file__).resolve().parents[2] / "shared/benchmarks/nb201_12epoch.csv"))
    p.add_argument("--truth_col", default="cifar10_test_acc")
    p.add_argument("--measures", nargs="+", default=list(zs.MEASURES))
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    p.add_argument("--out", default="runs/zs_nb201.csv", help="per-cell scores (appended, resumable)")
    return p


def _train_step_seconds(arch: str, x: torch.Tensor, y: torch.Tensor, reps: int = 3) -> float:
    """Baseline: one SGD step (forward + backward + update) of the same network on the same batch."""
    from models.networks import NB201Network

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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import pandas as pd

    from nas.data import load_dataset

    if args.threads:
        torch.set_num_threads(args.threads)
    names = zs.check_measures(args.measures)
    table = pd.read_csv(args.table)
    rows = random.Random(args.seed).sample(range(len(table)), args.n)
    archs = [str(table.arch_str[i]) for i in rows]
    truth = {str(table.arch_str[i]): float(table[args.truth_col][i]) for i in rows}

    t0 = time.perf_counter()
    data = load_dataset("folder", args.data_path, valid=0.98)  # only training batches are needed
    print(f"data: {len(data.train_y)} training images loaded in {time.perf_counter() - t0:.1f}s", flush=True)
    batches = zs.BatchSource(data, batch_size=args.batch_size)
    cfg = zs.default_net_config("nb201", n_classes=data.n_classes, input_size=32)

    out = Path(args.out)
    done: dict[str, dict[str, float]] = {}
    if out.exists():
        with out.open() as f:
            for r in csv.DictReader(f):
                done[r["arch_str"]] = {k: float(v) for k, v in r.items() if k != "arch_str"}
    out.parent.mkdir(parents=True, exist_ok=True)
    header = ["arch_str", *names, "seconds"]
    new_file = not out.exists()
    seconds: dict[str, float] = {}
    n_new = 0
    with out.open("a", newline="") as f:
        w = csv.writer(f)
        if new_file:
            w.writerow(header)
        for i, arch in enumerate(archs):
            if arch in done:
                continue
            vals, sec = zs.score_architecture(arch, cfg=cfg, batches=batches.get, seeds=args.seeds, names=names,
                                              seconds=seconds)
            w.writerow([arch, *[repr(vals[n]) for n in names], f"{sec:.3f}"])
            f.flush()
            done[arch] = {**vals, "seconds": sec}
            n_new += 1
            if (i + 1) % 10 == 0 or i + 1 == len(archs):
                print(f"[{i + 1}/{len(archs)}] {sec:.2f}s/cell last; {time.perf_counter() - t0:.0f}s elapsed",
                      flush=True)

    x, y = batches.get(args.seeds[0])
    step = _train_step_seconds(archs[0], x, y)
    est = {n: [done[a][n] for a in archs] for n in names}
    tru = [truth[a] for a in archs]
    per_cell = sum(done[a]["seconds"] for a in archs) / len(archs)
    print(f"\n{len(archs)} NB201 cells (sample seed {args.seed}), seeds {args.seeds}, batch {args.batch_size}, "
          f"{torch.get_num_threads()} torch threads; truth {args.truth_col} of {Path(args.table).name}")
    print(f"baseline: one training step of the same network on the same batch = {step:.3f}s")
    print(f"{'measure':12s} {'spearman':>9s} {'kendall':>8s} {'P@top10%':>8s} {'published':>9s}")
    for n in names:
        r = ranking.evaluate_all(est[n], tru, setting=n)
        pub = zs.PUBLISHED_NB201_CIFAR10.get(n)
        sp = "nan" if r["spearman"] is None else f"{r['spearman']:.3f}"
        kt = "nan" if r["kendall_tau"] is None else f"{r['kendall_tau']:.3f}"
        p10 = r["p_at_top_k"].get("10%")
        print(f"{n:12s} {sp:>9s} {kt:>8s} {p10 if p10 is None else round(p10, 3)!s:>8s} "
              f"{pub if pub is not None else '-':>9}"
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
