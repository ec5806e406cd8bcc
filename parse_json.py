"""Read a search run's JSON and print the best genotype the BPE way, with a reward / best-so-far plot.

RL: keep each node's two most probable inputs (by the policy's max op probability) of the best
sample. EA: sample ``--number`` two-input cells from the best supernet genotype into ``--saveto``.
NAS-Bench-201 and two-input runs already hold a discrete cell: its best one is printed. The picked
cell (RL, or the best one) is drawn next to the JSON as cell_<param>_<run_id>.png/.pdf.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from nas.cli import UsageError, run_cli
from nas.plots import search_curve
from nas.strategies import ea_sample_cells, load_run, rl_choose_by_prob
from nas.strategies.bpe_parse import value_label
from nas.viz import try_draw


def build_parser() -> argparse.ArgumentParser:
    """BPE's flags plus --file, --overwrite, --number, --seed, --plot."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", required=True, choices=["RL", "EA", "RS"], help="which search wrote the JSON")
    p.add_argument("--param", default=None, help="tag in the file name (BPE1, BPE2 or the benchmark's name)")
    p.add_argument("--run_id", default=0, type=int)
    p.add_argument("--file", default=None, help="any run JSON (default experiment/<RL|EA>/run_<param>_<run_id>.json)")
    p.add_argument("--saveto", default="experiment/EA/sampling.txt", help="EA: where the sampled genotypes go")
    p.add_argument("--number", default=10, type=int, help="EA: how many two-input cells to sample")
    p.add_argument("--seed", default=None, type=int, help="EA: seed of the sampling (default: unseeded, as BPE)")
    p.add_argument("--plot", default=None, help="PNG path (default next to the JSON)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --saveto file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the run and print/write the genotypes."""
    args = build_parser().parse_args(argv)
    if args.file is None:
        if args.param is None:
            raise UsageError("give --param (and --run_id) or --file")
        folder = {"RL": "experiment/RL", "EA": "experiment/EA", "RS": "experiment/RS"}[args.method]
        args.file = f"{folder}/run_{args.param}_{args.run_id}.json"
    run = load_run(args.file)
    png = Path(args.plot) if args.plot else Path(args.file).with_name(
        Path(args.file).stem.replace("run_", "reward_" if args.method == "RL" else "best_", 1) + ".png")
    pick = None
    if run.get("bpe_encoding") and args.method == "RL":
        text = rl_choose_by_prob(run)
        print(text)
        pick = text.splitlines()[-1]
    elif run.get("bpe_encoding") and args.method == "EA":
        saveto = Path(args.saveto)
        if saveto.exists() and not args.overwrite:
            raise UsageError(f"{saveto} exists; pass --overwrite or another --saveto")
        cells = ea_sample_cells(run, number=args.number, seed=args.seed, saveto=saveto)
        for g in cells:
            print(g)
        print(f"# wrote {len(cells)} genotypes to {saveto}")
    else:
        print(f"# best value: {run['best_val_acc'][0]}")
        print(run["best_genotype"][0])
        pick = run["best_genotype"][0]
    if pick is not None:
        cell = Path(args.file).with_name("cell_" + Path(args.file).stem.removeprefix("run_"))
        if try_draw(pick, cell, title=f"{args.method}: {Path(args.file).name}"):
            print(f"# cell diagram: {cell}.png")
    rl = args.method == "RL" and bool(run.get("baseline_reward"))
    est, label = value_label(run)
    search_curve(run["val_acc"], png, title=f"{args.method}: {Path(args.file).name} ({est})", value_label=label,
                 baseline=run.get("baseline_reward") if rl else None,
                 baseline_scale=run.get("run_metadata", {}).get("reward_scale") or 100.0)
    print(f"# plot: {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
