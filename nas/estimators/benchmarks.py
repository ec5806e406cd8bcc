"""Estimators that look scores up: the NAS-Bench-201 table (CSV) or API file (.pth), NAS-Bench-301's surrogate."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from nas.benchmarks import NB201Api, NB201Table, load_nb301, nb301_predict
from nas.errors import ConfigError
from nas.estimators.base import Score


class TableEstimator:
    """NAS-Bench-201 CSV lookup; cost is the table's training time when it has one, else 1 query."""

    def __init__(self, path: str | Path, metric: str):
        self.table = NB201Table(path)
        self.table.check_column(metric)
        self.metric = metric
        self.time_column = self.table.time_column(metric)
        self.name = f"table:{Path(path).name}:{metric}"
        self.space_kind = "nb201"

    def score(self, arch: str) -> Score:
        if not isinstance(arch, str):
            raise ConfigError("the NB201 table scores NAS-Bench-201 arch strings; use --space nb201")
        value = self.table.query(arch, self.metric)
        if self.time_column is not None:
            return Score(value, float(self.table.query(arch, self.time_column)), {"cost_unit": "seconds"})
        return Score(value, 1.0, {"cost_unit": "query"})


class NB201ApiEstimator:
    """The official ``nas_201_api`` over a ``NAS-Bench-201-v1_*.pth`` file the user owns.

    The file is a pickle of Python objects, so ``torch.load(weights_only=True)`` refuses it; it is
    loaded fully only when the caller passes ``trust_pickle=True`` (``--trust_benchmark_pickle``).
    ``metric`` is an API metric (``valid-accuracy``, with ``dataset``) or a table column such as
    ``cifar10_valid_acc``, which names both, so one ``--metric`` serves the CSV table and the API file.
    """

    def __init__(self, path: str | Path, *, metric: str = "valid-accuracy", dataset: str = "cifar10-valid",
                 hp: str = "12", trust_pickle: bool = False):
        dataset, metric = NB201Api.api_metric(metric) or (dataset, metric)
        self.api = NB201Api(path, trust_pickle=trust_pickle)
        self.metric, self.dataset, self.hp = metric, dataset, str(hp)
        self.name = f"nb201api:{dataset}:{metric}:{hp}"
        self.space_kind = "nb201"

    def score(self, arch: str) -> Score:
        info = self.api.info(arch, self.dataset, hp=self.hp)
        if self.metric not in info:
            raise ConfigError(f"metric {self.metric!r} not offered for {self.dataset}; offered: {', '.join(info)}")
        cost = float(info.get("train-all-time") or 1.0)  # None when the file has no training times
        return Score(float(info[self.metric]), cost, {"index": self.api.index(arch)})


class NB301Estimator:
    """NAS-Bench-301 surrogate (Siems et al. 2020): predicted CIFAR-10 validation accuracy."""

    def __init__(self, model_dir: str | Path | None, *, with_noise: bool = False):
        self.model = load_nb301(model_dir)
        self.with_noise = with_noise
        self.name = f"nb301:{Path(str(model_dir)).name}"
        self.space_kind = "darts"

    def score(self, arch: Any) -> Score:
        t0 = time.time()
        value = nb301_predict(self.model, arch, with_noise=self.with_noise)
        return Score(value, time.time() - t0, {})
