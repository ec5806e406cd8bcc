"""Supernet search: DARTS-PT's (first order; darts or blank) or BPE's (pt.darts, second order) on S1-S5/darts/NB201.

    python search.py --space nb201 --method darts --seed 0       # DARTS-PT, experiments/nasbench201/search-darts-201-0
    python search.py --name=DARTS_BPE1 --batch_size=128 --w_lr=0.03 --layers=6 --init_channels=8 \\
        --epochs=10 --cutout_length=0 --image_size=16            # BPE's DARTS arm: second order (no --method)

Writes the run folder: checkpoint.pt every epoch (checkpoint_<E>.pt every --ckpt_interval), search.json
(genotype, alphas and statistics per epoch, NB201 accuracies with --benchmark/--truth), search_cell.png/.pdf
(the genotype's diagram), config.json, a .log and tb/. Rerunning the same command continues; then run
project.py on the folder.
"""

from __future__ import annotations

import argparse
from typing import Sequence

import torch

from nas.cli import get_logger, run_cli
from nas.supernet.options import (
    add_search_args,
    checkpoint_interval,
    config_from_args,
    report_from_args,
    run_folder,
    setup_supernet_runtime,
)
from nas.supernet.search import run_search
from nas.viz import try_draw


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="search.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_search_args(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    report = report_from_args(args, cfg.space)
    run_dir = run_folder(args, cfg)
    device = setup_supernet_runtime(args)
    torch.backends.cudnn.benchmark = True
    logger = get_logger("search", quiet=args.quiet)
    logger.info("%s protocol: %s", cfg.protocol, cfg)
    rec = run_search(cfg, run_dir, device=device, resume_epoch=args.resume_epoch, overwrite=args.overwrite,
                     ckpt_interval=checkpoint_interval(args, cfg), report=report, logger=logger,
                     tensorboard=not args.no_tensorboard, channels_last=args.channels_last, max_steps=args.max_steps)
    try_draw(rec["genotype"], run_dir / "search_cell", title=f"{run_dir.name}: {cfg.method} on {cfg.space}",
             logger=logger)
    print(f"run folder: {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
