"""REINFORCE search over a space with any estimator (BPE run_rl.py; NAS-Bench-201's REINFORCE on nb201).

Example: ``python run_rl.py --run_id=0 --n_iters=100 --param=BPE1`` or, on the NAS-Bench-201 table,
``python run_rl.py --space nb201 --benchmark nb201_12epoch.csv --metric cifar10_valid_acc``.
Under ``torchrun --nproc_per_node=N`` a batch of ``--batch_candidates`` is scored one per rank.
"""

from __future__ import annotations

import argparse
from typing import Sequence

from nas.cli import run_cli
from nas.estimators.factory import add_estimator_args
from nas.strategies.runner import add_search_args, search_main


def build_parser() -> argparse.ArgumentParser:
    """Estimator, budget, data and search flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_estimator_args(parser)
    add_search_args(parser, "rl")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, search, write run_<tag>_<run_id>.json."""
    return search_main(build_parser().parse_args(argv), "rl")


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
