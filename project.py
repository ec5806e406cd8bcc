"""DARTS-PT perturbation-based selection on a search.py run directory.

Loads <DIR>/checkpoint.pt (or checkpoint_<E>.pt), decides every edge by masking its ops, fine-tunes
between decisions, and writes <DIR>/projection.json (genotype, argmax genotype, every decision's
scores) and <DIR>/projection.log. A killed projection continues when rerun with the same flags.

    python project.py --resume_expid searchs/search-darts-nb201-2 --benchmark nb201_12epoch.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from nas.cli import get_logger, run_cli


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="project.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resume_expid", required=True, help="search run directory (search.py's output)")
    p.add_argument("--resume_epoch", type=int, default=None, help="use checkpoint_<E>.pt (default: the latest)")
    p.add_argument("--edge_decision", default="random", type=str.lower, help="random or fixed (default random)")
    p.add_argument("--crit", "--proj_crit", dest="crit", default=None, type=str.lower,
                   help="acc or loss for every decision (sets the three below)")
    p.add_argument("--crit_normal", "--proj_crit_normal", dest="crit_normal", default="acc", type=str.lower)
    p.add_argument("--crit_reduce", "--proj_crit_reduce", dest="crit_reduce", default="acc", type=str.lower)
    p.add_argument("--crit_edge", "--proj_crit_edge", dest="crit_edge", default="acc", type=str.lower)
    p.add_argument("--proj_intv", type=int, default=5, help="tuning epochs between decisions (default 5)")
    p.add_argument("--seed", type=int, default=2, help="seed of the random edge order (default 2)")
    p.add_argument("--tag", default="projection", help="output name: <DIR>/<tag>.json (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing <tag>.json")
    p.add_argument("--benchmark", default=None, help="NAS-Bench-201 CSV: table accuracy of projected and argmax")
    p.add_argument("--metric", default="cifar10_test_acc", help="benchmark column (default %(default)s)")
    p.add_argument("--data_path", default=None, help="dataset folder if it moved since the search")
    p.add_argument("--limit_train", type=int, default=None, help="override the search's --limit_train")
    p.add_argument("--limit_valid", type=int, default=None, help="override the search's --limit_valid")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda (default auto)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from nas.projection import ProjectionConfig, run_projection
    from nas.train import configure_threads, resolve_device

    if args.crit:
        args.crit_normal = args.crit_reduce = args.crit_edge = args.crit
    pcfg = ProjectionConfig(resume_epoch=args.resume_epoch, edge_decision=args.edge_decision,
                            crit_normal=args.crit_normal, crit_reduce=args.crit_reduce, crit_edge=args.crit_edge,
                            proj_intv=args.proj_intv, seed=args.seed)
    pcfg.check()
    device = resolve_device(args.device)
    configure_threads()
    if args.threads:  # on a shared CPU one thread per process avoids OpenMP spin-waiting
        import torch

        torch.set_num_threads(args.threads)
    run_dir = Path(args.resume_expid)
    logger = get_logger("project", run_dir / f"{args.tag}.log" if run_dir.is_dir() else None)
    run_projection(run_dir, pcfg, device=device, benchmark=args.benchmark, metric=args.metric, out_name=args.tag,
                   overwrite=args.overwrite, logger=logger,
                   data_overrides={"data_path": args.data_path, "limit_train": args.limit_train,
                                   "limit_valid": args.limit_valid})
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
