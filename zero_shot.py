"""Zero-shot scores (grad_norm, snip, grasp, fisher, jacob_cov, synflow, relu_logdet, params, flops) of architectures.

    python zero_shot.py --space nb201 --archs archs.txt --dataset cifar10 --data_path DIR --batch_size 64 \\
        --seeds 20 2020 202020 --out scores.csv
    python zero_shot.py --space darts --sample 10 --seed 0 --dataset folder --data_path DIR --out scores.csv

One CSV row per architecture (``arch_str`` for NB201, ``genotype`` for DARTS spaces) and one column per
measure, averaged over the seeds (each seed: its own initial weights and training batch). Rows are
appended as they finish, so rerunning the same command resumes. ``evaluate_estimators.py`` reads the CSV.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path
from typing import Sequence

from nas import zeroshot as zs
from nas.cli import UsageError, get_logger, run_cli


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description="Zero-shot (zero-cost) scores of architectures -> CSV")
    p.add_argument("--space", default="nb201", help="nb201, darts or s1..s5 (DARTS-PT's reduced spaces)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--archs", help="file with one NB201 arch string or Genotype(...) per line")
    src.add_argument("--sample", type=int, help="score N architectures sampled from the space")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample")
    p.add_argument("--seeds", type=int, nargs="+", default=[20, 2020, 202020],
                   help="init/batch seeds averaged per architecture (aw_nas: 20 2020 202020)")
    p.add_argument("--measures", nargs="*", default=list(zs.MEASURES),
                   help=f"subset of {' '.join(zs.MEASURES)} (none with --oneshot: only the one-shot column)")
    p.add_argument("--oneshot", metavar="RUN_DIR",
                   help="also score each architecture by its accuracy inside this search.py supernet (column "
                        "'oneshot'), on the held-out part of train the search used for its alphas")
    p.add_argument("--oneshot_epoch", type=int, default=None, help="supernet checkpoint after this many epochs")
    p.add_argument("--oneshot_limit_valid", type=int, default=1024, help="validation images for --oneshot")
    p.add_argument("--dataset", default="cifar10", help="cifar10, cifar100, svhn or folder")
    p.add_argument("--data_path", default="data/", help="dataset folder")
    p.add_argument("--limit_train", type=int, default=None, help="keep the first N training images")
    p.add_argument("--batch_size", type=int, default=64, help="images per batch (zero-cost-nas: 64)")
    p.add_argument("--init_channels", type=int, default=None, help="network width C (NB201 16, DARTS 32)")
    p.add_argument("--layers", type=int, default=None, help="NB201: cells per stage N (5); DARTS: cells (8)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--out", required=True, help="CSV to write (appended to when resuming)")
    p.add_argument("--overwrite", action="store_true", help="start --out afresh instead of resuming")
    return p


def _read_archs(path: str, space) -> list:
    """Architectures of a file, one per line (blank lines and # comments skipped); errors name file:line."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--archs {path}: no such file")
    out = []
    for i, line in enumerate(p.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            out.append(space.parse(line))
        except ValueError as exc:
            raise ValueError(f"{path}:{i}: {exc}") from None
    if not out:
        raise UsageError(f"--archs {path}: no architectures in the file")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Score the architectures and write the CSV."""
    args = build_parser().parse_args(argv)
    log = get_logger("zero_shot")
    from nas.spaces import get_space

    names = zs.check_measures(args.measures)
    columns = names + (["oneshot"] if args.oneshot else [])
    if not columns:
        raise UsageError("nothing to score: give --measures and/or --oneshot RUN_DIR")
    if args.batch_size < 2:
        raise UsageError("--batch_size must be at least 2 (jacob_cov and relu_logdet compare samples)")
    if args.sample is not None and args.sample <= 0:
        raise UsageError(f"--sample must be positive, got {args.sample}")
    space = get_space(args.space)
    archs = _read_archs(args.archs, space) if args.archs else None
    if archs is None:
        rng = random.Random(args.seed)
        archs = [space.sample(rng) for _ in range(args.sample)]
    arch_col = "arch_str" if space.kind == "nb201" else "genotype"

    out = Path(args.out)
    done: set[str] = set()
    if out.exists() and not args.overwrite:
        with out.open() as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != [arch_col, *columns, "seconds"]:
                raise UsageError(f"--out {out} exists with other columns ({reader.fieldnames}); "
                                 "pass --overwrite or another --out")
            done = {r[arch_col] for r in reader}
        log.info("resuming: %d of %d architectures already in %s", len(done & {space.key(a) for a in archs}),
                 len(archs), out)

    from nas.data import load_dataset
    from nas.train import resolve_device

    device = resolve_device(args.device)
    # only training batches are used: a train_portion split avoids decoding the test set
    data = load_dataset(args.dataset, args.data_path, valid=0.98, limit_train=args.limit_train)
    cfg = zs.default_net_config(space.kind, n_classes=data.n_classes, input_size=int(data.train_x.shape[-1]),
                                in_channels=int(data.train_x.shape[1]))
    if args.init_channels:
        cfg.C = args.init_channels
    if args.layers:
        cfg.layers = args.layers
    batches = zs.BatchSource(data, batch_size=min(args.batch_size, len(data.train_y)), device=device)
    oneshot = None
    if args.oneshot:
        from nas.supernet_search import load_search

        scfg, _ = load_search(args.oneshot, epoch=args.oneshot_epoch, device=device)
        if (scfg.space == "nb201") != (space.kind == "nb201"):
            raise UsageError(f"--oneshot {args.oneshot} searched space {scfg.space!r}, not {args.space!r}")
        vdata = load_dataset(args.dataset, args.data_path, valid=scfg.train_portion,
                             limit_valid=args.oneshot_limit_valid)
        oneshot = zs.OneShotEstimator(args.oneshot, vdata, device, epoch=args.oneshot_epoch)

    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = args.overwrite or not out.exists()
    total, n_scored = 0.0, 0
    with out.open("w" if fresh else "a", newline="") as f:
        w = csv.writer(f)
        if fresh:
            w.writerow([arch_col, *columns, "seconds"])
        for i, arch in enumerate(archs):
            key = space.key(arch)
            if key in done:
                continue
            vals, sec = zs.score_architecture(arch, cfg=cfg, batches=batches.get, seeds=args.seeds, names=names,
                                              device=device) if names else ({}, 0.0)
            if oneshot is not None:
                os_score = oneshot.score(arch)
                vals["oneshot"], sec = os_score.value, sec + os_score.cost_seconds
            w.writerow([key, *[repr(vals[n]) for n in columns], f"{sec:.3f}"])
            f.flush()  # a kill loses at most the architecture in progress
            done.add(key)
            total += sec
            n_scored += 1
            log.info("[%d/%d] %.2fs  %s", i + 1, len(archs), sec,
                     " ".join(f"{n}={vals[n]:.4g}" for n in columns))
    if n_scored:
        log.info("scored %d architectures, %.2f s per architecture (%d seeds, batch %d, %s); wrote %s",
                 n_scored, total / n_scored, len(args.seeds), batches.batch_size, device, out)
    else:
        log.info("nothing to do: every architecture is already in %s", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
