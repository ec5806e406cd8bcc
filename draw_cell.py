"""Draw a cell diagram (PNG and PDF) of a genotype: DARTS normal and reduction cells, or a NAS-Bench-201 cell.

    python draw_cell.py --arch DARTS_V2 --out figs/darts_v2
    python draw_cell.py --arch experiments/nasbench201/search-darts-201-0/projection.json --out cell
    python draw_cell.py --arch "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"

--arch is a published name (genotypes.py), Genotype(...) text, an NB201 arch string, or a file: a result
JSON (its 'genotype' or 'best_genotype') or a text file (its first architecture line). graphviz's ``dot``
draws it as DARTS' visualize.py does; without ``dot``, matplotlib draws it.
"""

from __future__ import annotations

import argparse
from typing import Sequence

from nas.cli import run_cli
from nas.viz import ENGINES, arch_from_source, draw_genotype


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="draw_cell.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", "--genotype", dest="arch", required=True,
                   help="published name, Genotype text, NB201 string, or a result JSON / text file holding one")
    p.add_argument("--out", default="cell", help="output path without suffix: <out>.png, <out>.pdf (default cell)")
    p.add_argument("--title", default=None, help="figure title (default: the name given, if it is short)")
    p.add_argument("--engine", default="auto", choices=ENGINES, help="auto: graphviz when dot is installed")
    p.add_argument("--format", dest="formats", nargs="+", default=["png", "pdf"], choices=["png", "pdf", "svg"])
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    arch = arch_from_source(args.arch)
    title = args.title if args.title is not None else (args.arch if len(args.arch) <= 40 else None)
    for path in draw_genotype(arch, args.out, title=title, engine=args.engine, formats=tuple(args.formats)):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
