"""REINFORCE (LSTM controller) search over a space with any estimator (BPE run_rl.py).

Example: ``python run_rl.py --run_id=0 --n_iters=100 --param=BPE1`` or, on the NAS-Bench-201 table,
``python run_rl.py --space nb201 --benchmark nb201_12epoch.csv --metric cifar10_valid_acc``.
Under ``torchrun --nproc_per_node=N`` a batch of ``--batch_candidates`` is scored one per rank.
"""

from __future__ import annotations

import argparse
from typing import Sequence

from nas.cli import run_cli


def build_parser() -> argparse.ArgumentParser:
    """Estimator, budget, data and search flags."""
    from nas.estimators import add_estimator_args
    from nas.strategies import add_search_args

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_estimator_args(parser)
    add_search_args(parser, "rl")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, search, write run_<PARAM>_<run_id>.json."""
    from nas.strategies import search_main

    args = build_parser().parse_args(argv)
    return search_main(args, "rl")


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
