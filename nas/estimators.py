"""Performance estimators behind one interface: ``score(arch) -> Score(value, cost_seconds, extras)``.

BPE (Zheng et al., CVPR 2020) is a choice of estimator, not a search algorithm: every strategy in
``nas.strategies`` calls an estimator and never knows which one. Here:

- ``BudgetedTrainingEstimator``: train from scratch under a ``Budget`` (BPE1, BPE2, ...) through
  ``nas.train.train_architecture``; value = final validation accuracy (percent).
- ``TableEstimator``: a NAS-Bench-201 CSV (``--benchmark FILE.csv --metric COLUMN``).
- ``NB201ApiEstimator``: the ``nas_201_api`` ``.pth`` file (needs ``--trust_benchmark_pickle``).
- ``NB301Estimator``: the NAS-Bench-301 surrogate ensemble (optional extra ``nasbench301``).
- ``zeroshot:<proxy>``: lazily ``nas.zeroshot.ZeroShotEstimator`` when that module exists.
"""

from __future__ import annotations

import argparse
import collections
import inspect
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from nas.cli import NASError, UsageError


@dataclass
class Score:
    """What an estimator says about one architecture: higher ``value`` is better."""

    value: float
    cost_seconds: float
    extras: dict = field(default_factory=dict)


@runtime_checkable
class Estimator(Protocol):
    """Anything with a ``name`` and ``score(arch) -> Score``."""

    name: str

    def score(self, arch: Any) -> Score: ...


def call_score(estimator: Estimator, arch: Any, *, tag: str | None = None) -> Score:
    """``estimator.score(arch)``, passing ``tag`` (a per-evaluation work-folder name) when it accepts one."""
    try:
        accepts_tag = "tag" in inspect.signature(estimator.score).parameters
    except (TypeError, ValueError):
        accepts_tag = False
    s = estimator.score(arch, tag=tag) if accepts_tag else estimator.score(arch)
    if not isinstance(s, Score):  # a bare number is accepted from third-party estimators
        s = Score(float(s), 0.0)
    return s


def arch_text(arch: Any) -> str:
    """Text of an architecture: NB201 strings as they are, Genotypes via their printer."""
    return arch if isinstance(arch, str) else str(arch)


# ----------------------------------------------------------------------------- table lookup


class TableEstimator:
    """NAS-Bench-201 CSV lookup; cost is the table's training time when it has one, else 1 query."""

    def __init__(self, path: str | Path, metric: str):
        from nas.benchmarks import NB201Table

        self.table = NB201Table(path)
        self.table.check_column(metric)
        self.metric = metric
        self.time_column = self.table.time_column(metric)
        self.name = f"table:{Path(path).name}:{metric}"
        self.space_kind = "nb201"

    def score(self, arch: str) -> Score:
        if not isinstance(arch, str):
            raise UsageError("the NB201 table scores NAS-Bench-201 arch strings; use --space nb201")
        value = self.table.query(arch, self.metric)
        if self.time_column is not None:
            return Score(value, float(self.table.query(arch, self.time_column)), {"cost_unit": "seconds"})
        return Score(value, 1.0, {"cost_unit": "query"})


# ----------------------------------------------------------------------------- NB201 .pth API


class NB201ApiEstimator:
    """The official ``nas_201_api`` over a ``NAS-Bench-201-v1_*.pth`` file the user owns.

    The file is a pickle of Python objects, so ``torch.load(weights_only=True)`` refuses it; it is
    loaded fully only when the caller passes ``trust_pickle=True`` (``--trust_benchmark_pickle``).
    """

    def __init__(self, path: str | Path, *, metric: str = "valid-accuracy", dataset: str = "cifar10-valid",
                 hp: str = "12", trust_pickle: bool = False):
        path = Path(path)
        if not trust_pickle:
            raise UsageError(f"{path} is a full pickle (code can run while loading it); pass "
                             "--trust_benchmark_pickle if you trust this file, or use the CSV table")
        try:
            from nas_201_api import NASBench201API
        except ImportError:
            raise NASError("the .pth benchmark needs the nas_201_api package: pip install nas-bench-201") from None
        if not path.is_file():
            raise NASError(f"{path}: no such benchmark file")
        import torch

        try:
            # Unpickle here (the user opted in) and hand the dict to the API, which would otherwise call
            # torch.load with the torch>=2.6 default weights_only=True and fail.
            data = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001
            raise NASError(f"{path}: cannot load the NAS-Bench-201 file ({type(exc).__name__})") from None
        self.api = NASBench201API(data, verbose=False)
        self.metric, self.dataset, self.hp = metric, dataset, str(hp)
        self.name = f"nb201api:{dataset}:{metric}:{hp}"
        self.space_kind = "nb201"

    def score(self, arch: str) -> Score:
        idx = self.api.query_index_by_arch(arch)
        if idx < 0:
            raise NASError(f"arch {arch!r} is not in the NAS-Bench-201 API file")
        info = self.api.get_more_info(idx, self.dataset, iepoch=None, hp=self.hp, is_random=False)
        if self.metric not in info:
            raise UsageError(f"metric {self.metric!r} not offered for {self.dataset}; offered: {', '.join(info)}")
        cost = float(info.get("train-all-time", 1.0))
        return Score(float(info[self.metric]), cost, {"index": int(idx)})


# ----------------------------------------------------------------------------- NAS-Bench-301


NB301_OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
             "dil_conv_3x3", "dil_conv_5x5")
NB301Genotype = collections.namedtuple("NB301Genotype", "normal normal_concat reduce reduce_concat")


def to_nb301_genotype(g: Any, genotype_cls: Any = NB301Genotype) -> Any:
    """Our nested Genotype -> NAS-Bench-301's flat genotype (two (op, input) pairs per node, concat 2..5)."""
    cells = {}
    for name, nodes in (("normal", g.normal), ("reduce", g.reduce)):
        if len(nodes) != 4:
            raise ValueError(f"NAS-Bench-301 needs 4 nodes per cell; {name} has {len(nodes)}")
        flat = []
        for k, node in enumerate(nodes):
            if len(node) != 2:
                raise ValueError(f"NAS-Bench-301 needs 2 inputs per node; {name} node {k} has {len(node)}")
            for op, src in node:
                if op not in NB301_OPS:
                    raise ValueError(f"op {op!r} is not in NAS-Bench-301; allowed: {', '.join(NB301_OPS)}")
                flat.append((op, int(src)))
        cells[name] = flat
    return genotype_cls(normal=cells["normal"], normal_concat=[2, 3, 4, 5],
                        reduce=cells["reduce"], reduce_concat=[2, 3, 4, 5])


class NB301Estimator:
    """NAS-Bench-301 surrogate (Siems et al. 2020): predicted CIFAR-10 validation accuracy."""

    def __init__(self, model_dir: str | Path | None, *, with_noise: bool = False):
        try:
            import nasbench301 as nb
        except ImportError:
            raise NASError("NAS-Bench-301 needs the optional package: pip install nasbench301 (plus ConfigSpace, "
                           "torch_geometric, lightgbm, xgboost); download nb_models_0.9/xgb_v0.9 from the "
                           "NAS-Bench-301 release and pass --nb301_model_dir DIR") from None
        if model_dir is None or not Path(model_dir).is_dir():
            raise NASError(f"--nb301_model_dir {model_dir}: not a folder; it must hold the surrogate model files "
                           "(e.g. nb_models_0.9/xgb_v0.9 from the NAS-Bench-301 release)")
        self.model = nb.load_ensemble(str(model_dir))
        self.with_noise = with_noise
        self.name = f"nb301:{Path(model_dir).name}"
        self.space_kind = "darts"

    def score(self, arch: Any) -> Score:
        t0 = time.time()
        geno = to_nb301_genotype(arch)
        value = float(self.model.predict(config=geno, representation="genotype", with_noise=self.with_noise))
        return Score(value, time.time() - t0, {})


# ----------------------------------------------------------------------------- budgeted training


class BudgetedTrainingEstimator:
    """Train from scratch under ``budget`` (BPE1/BPE2/...) and return the final validation accuracy."""

    def __init__(self, budget: Any, data: Any, device: Any, seed: int, workdir: str | Path | None = None,
                 *, space_kind: str = "darts", logger: Any = None, writer: Any = None):
        self.budget, self.data, self.device, self.seed = budget, data, device, int(seed)
        self.workdir = Path(workdir) if workdir is not None else None
        self.space_kind = space_kind
        self.logger, self.writer = logger, writer
        self.name = "train"
        self.n_calls = 0

    def score(self, arch: Any, *, tag: str | None = None) -> Score:
        from nas.train import train_architecture

        self.n_calls += 1
        wd = None
        if self.workdir is not None:
            # One folder per evaluation: train_architecture resumes an interrupted training from it.
            wd = self.workdir / (tag or f"eval_{self.n_calls:04d}")
            wd.mkdir(parents=True, exist_ok=True)
        # Each evaluation gets its own seed so that a resumed search trains it exactly as before.
        seed = self.seed + (int(tag.split("_")[-1]) if tag and tag.split("_")[-1].isdigit() else self.n_calls)
        t0 = time.time()
        rec = train_architecture(arch, space_kind=self.space_kind, budget=self.budget, data=self.data,
                                 device=self.device, seed=seed, workdir=wd, logger=self.logger, writer=None)
        extras = {k: rec[k] for k in ("best_valid_acc", "params", "flops") if k in rec}
        return Score(float(rec["valid_acc"]), float(rec.get("seconds", time.time() - t0)), extras)


# ----------------------------------------------------------------------------- CLI factory


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
    try:
        from param_setting import add_budget_args

        add_budget_args(parser, default=None)
    except ImportError:  # pragma: no cover - param_setting is part of the repo
        pass
    try:
        from nas.data import add_data_args

        add_data_args(parser)
    except ImportError:
        d = parser.add_argument_group("data")
        d.add_argument("--dataset", default="cifar10")
        d.add_argument("--data_path", default="data/")
        d.add_argument("--train_portion", type=float, default=None)
        d.add_argument("--limit_train", type=int, default=None)
        d.add_argument("--limit_valid", type=int, default=None)
        d.add_argument("--workers", type=int, default=0)
        d.add_argument("--device", default="auto")


def estimator_kind(args: argparse.Namespace) -> str:
    """Resolve ``--estimator auto`` from ``--benchmark``'s suffix."""
    kind = args.estimator
    if kind == "auto":
        if args.benchmark:
            kind = "nb201api" if str(args.benchmark).endswith((".pth", ".pt")) else "table"
        else:
            kind = "train"
    allowed = ("train", "table", "nb201api", "nb301")
    if kind not in allowed and not kind.startswith("zeroshot:"):
        raise UsageError(f"unknown --estimator {kind!r}; allowed: auto, {', '.join(allowed)}, zeroshot:<proxy>")
    return kind


def build_estimator(args: argparse.Namespace, *, space_kind: str, workdir: str | Path | None = None,
                    logger: Any = None) -> Estimator:
    """The estimator the command line asks for (shared by run_rl.py, run_evolution.py, run_random.py)."""
    kind = estimator_kind(args)
    if kind in ("table", "nb201api") and space_kind != "nb201":
        raise UsageError(f"--estimator {kind} scores NAS-Bench-201 cells; add --space nb201")
    if kind == "table":
        if not args.benchmark:
            raise UsageError("--estimator table needs --benchmark FILE.csv")
        return TableEstimator(args.benchmark, args.metric or "cifar10_valid_acc")
    if kind == "nb201api":
        if not args.benchmark:
            raise UsageError("--estimator nb201api needs --benchmark FILE.pth")
        return NB201ApiEstimator(args.benchmark, metric=args.metric or "valid-accuracy", dataset=args.nb201_dataset,
                                 hp=args.nb201_hp, trust_pickle=args.trust_benchmark_pickle)
    if kind == "nb301":
        if space_kind != "darts":
            raise UsageError("NAS-Bench-301 scores DARTS cells; use --space darts")
        return NB301Estimator(args.nb301_model_dir)
    if kind.startswith("zeroshot:"):
        try:
            from nas.zeroshot import ZeroShotEstimator
        except ImportError:
            raise NASError("zero-shot estimators need nas/zeroshot.py, which this checkout lacks") from None
        return _build_zeroshot(ZeroShotEstimator, kind.split(":", 1)[1], args, space_kind)
    # budgeted training
    from param_setting import budget_from_args

    if not getattr(args, "param", None):
        raise UsageError("budgeted training needs --param (BPE1, BPE2, DARTS); or pass --benchmark")
    budget = budget_from_args(args)
    from nas.data import load_dataset
    from nas.train import resolve_device

    data = load_dataset(args.dataset, args.data_path, image_size=budget.image_size,
                        valid=args.train_portion if args.train_portion else "test",
                        limit_train=args.limit_train, limit_valid=args.limit_valid)
    return BudgetedTrainingEstimator(budget, data, resolve_device(args.device), args.seed, workdir,
                                     space_kind=space_kind, logger=logger)


def _build_zeroshot(cls: Any, proxy: str, args: argparse.Namespace, space_kind: str) -> Estimator:
    """Call ``ZeroShotEstimator`` with the keyword arguments its signature names."""
    wanted = inspect.signature(cls).parameters
    offer = {"name": proxy, "proxy": proxy, "space_kind": space_kind, "seed": args.seed,
             "device": getattr(args, "device", "cpu"), "data_path": getattr(args, "data_path", None),
             "dataset": getattr(args, "dataset", None)}
    kwargs = {k: v for k, v in offer.items() if k in wanted}
    if "name" in kwargs and "proxy" in kwargs:
        kwargs.pop("name")
    return cls(**kwargs)
