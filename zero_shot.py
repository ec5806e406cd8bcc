"""Zero-shot scores (grad_norm, snip, grasp, fisher, jacob_cov, synflow, relu_logdet, params, flops) of architectures.

    python zero_shot.py --space nb201 --archs archs.txt --dataset cifar10 --data_path DIR --out scores.csv
    python zero_shot.py --space nb201 --all --measures --oneshot RUN_DIR --data_path DIR --out oneshot.csv

One CSV row per architecture (``arch_str`` for NB201, ``genotype`` for DARTS spaces), one column per measure
averaged over the seeds (each: its own initial weights and batch), and with ``--oneshot`` the supernet's
estimate. Rows are appended as they finish, settings kept beside the CSV: rerunning resumes.
"""

from __future__ import annotations

import argparse
import contextlib
import random
from typing import Sequence

from nas.cli import UsageError, add_runtime_args, get_logger, run_cli, setup_threads
from nas.data import load_dataset
from nas.device import resolve_device
from nas.estimators import zeroshot as zs
from nas.estimators.oneshot import oneshot_for_run
from nas.estimators.scoring import ProxyScorer, ScoreTable, read_arch_list, score_all
from nas.rundir import normalize_path
from nas.spaces import get_space


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description="Zero-shot (zero-cost) scores of architectures -> CSV")
    p.add_argument("--space", default="nb201", help="nb201, darts or s1..s5 (DARTS-PT's reduced spaces)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--archs", help="file with one NB201 arch string or Genotype(...) per line")
    src.add_argument("--sample", type=int, help="score N architectures sampled from the space")
    src.add_argument("--all", action="store_true", help="every NAS-Bench-201 cell (15,625)")
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
    add_runtime_args(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Score the architectures and write the CSV."""
    args = build_parser().parse_args(argv)
    log = get_logger("zero_shot")
    names = zs.check_measures(args.measures)
    if not names and not args.oneshot:
        raise UsageError("nothing to score: give --measures and/or --oneshot RUN_DIR")
    if args.batch_size < 2:
        raise UsageError("--batch_size must be at least 2 (jacob_cov and relu_logdet compare samples)")
    space = get_space(args.space)
    if (args.sample is not None and args.sample <= 0) or (args.all and space.kind != "nb201"):
        raise UsageError("--sample must be positive and --all is for --space nb201 only")
    archs = read_arch_list(args.archs, space) if args.archs else list(space.enumerate()) if args.all else \
        [space.sample(rng) for rng in [random.Random(args.seed)] for _ in range(args.sample)]
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "overwrite", "device", "threads", "archs",
                                                                  "sample", "seed", "all")}
    settings["data_path"] = normalize_path(args.data_path)
    device = resolve_device(args.device)
    setup_threads(args.threads)
    oneshot, extra = oneshot_for_run(args.oneshot, space=space, dataset=args.dataset, data_path=args.data_path,
                                     device=device, epoch=args.oneshot_epoch, limit_valid=args.oneshot_limit_valid,
                                     out=args.out, overwrite=args.overwrite) if args.oneshot else (None, [])
    with contextlib.closing(oneshot) if hasattr(oneshot, "close") else contextlib.nullcontext(), \
            ScoreTable(args.out, arch_column="arch_str" if space.kind == "nb201" else "genotype",
                       columns=names + extra, settings=settings, overwrite=args.overwrite) as table:
        todo = [a for a in archs if space.key(a) not in table.done]
        log.info("%d architectures, %d already in %s", len(archs), len(archs) - len(todo), args.out)
        if not todo:
            return 0
        proxies = None
        if names:
            data = load_dataset(args.dataset, args.data_path, valid="none", limit_train=args.limit_train)
            cfg = zs.default_net_config(space.kind, n_classes=data.n_classes, input_size=data.image_size,
                                        in_channels=data.in_channels)
            cfg.C, cfg.layers = args.init_channels or cfg.C, args.layers or cfg.layers
            batches = zs.BatchSource(data, batch_size=min(args.batch_size, len(data.train_y)), device=device)
            proxies = ProxyScorer(names, cfg, batches, list(args.seeds), device)
        score_all(todo, space, table, proxies=proxies, oneshot=oneshot, logger=log)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
