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
from typing import Sequence

from nas.cli import add_runtime_args, run_cli
from nas.estimators import zeroshot as zs
from nas.estimators.scoring import score_main


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
    return score_main(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
