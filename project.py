"""DARTS-PT perturbation-based selection on a search.py run folder.

Loads <DIR>/checkpoint.pt (or checkpoint_<E>.pt), decides every edge by masking its ops, fine-tunes
between decisions, and writes <DIR>/projection.json (genotype, argmax genotype, every decision's
scores, NB201 accuracies with --benchmark/--truth), <DIR>/projection_cell.png/.pdf (the projected cell),
<DIR>/projection.log and <DIR>/tb/projection/ (decisions and tuning curves). A killed projection
continues when rerun with the same flags.

    python project.py --resume_expid search-darts-201-0 --truth nb201_200epoch.csv
"""

from __future__ import annotations

import argparse
from typing import Sequence

from nas.cli import get_logger, run_cli
from nas.supernet.options import (
    add_benchmark_args,
    add_supernet_runtime_args,
    report_from_args,
    resolve_expid,
    setup_supernet_runtime,
)
from nas.supernet.projection import ProjectionConfig, run_projection
from nas.supernet.search import load_search
from nas.viz import try_draw


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="project.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resume_expid", required=True, help="search run folder, or its name (DARTS-PT layout)")
    p.add_argument("--save_path", default="experiments", help="root of DARTS-PT run names (default %(default)s)")
    p.add_argument("--space", "--search_space", dest="space", default=None, help="to resolve a run name (optional)")
    p.add_argument("--resume_epoch", type=int, default=None, help="use checkpoint_<E>.pt (default: the latest)")
    p.add_argument("--edge_decision", default="random", type=str.lower, help="random or fixed (default random)")
    p.add_argument("--crit", "--proj_crit", dest="crit", default=None, type=str.lower,
                   help="acc or loss for every decision (sets --crit_normal and --crit_reduce)")
    p.add_argument("--crit_normal", "--proj_crit_normal", dest="crit_normal", default="acc", type=str.lower)
    p.add_argument("--crit_reduce", "--proj_crit_reduce", dest="crit_reduce", default="acc", type=str.lower)
    p.add_argument("--crit_edge", "--proj_crit_edge", dest="crit_edge", default=None, type=str.lower,
                   help="node inputs' criterion (default: the cell's own; DARTS-PT never reads this flag)")
    p.add_argument("--proj_intv", type=int, default=5, help="tuning epochs between decisions (default 5)")
    p.add_argument("--proj_eval", default="dartspt", choices=("dartspt", "clean"),
                   help="dartspt: augmented alpha half, search batch size, train-mode BN (DARTS-PT); clean: "
                        "unaugmented, batch 256, running statistics untouched")
    p.add_argument("--seed", type=int, default=2, help="seed of the random edge order (default 2)")
    p.add_argument("--tag", default="projection", help="output name: <DIR>/<tag>.json (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing <tag>.json")
    add_benchmark_args(p)
    p.add_argument("--dataset", default=None, help="to resolve a run name (and if the data moved)")
    p.add_argument("--data_path", default=None, help="dataset folder if it moved since the search")
    p.add_argument("--limit_train", type=int, default=None, help="override the search's --limit_train")
    p.add_argument("--limit_valid", type=int, default=None, help="override the search's --limit_valid")
    add_supernet_runtime_args(p)
    p.add_argument("--no_tensorboard", action="store_true", help="do not log the decisions to <DIR>/tb/<tag>/")
    p.add_argument("--quiet", action="store_true", help="no progress bars; log to <DIR>/<tag>.log only")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.crit:
        args.crit_normal = args.crit_reduce = args.crit
    pcfg = ProjectionConfig(resume_epoch=args.resume_epoch, edge_decision=args.edge_decision,
                            crit_normal=args.crit_normal, crit_reduce=args.crit_reduce, crit_edge=args.crit_edge,
                            proj_intv=args.proj_intv, seed=args.seed, proj_eval=args.proj_eval)
    pcfg.check()
    device = setup_supernet_runtime(args)
    run_dir = resolve_expid(args.resume_expid, args.save_path, args.space, args.dataset)
    cfg, _ = load_search(run_dir, epoch=args.resume_epoch, device=device)
    logger = get_logger("project", run_dir / f"{args.tag}.log", quiet=args.quiet)
    rec = run_projection(run_dir, pcfg, device=device, report=report_from_args(args, cfg.space), out_name=args.tag,
                         overwrite=args.overwrite, logger=logger, tensorboard=not args.no_tensorboard,
                         data_overrides={"data_path": args.data_path, "limit_train": args.limit_train,
                                         "limit_valid": args.limit_valid})
    try_draw(rec["genotype"], run_dir / f"{args.tag}_cell", title=f"{run_dir.name}: projected ({cfg.space})",
             logger=logger)
    print(f"projected genotype: {rec['genotype']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
