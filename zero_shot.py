"""Zero-shot scores (grad_norm, snip, grasp, fisher, jacob_cov, synflow, relu_logdet, params, flops) of architectures.

    python zero_shot.py --space nb201 --archs archs.txt --dataset cifar10 --data_path DIR --batch_size 64 \\
        --seeds 20 2020 202020 --out scores.csv
    python zero_shot.py --space darts --sample 10 --seed 0 --dataset folder --data_path DIR --out scores.csv

One CSV row per architecture (``arch_str`` for NB201, ``genotype`` for DARTS spaces) and one column per
measure, averaged over the seeds (each seed: its own initial weights and training batch). Rows are
appended as they finish and the settings are kept beside the CSV, so rerunning the same command resumes.
All of NAS-Bench-201 on one GPU with 4 processes sharing it (any rank takes the next cell; rank 0 writes):

    torchrun --standalone --nproc_per_node=4 zero_shot.py --space nb201 --all --data_path DIR --out nb201.csv
``evaluate_estimators.py`` reads the CSV.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Sequence

from nas.cli import UsageError, add_runtime_args, get_logger, run_cli, setup_threads
from nas.device import resolve_device
from nas.distributed import broadcast_object, cleanup, init_distributed
from nas.estimators import zeroshot as zs
from nas.estimators.scoring import ScoreTable, build_scorers, oneshot_columns, score_all, select_archs
from nas.progress import set_quiet
from nas.rundir import normalize_path
from nas.spaces import get_space


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description="Zero-shot (zero-cost) scores of architectures -> CSV")
    p.add_argument("--space", default="nb201", help="nb201, darts or s1..s5 (DARTS-PT's reduced spaces)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--archs", help="file with one NB201 arch string or Genotype(...) per line")
    src.add_argument("--sample", type=int, help="score N architectures sampled from the space")
    src.add_argument("--all", action="store_true", help="score every NAS-Bench-201 cell (15,625), resumably")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample")
    p.add_argument("--seeds", type=int, nargs="+", default=[20, 2020, 202020],
                   help="init/batch seeds averaged per architecture (aw_nas: 20 2020 202020)")
    p.add_argument("--measures", nargs="*", default=list(zs.MEASURES),
                   help=f"subset of {' '.join(zs.MEASURES)} (none with --oneshot: only the one-shot column)")
    p.add_argument("--oneshot", metavar="RUN_DIR",
                   help="also score each architecture by its accuracy inside this supernet: a search.py run (column "
                        "'oneshot', on the held-out alpha half) or a train_oneshot.py run (aw_nas' derive: columns "
                        "oneshot, oneshot_neg_loss, oneshot_batch_std; per class <out>.oneshot_classes.csv)")
    p.add_argument("--oneshot_epoch", type=int, default=None, help="supernet checkpoint after this many epochs")
    p.add_argument("--oneshot_limit_valid", type=int, default=None,
                   help="validation images for --oneshot (default: 1024 for search.py runs, all for single-path)")
    p.add_argument("--dataset", default="cifar10", help="cifar10, cifar100, svhn or folder")
    p.add_argument("--data_path", default="data/", help="dataset folder")
    p.add_argument("--limit_train", type=int, default=None, help="keep the first N training images")
    p.add_argument("--batch_size", type=int, default=64, help="images per batch (zero-cost-nas: 64)")
    p.add_argument("--init_channels", type=int, default=None, help="network width C (NB201 16, DARTS 32)")
    p.add_argument("--layers", type=int, default=None, help="NB201: cells per stage N (5); DARTS: cells (8)")
    p.add_argument("--out", required=True, help="CSV to write (appended to when resuming)")
    p.add_argument("--overwrite", action="store_true", help="start --out afresh instead of resuming")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no log lines")
    add_runtime_args(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Score the architectures and write the CSV (under torchrun: ranks share the work, rank 0 writes)."""
    args = build_parser().parse_args(argv)
    set_quiet(args.quiet)
    log = get_logger("zero_shot", quiet=args.quiet)
    names = zs.check_measures(args.measures)
    columns = names + oneshot_columns(args.oneshot)
    if not columns:
        raise UsageError("nothing to score: give --measures and/or --oneshot RUN_DIR")
    if args.batch_size < 2:
        raise UsageError("--batch_size must be at least 2 (jacob_cov and relu_logdet compare samples)")
    space = get_space(args.space)
    archs = select_archs(space, file=args.archs, sample=args.sample, seed=args.seed, every=args.all)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "overwrite", "device", "threads", "archs",
                                                                  "sample", "seed", "all", "quiet")}
    settings["data_path"] = normalize_path(args.data_path)
    ctx = init_distributed(args.device)
    table, failed = None, True
    try:
        device = resolve_device(ctx.device)
        setup_threads(args.threads, world_size=ctx.world_size if device.type == "cpu" else 1)
        todo = None
        if ctx.is_main:
            table = ScoreTable(args.out, arch_column="arch_str" if space.kind == "nb201" else "genotype",
                               columns=columns, settings=settings, overwrite=args.overwrite)
            todo = [i for i, a in enumerate(archs) if space.key(a) not in table.done]
            log.info("%d architectures, %d already in %s", len(archs), len(archs) - len(todo), args.out)
        todo = broadcast_object(todo, ctx)  # a short collective: every rank is here
        if todo:
            proxies, oneshot = build_scorers(args, space, names, device, world_size=ctx.world_size)
            with contextlib.closing(oneshot) if hasattr(oneshot, "close") else contextlib.nullcontext():
                score_all([archs[i] for i in todo], space, table, proxies=proxies, oneshot=oneshot, logger=log,
                          ctx=ctx)
        failed = False
    finally:
        if table is not None:
            table.close()
        cleanup(ctx, timeout_s=None, failed=failed)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
