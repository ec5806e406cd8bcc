"""Write cifar_train.beton and cifar_test.beton (FFCV) from any dataset the toolkit reads.

    python write_ffcv.py --dataset cifar10 --data_path data/ --out data/cifar_ffcv
    python write_ffcv.py --dataset folder --data_path /work/cifar10 --out /tmp/cifar_ffcv --limit_train 5000

As FFCV's examples/cifar/write_datasets.py (raw RGB pixels + integer labels); the folder then feeds
``search_evolutionary.py --train_path``. Needs ffcv (.ci/install-ffcv.sh).
"""

from __future__ import annotations

import argparse
import time
from typing import Sequence

from nas.cli import get_logger, run_cli
from nas.data import add_data_args, data_from_args
from nas.ffcv_data import require_ffcv, write_split_files


def build_parser() -> argparse.ArgumentParser:
    """--dataset/--data_path/--limit_* select the data; --out names the folder for the .beton files."""
    p = argparse.ArgumentParser(description="write FFCV .beton files (cifar_train/cifar_test) from a dataset")
    add_data_args(p)
    p.add_argument("--out", required=True, help="folder to write cifar_train.beton, cifar_test.beton into")
    p.add_argument("--image_size", type=int, default=None, help="resize images once before writing")
    p.add_argument("--workers", type=int, default=2, help="FFCV writer processes (default 2)")
    p.add_argument("--overwrite", action="store_true", help="replace existing .beton files")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Load the dataset as uint8 tensors and write both splits."""
    args = build_parser().parse_args(argv)
    require_ffcv()  # fail before decoding a whole dataset
    log = get_logger("nas")
    t0 = time.time()
    data = data_from_args(args, args.image_size)
    meta = write_split_files(args.out, data, num_workers=args.workers, overwrite=args.overwrite)
    log.info("wrote %s/cifar_train.beton (%d images) and cifar_test.beton (%d images) in %.1fs", args.out,
             meta["n_train"], meta["n_test"], time.time() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
