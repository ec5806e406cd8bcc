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
from nas.estimates import pair_up, read_values
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


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse to overwrite an existing result unless asked to."""
    for flag, path in (("--out", args.out), ("--plot", args.plot), ("--importance-plot", args.importance_plot)):
        if path and Path(path).exists() and not args.overwrite:
            raise UsageError(f"{flag} {path} exists; pass --overwrite to replace it")


def _run_xlsx(args: argparse.Namespace, ks: list[float], log) -> tuple[list[dict], list]:
    trails = bpe_trails.read_trails(args.xlsx)
    rows = bpe_trails.evaluate_trails(trails, ks)
    print(ranking.format_table(rows, k_show=("5%", "10%"), extra=("sheet_correlation", "gpu_hours_per_cell")))
    worst = max(rows, key=lambda r: abs(r["spearman_minus_sheet"]))
    print(f"max |spearman - sheet 'Correlation'| over {len(rows)} settings: "
          f"{abs(worst['spearman_minus_sheet']):.5f} ({worst['setting']})")
    imp = bpe_trails.knob_importance(rows, target="spearman", seed=args.seed)
    print("fANOVA importance of the knobs for the Spearman correlation (optuna FanovaImportanceEvaluator):")
    for k, v in sorted(imp.items(), key=lambda kv: -kv[1]):
        print(f"  {k:14s} {v:.3f}")
    for r in rows:
        r["knob_importance"] = imp  # the same table on every row keeps the output a flat list
    if args.importance_plot:
        importance_bars(imp, args.importance_plot,
                        title=f"BPE trails: knob importance for Spearman rho ({len(rows)} budget settings)")
        log.info("wrote %s", args.importance_plot)
    panels = [(t, trails.acc[t], trails.truth) for t in trails.tasks]
    return rows, panels


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate estimates (or the BPE trails) and print / write the criteria."""
    args = build_parser().parse_args(argv)
    log = get_logger("evaluate_estimators")
    started = time.time()
    ks = []
    for k in args.ks:
        if not 0 < k <= 100:
            raise UsageError(f"--ks values are percents in (0, 100], got {k:g}")
        ks.append(k / 100.0)
    _check_outputs(args)
    if args.xlsx:
        if args.estimates or args.truth:
            raise UsageError("--xlsx evaluates the workbook's own settings; leave out --estimates/--truth")
        rows, panels = _run_xlsx(args, ks, log)
        truth_name = "ground truth acc"
    else:
        if not args.estimates or not args.truth:
            raise UsageError("give --estimates FILE and --truth FILE (or --xlsx FILE)")
        est = read_values(args.estimates, args.est_col)
        truth_col = args.truth_col
        if truth_col is None and Path(args.truth).suffix.lower() == ".csv":
            truth_col = "cifar10_test_acc"
        truth_all = read_values(args.truth, [truth_col] if truth_col else None)
        truth_name, truth = next(iter(truth_all.items()))
        rows, panels = [], []
        for name, values in est.items():
            archs, e, t = pair_up(values, truth)
            if len(archs) < 2:
                raise ValueError(f"{name}: only {len(archs)} of {len(values)} architectures of {args.estimates} "
                                 f"are in {args.truth}")
            if len(archs) < len(values):
                log.warning("%s: %d of %d architectures have no ground truth; left out",
                            name, len(values) - len(archs), len(values))
            rows.append(ranking.evaluate_all(e, t, ks, setting=name))
            panels.append((name, e, t))
        print(ranking.format_table(rows, k_show=tuple(ranking.k_label(k) for k in ks if k in (0.05, 0.1)) or
                                   (ranking.k_label(ks[0]),)))
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
