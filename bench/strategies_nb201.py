"""REA vs REINFORCE vs random search on the NAS-Bench-201 table, equal budgets, several seeds.

Each run searches with ``--metric`` (default cifar10_valid_acc) for ``--n_iters`` evaluations; the
final pick is the best-by-metric architecture of its history (as in NAS-Bench-201, Dong & Yang
2020, Sec. 5). Reported: mean/std of the pick's ``--report`` column (cifar10_test_acc) and of its
rank among all cells by that column (1 = best), plus ratios against random search measured here.

    python bench/strategies_nb201.py --benchmark ../shared/benchmarks/nb201_12epoch.csv
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from nas.cli import run_cli  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """Benchmark, budget, seeds and strategy hyper-parameters."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", default="../shared/benchmarks/nb201_12epoch.csv")
    p.add_argument("--metric", default="cifar10_valid_acc")
    p.add_argument("--report", default="cifar10_test_acc")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--n_iters", type=int, default=150)
    p.add_argument("--pop_size", type=int, default=10, help="NB201 paper's REA population")
    p.add_argument("--sample_size", type=int, default=3, help="NB201 paper's REA tournament size")
    p.add_argument("--rl_lr", type=float, default=0.01, help="controller lr (Adam, LSTM controller)")
    p.add_argument("--controller", default="lstm", choices=["lstm", "logits"])
    p.add_argument("--methods", default="evolution,rl,random")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run every method x seed in-process and print the table."""
    from nas.estimators import TableEstimator
    from nas.strategies import RandomSearch, RegularizedEvolution, Reinforce, make_encoding, run_search

    args = build_parser().parse_args(argv)
    est = TableEstimator(args.benchmark, args.metric)
    table = est.table
    table.check_column(args.report)
    n_cells = len(table)
    best_arch, best_val = table.best(args.report)
    enc = make_encoding("nb201")
    print(f"# {Path(args.benchmark).name}: {n_cells} cells, search by {args.metric}, report {args.report} "
          f"(best cell {best_val:.2f}); {args.seeds} seeds x {args.n_iters} evaluations")
    print(f"# REA pop {args.pop_size} tournament {args.sample_size}; REINFORCE {args.controller} controller lr "
          f"{args.rl_lr}, EMA baseline 0.9, entropy 1e-4")
    rows = {}
    for method in args.methods.split(","):
        accs, ranks = [], []
        t0 = time.time()
        for seed in range(args.seeds):
            if method == "evolution":
                strat = RegularizedEvolution(enc, seed, pop_size=args.pop_size, sample_size=args.sample_size)
            elif method == "rl":
                strat = Reinforce(enc, seed, lr=args.rl_lr, controller=args.controller)
            else:
                strat = RandomSearch(enc, seed)
            hist = run_search(strat, enc, est, n_iters=args.n_iters)
            pick = max(hist, key=lambda h: h["value"])["arch"]
            accs.append(table.query(pick, args.report))
            ranks.append(table.rank(pick, args.report))
        rows[method] = (accs, ranks, time.time() - t0)
    print(f"{'method':<10} {'test acc mean':>13} {'std':>6} {'rank mean':>10} {'std':>8} {'seconds':>8}")
    for m, (a, r, s) in rows.items():
        print(f"{m:<10} {statistics.mean(a):13.3f} {statistics.pstdev(a):6.3f} {statistics.mean(r):10.1f} "
              f"{statistics.pstdev(r):8.1f} {s:8.1f}")
    if "random" in rows:
        base_a, base_r = statistics.mean(rows["random"][0]), statistics.mean(rows["random"][1])
        for m, (a, r, _) in rows.items():
            print(f"ratio vs random: {m:<10} test acc x{statistics.mean(a) / base_a:.4f}  "
                  f"rank x{statistics.mean(r) / base_r:.3f} (lower rank is better)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
