"""What run_rl.py, run_evolution.py and run_random.py share after parsing: flags, run files, the search.

A run is named by its strategy, tag (the budget, the benchmark's name or the estimator) and ``--run_id``
inside ``--output_path``: ``run_<tag>_<id>.json`` (BPE's result keys), ``<EA|RL|RS>_<tag>_<id>.ckpt``,
``.log``, ``tb_*`` and the folder ``work_<EA|RL|RS>_<tag>_<id>/`` (its ``config.json`` holds every
setting that changes a result; budgeted training keeps one sub-folder per evaluation there). The run
goes through ``nas.rundir.RunFolder``: one writer, a changed setting refused by name, ``--overwrite``
removing every file of the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import random
import re
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.tensorboard import SummaryWriter

from nas.checkpoint import load_checkpoint
from nas.cli import add_runtime_args, distributed_job
from nas.data import resolve_dataset
from nas.distributed import DistContext, on_main
from nas.errors import ConfigError, NASError
from nas.estimators.factory import build_estimator, estimator_kind
from nas.io import atomic_write_json, get_logger, run_metadata
from nas.progress import set_quiet
from nas.rundir import RunFolder, normalize_path
from nas.strategies.base import RandomSearch, Strategy
from nas.strategies.bpe_parse import bpe_results
from nas.strategies.encodings import ENCODINGS, make_encoding
from nas.strategies.evolution import RegularizedEvolution
from nas.strategies.loop import run_search
from nas.strategies.reinforce import CONTROLLERS, Reinforce
from param_setting import budget_from_args

METHODS = {"evolution": "EA", "rl": "RL", "random": "RS"}


def make_strategy(method: str, encoding: Any, args: argparse.Namespace) -> Strategy:
    """The strategy the command line asks for."""
    if method == "evolution":
        return RegularizedEvolution(encoding, args.seed, pop_size=args.pop_size, sample_size=args.sample_size)
    if method == "rl":
        return Reinforce(encoding, args.seed, lr=args.lr_controller, momentum=args.baseline_momentum,
                         controller=args.controller, entropy_weight=args.entropy_weight,
                         optimizer=args.controller_optimizer, reward_scale=args.reward_scale)
    if method == "random":
        return RandomSearch(encoding, args.seed)
    raise ConfigError(f"unknown --strategy {method!r}; allowed: {', '.join(METHODS)}")


def run_tag(args: argparse.Namespace) -> str:
    """``BPE1`` for budgeted training, the benchmark's stem with --benchmark, else the estimator name."""
    if getattr(args, "benchmark", None):
        return re.sub(r"[^A-Za-z0-9.-]+", "-", Path(args.benchmark).stem)
    if args.estimator not in ("auto", "train"):
        return re.sub(r"[^A-Za-z0-9.-]+", "-", args.estimator)
    return str(args.param)


def add_search_args(parser: argparse.ArgumentParser, method: str | None) -> None:
    """Flags shared by run_rl.py, run_evolution.py and run_random.py (BPE's names kept)."""
    if method is None:
        parser.add_argument("--strategy", default="evolution", choices=list(METHODS), help="search strategy")
    parser.add_argument("--run_id", default=0, type=int, help="identifies the run in file names")
    parser.add_argument("--seed", default=2, type=int, help="seeds the strategy and the training (BPE default 2)")
    default_out = {"rl": "experiment/RL", "evolution": "experiment/EA", "random": "experiment/RS"}.get(method or "",
                                                                                                      "experiment")
    parser.add_argument("--output_path", default=default_out, help="folder for the JSON, log, checkpoint")
    parser.add_argument("--n_iters", default=100, type=int, help="number of evaluations (equal budget for all)")
    parser.add_argument("--space", default="darts", type=str.lower,
                        help="darts (BPE's space), s1..s5 (DARTS-PT's) or nb201")
    parser.add_argument("--encoding", default="auto", choices=list(ENCODINGS),
                        help="DARTS: bpe = BPE's supernet genotype (all 14 edges, default), pair = two-input cells")
    parser.add_argument("--batch_candidates", default=1, type=int,
                        help="candidates proposed per step and scored in parallel (one per torchrun rank)")
    parser.add_argument("--overwrite", action="store_true", help="start over: remove every file of this run first")
    parser.add_argument("--quiet", action="store_true", help="log to the .log file only")
    add_runtime_args(parser)
    if method in ("evolution", None):
        parser.add_argument("--pop_size", default=50, type=int, help="population size (BPE 50; NB201 paper 10)")
        parser.add_argument("--sample_size", default=10, type=int, help="tournament size (BPE 10; NB201 paper 3)")
    if method in ("rl", None):
        # BPE's run_rl.py calls the controller's learning rate --lr; it replaces the budget's --lr here
        # (the training lr stays reachable as --w_lr).
        rl = parser.add_argument_group("controller", conflict_handler="resolve")
        rl.add_argument("--lr", "--lr_controller", dest="lr_controller", default=None, type=float,
                        help="controller learning rate (default: bpe 0.1 as BPE's --lr, nb201 0.01 as AutoDL's "
                             "NATS-algos run-all.sh, lstm 0.1); training lr: --w_lr")
        rl.add_argument("--momentum_baseline", "--momentum", dest="baseline_momentum", default=0.9, type=float,
                        help="EMA momentum of the reward baseline (BPE --momentum, 0.9); training: --w_momentum")
        rl.add_argument("--w_momentum", dest="momentum", default=None, type=float, help="training SGD momentum")
        parser.add_argument("--controller", default="auto", choices=list(CONTROLLERS),
                            help="auto (bpe in DARTS spaces, nb201 on nb201), bpe (= logits: BPE's zero-initialised "
                                 "logits, gradient ascent), nb201 (AutoDL's policy, Adam), lstm (ENAS-style)")
        parser.add_argument("--controller_optimizer", default="auto", choices=["auto", "sgd", "adam"],
                            help="auto: sgd (BPE's gradient ascent) for bpe, adam for nb201 and lstm")
        parser.add_argument("--entropy_weight", default=None, type=float,
                            help="entropy bonus weight (default 0 as both originals; lstm 1e-4)")
        parser.add_argument("--reward_scale", default=None, type=float,
                            help="reward = score / this (default: 100 for bpe and lstm, percent -> BPE's fraction; "
                                 "1 for nb201, whose reward is the accuracy in percent)")


def result_config(args: argparse.Namespace, method: str, encoding_name: str, kind: str) -> dict[str, Any]:
    """Every setting that changes a result (written to config.json and compared on resume).

    Left out, because they change nothing in the results: --n_iters (a larger value extends the run),
    --quiet, --device, --overwrite, --output_path and --run_id (they name the run).
    """
    cfg: dict[str, Any] = {"method": method, "space": args.space, "encoding": encoding_name, "seed": args.seed,
                           "batch_candidates": args.batch_candidates, "estimator": kind}
    for k in ("pop_size", "sample_size", "lr_controller", "baseline_momentum", "controller", "controller_optimizer",
              "entropy_weight", "reward_scale"):
        if hasattr(args, k):
            cfg[k] = getattr(args, k)
    if kind in ("table", "nb201api"):
        cfg.update(benchmark=normalize_path(args.benchmark), metric=args.metric)
        if kind == "nb201api":
            cfg.update(nb201_dataset=args.nb201_dataset, nb201_hp=args.nb201_hp)
    elif kind == "nb301":
        cfg["nb301_model_dir"] = normalize_path(args.nb301_model_dir)
    else:  # training or a proxy on data
        cfg.update(dataset=args.dataset, data_path=normalize_path(args.data_path), train_portion=args.train_portion,
                   limit_train=args.limit_train, limit_valid=args.limit_valid)
        if kind == "train":
            cfg["budget"] = dataclasses.asdict(budget_from_args(args))
    return cfg


def search_main(args: argparse.Namespace, method: str | None = None) -> int:
    """Everything run_rl.py / run_evolution.py / run_random.py do after parsing."""
    method = method or args.strategy
    started = time.time()
    set_quiet(args.quiet)
    if args.n_iters < 1 or args.batch_candidates < 1:
        raise ConfigError(f"--n_iters and --batch_candidates must be >= 1, got {args.n_iters} and "
                          f"{args.batch_candidates}")
    encoding = make_encoding(args.space, args.encoding)
    kind = estimator_kind(args)
    args.dataset = resolve_dataset(args.dataset, args.data_path)  # config.json names what was read
    if kind == "train" and not getattr(args, "param", None):
        raise ConfigError("give --param (BPE1, BPE2, DARTS) for budgeted training, or --benchmark FILE")
    config = result_config(args, method, encoding.name, kind)
    tag = run_tag(args)
    prefix = METHODS[method]
    out = Path(args.output_path)
    stem = f"{prefix}_{tag}_{args.run_id}"
    json_path, ckpt_path, log_path = out / f"run_{tag}_{args.run_id}.json", out / f"{stem}.ckpt", out / f"{stem}.log"
    folder = RunFolder(out / f"work_{stem}", config, extra=[json_path, ckpt_path, log_path, out / f"tb_{stem}"],
                       what=f"search run {out / stem}")
    with distributed_job(args.device, args.threads) as ctx, folder:
        opened: dict[str, Any] = {}  # rank 0: the checkpoint state to resume from

        def open_run() -> bool:
            done, opened["resume"] = _open_run(folder, args, json_path, ckpt_path)
            return done

        if on_main(open_run, ctx):  # complete already
            return 0
        return _search(args, method, encoding, kind, config, ctx, folder, json_path, ckpt_path, log_path,
                       out / f"tb_{stem}", opened.get("resume"), started)


def _open_run(folder: RunFolder, args, json_path: Path, ckpt_path: Path) -> tuple[bool, dict | None]:
    """Lock and check the run; (True, None) when it is complete, else (False, checkpoint state or None)."""
    folder.lock.acquire()
    state = None
    if ckpt_path.exists() and not args.overwrite:  # a corrupt or incomplete state file: say so first
        state = load_checkpoint(ckpt_path)
        missing = [k for k in ("history", "strategy", "rng") if k not in state]
        if missing or not isinstance(state["history"], list):
            raise NASError(f"{ckpt_path}: corrupt checkpoint (missing {', '.join(missing) or 'history list'}); "
                           "move it away or pass --overwrite")
    folder.open(overwrite=args.overwrite)
    if state is None:
        if json_path.exists():
            raise ConfigError(f"{json_path} exists without its checkpoint {ckpt_path.name}; pass --overwrite "
                              "or another --run_id")
        return False, None
    if json_path.exists() and len(state["history"]) >= args.n_iters:
        print(f"{json_path} is complete ({len(state['history'])} evaluations); nothing to do "
              "(--overwrite starts over, a larger --n_iters extends it)")
        return True, None
    return False, state


def _search(args, method, encoding, kind, config, ctx: DistContext, folder: RunFolder, json_path, ckpt_path,
            log_path, tb_path, resume, started) -> int:
    logger = get_logger(f"nas.search.{json_path.stem}.{ctx.rank}", log_path if ctx.is_main else None,
                        quiet=args.quiet or not ctx.is_main)
    if kind == "train" and ctx.device != "cpu":
        args.device = ctx.device  # each rank trains on its own GPU
    estimator = build_estimator(args, space_kind=encoding.kind, workdir=folder.path, logger=logger)
    if ctx.is_main:
        logger.info("%s on %s (%s encoding), estimator %s, %d evaluations, batch %d, world %d", method,
                    args.space, encoding.name, kind, args.n_iters, args.batch_candidates, ctx.world_size)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    strategy = make_strategy(method, encoding, args)
    writer = SummaryWriter(str(tb_path)) if ctx.is_main else None
    try:
        history = run_search(strategy, encoding, estimator, n_iters=args.n_iters, batch=args.batch_candidates,
                             ckpt_path=ckpt_path, resume_state=resume, ctx=ctx, logger=logger, writer=writer,
                             config_key=config)
    finally:
        if writer is not None:
            writer.close()
    if not ctx.is_main:
        return 0
    bad = [h["index"] for h in history if not math.isfinite(h["value"])]
    if bad:
        raise NASError(f"non-finite scores at evaluations {bad[:5]}")
    res = bpe_results(history, method)
    res["run_metadata"] = run_metadata(config, seed=args.seed, started=started)
    res["run_metadata"].update({"method": method, "space": args.space, "encoding": encoding.name,
                                "estimator": getattr(estimator, "name", kind), "world_size": ctx.world_size,
                                "device": str(args.device), "argv_config": vars(args),
                                "val_acc_unit": "estimator value (percent for accuracies)", "pid": os.getpid()})
    if method == "rl":
        res["run_metadata"].update(controller=strategy.controller_name, controller_lr=strategy.lr,
                                   reward_scale=strategy.reward_scale)
    atomic_write_json(json_path, res)
    logger.info("Best accuracy: %s", res["best_val_acc"][0])
    logger.info("Best genotype: %s", res["best_genotype"][0])
    logger.info("wrote %s", json_path)
    return 0
