"""Write N random DARTS-space cells, one Genotype(...) per line (BPE's random_darts_generator.py, seeded).

    python random_darts_generator.py --num=100 --saveto=random_darts_architecture.txt --seed=0

Cells are drawn as BPE draws them: Gaussian weights over the 14 edges x 8 ops, parsed with DARTS' rule
(best non-'none' op per edge, the two strongest edges per node). Same seed, same file.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from nas.cli import NASError, UsageError, run_cli
from nas.io import atomic_write_text
from nas.spaces import bpe_random_genotypes_text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Write N seeded random DARTS genotypes, one per line.")
    p.add_argument("--num", type=int, default=100, help="number of architectures (default %(default)s)")
    p.add_argument("--saveto", default="random_darts_architecture.txt", help="output file (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --saveto file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.num <= 0:
        raise UsageError(f"--num must be positive, got {args.num}")
    out = Path(args.saveto)
    text = bpe_random_genotypes_text(args.num, args.seed)
    if out.exists() and not args.overwrite:
        if out.read_text() == text:  # same seed and count: rerunning a pipeline is not an error
            print(f"{out} already holds these {args.num} genotypes (seed {args.seed}); left as it is")
            return 0
        raise NASError(f"{out} exists with other content; pass --overwrite to replace it or choose another --saveto")
    atomic_write_text(out, text)
    print(f"wrote {args.num} genotypes to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
