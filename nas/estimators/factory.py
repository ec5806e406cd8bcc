"""The estimator a command line asks for (shared by run_rl.py, run_evolution.py and run_random.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nas.data import add_data_args, load_dataset
from nas.device import resolve_device
from nas.errors import ConfigError
from nas.estimators.base import Estimator
from nas.estimators.benchmarks import NB201ApiEstimator, NB301Estimator, TableEstimator
from nas.estimators.budgeted import BudgetedTrainingEstimator
from nas.estimators.zeroshot import ZeroShotEstimator, check_measures
from param_setting import add_budget_args, budget_from_args

KINDS = ("train", "table", "nb201api", "nb301")


def add_estimator_args(parser: argparse.ArgumentParser) -> None:
    """Flags of every estimator (training budget, data, benchmark files)."""
    g = parser.add_argument_group("estimator")
    g.add_argument("--estimator", default="auto",
                   help="auto (table/nb201api from --benchmark's suffix, else train), train, table, nb201api, "
                        "nb301, or zeroshot:<proxy>")
    g.add_argument("--benchmark", default=None, help="NAS-Bench-201 table (.csv) or API file (.pth)")
    g.add_argument("--metric", default=None,
                   help="table column to maximise (default cifar10_valid_acc) or API metric (valid-accuracy)")
    g.add_argument("--trust_benchmark_pickle", action="store_true",
                   help="allow fully unpickling a .pth benchmark: NAS-Bench-201's file holds Python objects, not "
                        "just tensors, so loading it can run code; only pass this for a file you trust")
    g.add_argument("--nb201_dataset", default="cifar10-valid", help="API dataset (cifar10-valid, cifar100, ...)")
    g.add_argument("--nb201_hp", default="12", choices=["12", "200"], help="API training epochs")
    g.add_argument("--nb301_model_dir", default=None, help="folder of the NAS-Bench-301 surrogate model files")
    add_budget_args(parser, default=None)
    add_data_args(parser)


def estimator_kind(args: argparse.Namespace) -> str:
    """Resolve ``--estimator auto`` from ``--benchmark``'s suffix."""
    kind = args.estimator
    if kind == "auto":
        if args.benchmark:
            kind = "nb201api" if str(args.benchmark).endswith((".pth", ".pt")) else "table"
        else:
            kind = "train"
    if kind not in KINDS and not kind.startswith("zeroshot:"):
        raise ConfigError(f"unknown --estimator {kind!r}; allowed: auto, {', '.join(KINDS)}, zeroshot:<proxy>")
    if kind.startswith("zeroshot:"):
        check_measures([kind.split(":", 1)[1]])
    return kind


def build_estimator(args: argparse.Namespace, *, space_kind: str, workdir: str | Path | None = None,
                    logger: Any = None) -> Estimator:
    """The estimator the command line asks for."""
    kind = estimator_kind(args)
    if kind in ("table", "nb201api") and space_kind != "nb201":
        raise ConfigError(f"--estimator {kind} scores NAS-Bench-201 cells; add --space nb201")
    if kind == "table":
        if not args.benchmark:
            raise ConfigError("--estimator table needs --benchmark FILE.csv")
        return TableEstimator(args.benchmark, args.metric or "cifar10_valid_acc")
    if kind == "nb201api":
        if not args.benchmark:
            raise ConfigError("--estimator nb201api needs --benchmark FILE.pth")
        return NB201ApiEstimator(args.benchmark, metric=args.metric or "valid-accuracy", dataset=args.nb201_dataset,
                                 hp=args.nb201_hp, trust_pickle=args.trust_benchmark_pickle)
    if kind == "nb301":
        if space_kind != "darts":
            raise ConfigError("NAS-Bench-301 scores DARTS cells; use --space darts")
        return NB301Estimator(args.nb301_model_dir)
    if kind.startswith("zeroshot:"):
        return ZeroShotEstimator(kind.split(":", 1)[1], space_kind, device=getattr(args, "device", "cpu"),
                                 seeds=[args.seed], dataset=args.dataset, data_path=args.data_path)
    if not getattr(args, "param", None):
        raise ConfigError("budgeted training needs --param (BPE1, BPE2, DARTS); or pass --benchmark")
    budget = budget_from_args(args)
    data = load_dataset(args.dataset, args.data_path, image_size=budget.image_size,
                        valid=args.train_portion if args.train_portion else "test",
                        limit_train=args.limit_train, limit_valid=args.limit_valid)
    return BudgetedTrainingEstimator(budget, data, resolve_device(args.device), args.seed, workdir,
                                     space_kind=space_kind, logger=logger)
