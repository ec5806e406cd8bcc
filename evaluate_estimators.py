"""Ranking quality of performance estimates against a ground truth (aw_nas criteria), and the BPE trails.

    python evaluate_estimators.py --estimates scores.csv --truth ../shared/benchmarks/nb201_12epoch.csv \\
        --truth-col cifar10_test_acc --out eval.json --plot eval.png
    python evaluate_estimators.py --xlsx ../shared/bpe/Search_Hyperparameters_Results.xlsx \\
        --out bpe_eval.json --importance-plot knobs.png
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Sequence

from nas import bpe_trails, ranking
from nas.cli import UsageError, get_logger, run_cli
from nas.estimates import evaluate_files
from nas.io import atomic_write_json, run_metadata
from nas.plots import estimate_scatter, importance_bars


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description="Kendall, Spearman, Pearson, P@top/bottom-K, BR/WR@K of estimates "
                                            "against a ground truth")
    src = p.add_argument_group("estimates and truth")
    src.add_argument("--estimates", help="CSV (arch_str/genotype/arch column; zero_shot.py output), augment.py "
                                         "results.json or a run JSON")
    src.add_argument("--est-col", "--est_col", dest="est_col", nargs="+",
                     help="estimate column(s)/key(s); default: every numeric column (CSV), valid_acc or value (JSON)")
    src.add_argument("--truth", help="ground truth: NB201 CSV, another results.json, or the BPE xlsx (Ground_truth)")
    src.add_argument("--truth-col", "--truth_col", dest="truth_col", default=None,
                     help="truth column/key (default: cifar10_test_acc for CSV, valid_acc/value for JSON)")
    src.add_argument("--xlsx", help="the BPE trails workbook: evaluate its 32 budget settings and the knob importance")
    p.add_argument("--ks", type=float, nargs="+", default=[k * 100 for k in ranking.DEFAULT_KS],
                   help="K values in percent of the set (default 0.1 0.5 1 5 10 20 50, as aw_nas)")
    p.add_argument("--out", help="write the results here as JSON (a list, one object per setting)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out / plot file")
    p.add_argument("--plot", help="scatter PNG of estimate against truth, one panel per setting")
    p.add_argument("--importance-plot", "--importance_plot", dest="importance_plot",
                   help="(--xlsx) bar PNG of the knobs' fANOVA importance for the Spearman correlation")
    p.add_argument("--seed", type=int, default=0, help="(--xlsx) seed of the fANOVA forest")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate estimates (or the BPE trails) and print / write the criteria."""
    args = build_parser().parse_args(argv)
    log = get_logger("evaluate_estimators")
    started = time.time()
    bad = [k for k in args.ks if not 0 < k <= 100]
    if bad:
        raise UsageError(f"--ks values are percents in (0, 100], got {bad[0]:g}")
    ks = [k / 100.0 for k in args.ks]
    for flag, path in (("--out", args.out), ("--plot", args.plot), ("--importance-plot", args.importance_plot)):
        if path and Path(path).exists() and not args.overwrite:
            raise UsageError(f"{flag} {path} exists; pass --overwrite to replace it")
    if args.xlsx:
        if args.estimates or args.truth:
            raise UsageError("--xlsx evaluates the workbook's own settings; leave out --estimates/--truth")
        rows, panels, imp, text = bpe_trails.evaluate_workbook(args.xlsx, ks, seed=args.seed)
        truth_name = "ground truth accuracy (%)"
        if args.importance_plot:
            importance_bars(imp, args.importance_plot,
                            title=f"BPE trails: knob importance for Spearman rho ({len(rows)} budget settings)")
            log.info("wrote %s", args.importance_plot)
    else:
        if not args.estimates or not args.truth:
            raise UsageError("give --estimates FILE and --truth FILE (or --xlsx FILE)")
        rows, panels, truth_name, text = evaluate_files(args.estimates, args.truth, est_cols=args.est_col,
                                                        truth_col=args.truth_col, ks=ks, log=log)
    print(text)
    if args.plot:
        estimate_scatter(panels, args.plot, truth_name)
        log.info("wrote %s", args.plot)
    if args.out:
        meta = run_metadata(vars(args), seed=args.seed, started=started)
        for r in rows:
            r["meta"] = {"estimates": args.estimates or args.xlsx, "truth": args.truth or args.xlsx,
                         "elapsed_seconds": meta["elapsed_seconds"], "versions": meta["versions"]}
        atomic_write_json(args.out, rows)
        log.info("wrote %s (%d settings)", args.out, len(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
