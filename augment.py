"""Train genotypes from scratch under a budget (BPE1, BPE2, the DARTS protocol or any flags).

    python augment.py --name=RS_BPE1 --file=random_darts_architecture.txt --data_path=data/ \
        --save_path=experiment/ --param=BPE1
    python augment.py --name=eval --arch DARTS_V2 --param DARTS

Writes <save_path>/<name>/results.json (one record per genotype), config.json, <name>.log and tb/; without
--name the run is named after --file's stem or the --arch name, and the budget (e.g. DARTS_V2_DARTS).
Rerun the same command after a kill: finished genotypes are kept, the one in progress resumes.
Train several genotypes at once, one per process, from one work queue (a process takes the next genotype
the moment it is free; more processes than GPUs share the GPUs round-robin; several machines work too):

    torchrun --standalone --nproc_per_node=8 augment.py --name=RS_BPE1 --file=... --param=BPE1
"""

from __future__ import annotations

import argparse
import re
import zlib
from pathlib import Path
from typing import Sequence

from nas.augment import read_archs, resolved_config, run_augment
from nas.cli import add_runtime_args, distributed_job, run_cli
from nas.cudagraph import CUDA_GRAPH_CHOICES
from nas.data import add_data_args, data_from_args, resolve_dataset
from nas.device import resolve_device
from nas.progress import set_quiet
from param_setting import PARAMS, add_budget_args, budget_from_args


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train architectures from scratch under a budget; resumable.")
    p.add_argument("--name", default=None, help="run name: results go to <save_path>/<name>/ (default: --file's stem "
                                                "or the --arch name, then _<param>)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", help="text file, one Genotype(...) (or NB201 arch string) per line")
    src.add_argument("--arch", "--genotype", dest="arch",
                     help="one architecture: a published name (e.g. DARTS_V2) or Genotype/arch text")
    p.add_argument("--space", default="darts", choices=("darts", "nb201"), help="architecture space (default darts)")
    p.add_argument("--save_path", "--save_dir", dest="save_path", default="experiment/", help="(default %(default)s)")
    p.add_argument("--seed", type=int, default=2, help="random seed (BPE's default 2)")
    p.add_argument("--first", type=int, default=None, help="train only the first N architectures of --file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run with another config")
    p.add_argument("--workers", type=int, default=0, help="accepted for compatibility; data is held in memory")
    p.add_argument("--quiet", action="store_true", help="log to the .log file only")
    p.add_argument("--cuda_graph", default="auto", choices=CUDA_GRAPH_CHOICES,
                   help="capture each epoch's training step (and evaluation) as a CUDA graph and replay it: "
                        "auto = on CUDA at fp32/bf16 (fp16 trains eagerly); off = launch every kernel")
    add_data_args(p)
    add_runtime_args(p)
    add_budget_args(p, default="DARTS")
    p.epilog = f"Budget presets: {', '.join(PARAMS)}. Any budget flag overrides the preset's field."
    return p


def default_name(args: argparse.Namespace) -> str:
    """``<file stem or arch name>_<param>``; genotype text is named by its checksum (``arch-1a2b3c4d``)."""
    base = Path(args.file).stem if args.file else args.arch
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", base):
        base = f"arch-{zlib.crc32(base.encode()):08x}"
    return f"{base}_{args.param or 'custom'}"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_quiet(args.quiet)
    args.name = args.name or default_name(args)
    args.dataset = resolve_dataset(args.dataset, args.data_path)  # config.json names what was read
    budget = budget_from_args(args)
    archs = read_archs(args.space, file=args.file, text=args.arch, first=args.first)
    with distributed_job(args.device, args.threads) as ctx:
        data = data_from_args(args, budget.image_size)
        run_dir = Path(args.save_path) / args.name
        doc = run_augment(archs, space_kind=args.space, budget=budget, data=data, device=resolve_device(ctx.device),
                          seed=args.seed, run_dir=run_dir, config=resolved_config(args, budget),
                          overwrite=args.overwrite, quiet=args.quiet, ctx=ctx, cuda_graph=args.cuda_graph)
    if not ctx.is_main:
        return 0
    best = max(doc["records"], key=lambda r: r["valid_acc"])
    print(f"{len(doc['records'])} trained; best valid acc {best['valid_acc']:.2f}% (#{best['index']}): "
          f"{best['genotype']}")
    print(f"results: {run_dir / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
