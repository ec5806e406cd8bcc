"""Benchmarks users own, read plainly: the NAS-Bench-201 table (CSV) and the NAS-Bench-301 genotype form.

The CSV needs an ``arch_str`` column (NAS-Bench-201 strings such as
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|...|``) and any number of numeric metric
columns (``cifar10_valid_acc``, ``cifar10_test_acc``, ...). Arch strings are canonicalised through
``nas.spaces.NB201Space.key`` so that a query never misses on spelling.
"""

from __future__ import annotations

import collections
import math
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from nas.errors import ConfigError, NASError
from nas.spaces import NB201Space

ARCH_COLUMN = "arch_str"


class NB201Table:
    """An in-memory NAS-Bench-201 table: ``query(arch, column) -> float``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise NASError(f"{self.path}: no such benchmark table")
        try:
            df = pd.read_csv(self.path)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the same user problem
            raise NASError(f"{self.path}: not a readable CSV ({type(exc).__name__}: {exc})") from None
        if ARCH_COLUMN not in df.columns:
            raise NASError(f"{self.path}: no {ARCH_COLUMN!r} column; columns: {', '.join(map(str, df.columns))}")
        self.space = NB201Space()
        keys = []
        for i, a in enumerate(df[ARCH_COLUMN]):
            try:
                keys.append(self.space.key(str(a)))
            except ValueError as exc:
                raise NASError(f"{self.path}: row {i + 2}: bad arch string {a!r} ({exc})") from None
        df.index = keys
        if df.index.has_duplicates:
            dup = df.index[df.index.duplicated()][0]
            raise NASError(f"{self.path}: arch {dup!r} appears more than once")
        self.df = df
        self._checked: set[str] = set()
        # Rows keep file order; only numeric columns are metrics.
        self.columns = [c for c in df.columns if c != ARCH_COLUMN]

    def __len__(self) -> int:
        return len(self.df)

    def check_column(self, column: str) -> None:
        """Raise a ConfigError listing the numeric columns if ``column`` is not one of them (NASError on NaNs)."""
        if column in self._checked:
            return
        numeric = [c for c in self.columns if self.df[c].dtype.kind in "fiu"]
        if column not in numeric:
            raise ConfigError(f"metric column {column!r} not in {self.path.name}; columns: {', '.join(numeric)}")
        bad = self.df[column].isna() | ~self.df[column].astype(float).map(math.isfinite)
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise NASError(f"{self.path}: column {column!r} has {int(bad.sum())} missing or non-finite values "
                           f"(first at row {row + 2}: {self.df.index[row]})")
        self._checked.add(column)

    def canonical(self, arch: str) -> str:
        """Canonical arch string (ValueError on a malformed one)."""
        return self.space.key(arch)

    def query(self, arch: str, column: str) -> float:
        """The value of ``column`` for ``arch``; a clear NASError if the table lacks the arch."""
        self.check_column(column)
        key = self.canonical(arch)
        if key not in self.df.index:
            raise NASError(f"arch {key!r} is not in {self.path.name} ({len(self)} rows)")
        return float(self.df.at[key, column])

    def time_column(self, metric: str) -> str | None:
        """A training-time column matching ``metric``'s dataset (e.g. ``cifar10_train_time``), if any."""
        prefix = metric.split("_")[0]
        times = [c for c in self.columns if "time" in c.lower()]
        for c in times:
            if c.startswith(prefix):
                return c
        return times[0] if times else None

    def rank(self, arch: str, column: str) -> int:
        """1-based rank of ``arch`` by ``column`` (1 = best, ties share the best rank)."""
        v = self.query(arch, column)
        return int((self.df[column] > v).sum()) + 1

    def best(self, column: str) -> tuple[str, float]:
        """The arch with the highest ``column`` and that value."""
        self.check_column(column)
        key = self.df[column].idxmax()
        return str(key), float(self.df.at[key, column])


class NB201Api:
    """The official ``nas_201_api`` over a ``NAS-Bench-201-v1_*.pth`` file (a full pickle: opt in to load it)."""

    # table columns (``<dataset>_<split>_acc``) -> (API dataset, API metric)
    COLUMNS = {("cifar10", "valid"): ("cifar10-valid", "valid-accuracy"),
               ("cifar10", "test"): ("cifar10", "test-accuracy"),
               ("cifar100", "valid"): ("cifar100", "valid-accuracy"),
               ("cifar100", "test"): ("cifar100", "test-accuracy"),
               ("imagenet16", "valid"): ("ImageNet16-120", "valid-accuracy"),
               ("imagenet16", "test"): ("ImageNet16-120", "test-accuracy")}

    def __init__(self, path: str | Path, *, trust_pickle: bool = False, hp: str = "12"):
        path = Path(path)
        self.hp = str(hp)
        if not trust_pickle:
            raise ConfigError(f"{path} is a full pickle (code can run while loading it); pass "
                              "--trust_benchmark_pickle if you trust this file, or use the CSV table")
        try:
            from nas_201_api import NASBench201API
        except ImportError:
            raise NASError("the .pth benchmark needs the nas_201_api package: pip install nas-bench-201") from None
        if not path.is_file():
            raise NASError(f"{path}: no such benchmark file")
        try:
            # Unpickle here (the user opted in) and hand the dict to the API, which would otherwise call
            # torch.load with the torch>=2.6 default weights_only=True and fail.
            data = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001
            raise NASError(f"{path}: cannot load the NAS-Bench-201 file ({type(exc).__name__})") from None
        self.path = path
        self.api = NASBench201API(data, verbose=False)

    def index(self, arch: str) -> int:
        """The benchmark's index of ``arch``; NASError when the file lacks it."""
        idx = self.api.query_index_by_arch(NB201Space().key(arch))
        if idx < 0:
            raise NASError(f"arch {arch!r} is not in the NAS-Bench-201 API file {self.path.name}")
        return int(idx)

    def info(self, arch: str, dataset: str, *, hp: str | None = None) -> dict[str, float]:
        """``get_more_info`` of ``arch`` on ``dataset`` (mean over the benchmark's seeds)."""
        hp = str(hp or self.hp)
        index = self.index(arch)
        try:
            return self.api.get_more_info(index, dataset, iepoch=None, hp=hp, is_random=False)
        except (KeyError, ValueError, AssertionError) as exc:  # the API's ways of saying "no such result"
            raise NASError(f"{self.path.name} has no {dataset} result at {hp} epochs for arch {arch!r} "
                           f"({type(exc).__name__}: {exc})") from None

    def check_column(self, column: str) -> None:
        """ConfigError unless ``column`` names a table column the API answers (``cifar10_test_acc``, ...)."""
        self._api_metric(column)

    @classmethod
    def api_metric(cls, column: str) -> tuple[str, str] | None:
        """(API dataset, API metric) of a table column such as ``cifar10_valid_acc``; None for other names."""
        parts = column.rsplit("_", 2)
        key = (parts[0], parts[1]) if len(parts) == 3 and parts[2] == "acc" else None
        return cls.COLUMNS.get(key) if key else None

    def _api_metric(self, column: str) -> tuple[str, str]:
        found = self.api_metric(column)
        if found is None:
            allowed = ", ".join(f"{d}_{s}_acc" for d, s in self.COLUMNS)
            raise ConfigError(f"metric {column!r} is not one the NAS-Bench-201 API answers; allowed: {allowed}")
        return found

    def query(self, arch: str, column: str) -> float:
        """The table column's value from the API (at this file's ``hp`` epochs), as NB201Table.query."""
        dataset, metric = self._api_metric(column)
        return float(self.info(arch, dataset)[metric])


def open_nb201(path: str | Path, *, trust_pickle: bool = False, hp: str = "12") -> NB201Table | NB201Api:
    """A NAS-Bench-201 CSV table or, for ``.pth``, the official API over the file (``trust_pickle`` needed)."""
    if str(path).endswith((".pth", ".pt")):
        return NB201Api(path, trust_pickle=trust_pickle, hp=hp)
    return NB201Table(path)


class BenchmarkReport:
    """NAS-Bench-201 accuracies of a cell for logs and records: the cheap search signal and the truth.

    ``signal`` is the 12-epoch table a search may look at (``--benchmark``); ``truth`` the 200-epoch one
    that papers report (``--truth``). ``fields(arch)`` gives ``bench_signal`` / ``bench_truth`` (None when
    no table was given) and ``describe()`` what each is.
    """

    def __init__(self, *, signal: str | Path | None = None, signal_metric: str = "cifar10_test_acc",
                 truth: str | Path | None = None, truth_metric: str = "cifar10_test_acc", space: str = "nb201",
                 trust_pickle: bool = False):
        self.sources: dict[str, tuple[Any, str, str]] = {}
        for role, path, metric, hp in (("signal", signal, signal_metric, "12"), ("truth", truth, truth_metric, "200")):
            if path:
                if space != "nb201":
                    raise ConfigError(f"{path} is a NAS-Bench-201 benchmark: use it with --space nb201")
                table = open_nb201(path, trust_pickle=trust_pickle, hp=hp)
                table.check_column(metric)
                self.sources[role] = (table, metric, f"{Path(path).name}:{metric}")

    def __bool__(self) -> bool:
        return bool(self.sources)

    def fields(self, arch: str) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for role in ("signal", "truth"):
            src = self.sources.get(role)
            out[f"bench_{role}"] = src[0].query(arch, src[1]) if src else None
        return out

    def describe(self) -> dict[str, str | None]:
        return {f"bench_{role}": (self.sources[role][2] if role in self.sources else None)
                for role in ("signal", "truth")}

    def text(self, arch: str) -> str:
        """`` | signal 88.36 | truth 93.1`` for a log line ('' without tables)."""
        vals = self.fields(arch)
        return "".join(f" | {role} {vals['bench_' + role]:.2f}" for role in ("signal", "truth")
                       if role in self.sources)


# ----------------------------------------------------------------------------- NAS-Bench-301

NB301_OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
             "dil_conv_3x3", "dil_conv_5x5")
NB301Genotype = collections.namedtuple("NB301Genotype", "normal normal_concat reduce reduce_concat")
# What `import nasbench301; nasbench301.load_ensemble(...)` imports (automl/nasbench301 HEAD 61c670e: api.py ->
# surrogate_models/utils.py imports every surrogate: gnn (torch_geometric, torch_scatter, torch_cluster via gcn_lib,
# h5py via gcn_utils/data_util, networkx), lgb, xgb, sklearn forests and SVRs, seaborn; surrogate_model.py imports
# IPython and pathvalidate; model_downloader.py imports requests). Its setup.py leaves install_requires commented out,
# so `pip install nasbench301` installs none of them. pip names; torch-sparse is needed by torch-geometric < 2.3.
NB301_PACKAGES = ("nasbench301", "ConfigSpace==0.4.12", "torch-geometric", "torch-scatter", "torch-sparse",
                  "torch-cluster", "networkx", "h5py", "lightgbm", "xgboost", "scikit-learn", "scipy", "matplotlib",
                  "seaborn", "pathvalidate", "ipython", "tqdm", "requests")
NB301_INSTALL = (
    f"NAS-Bench-301 is optional and needs: pip install {' '.join(NB301_PACKAGES)} (pip install nasbench301 "
    "alone installs none of its dependencies; its requirements.txt pins ConfigSpace 0.4.12, scikit-learn 0.23.0 "
    "and torch 1.5, and the surrogate files are pickles of that era), plus the surrogate models: download "
    "nasbench301_models_v1_0.zip (figshare, linked from the NAS-Bench-301 README) or run python -c \"import "
    "nasbench301; nasbench301.download_models(version='1.0', download_dir='DIR')\", then pass --nb301_model_dir "
    "DIR/nb_models_1.0 (the folder holding xgb_v1.0/)")


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


def nb301_model_folder(models_dir: str | Path | None) -> Path:
    """The surrogate ensemble folder under ``models_dir`` (``xgb_v1.0``, ``xgb_v0.9`` or the folder itself)."""
    if models_dir is None:
        raise NASError(f"no NAS-Bench-301 model folder given. {NB301_INSTALL}")
    path = Path(models_dir).expanduser()
    cand = [path / "xgb_v1.0", path / "xgb_v0.9", path]
    # load_ensemble reads every *surrogate_model.model below the folder it is given: give it one model's ensemble
    # (xgb_v1.0/<member>/surrogate_model.model), never the parent of several models
    found = next((p for p in cand if p.is_dir() and any(p.glob("*/surrogate_model.model"))), None)
    if found is None:
        raise NASError(f"{path}: no NAS-Bench-301 surrogate folder (xgb_v1.0) there. {NB301_INSTALL}")
    return found


def load_nb301(models_dir: str | Path | None) -> Any:
    """The NAS-Bench-301 surrogate ensemble (``nasbench301.load_ensemble``); NASError saying what is missing."""
    try:
        import nasbench301 as nb  # optional: its import needs the packages of NB301_PACKAGES
    except ImportError as exc:
        raise NASError(f"cannot import nasbench301 ({exc}). {NB301_INSTALL}") from None
    return nb.load_ensemble(str(nb301_model_folder(models_dir)))


def nb301_predict(model: Any, genotype: Any, *, with_noise: bool = False) -> float:
    """Predicted CIFAR-10 validation accuracy (%) of a DARTS genotype."""
    return float(model.predict(config=to_nb301_genotype(genotype), representation="genotype",
                               with_noise=with_noise))
