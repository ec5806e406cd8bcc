"""One-shot estimation: the accuracy of an architecture inside a trained weight-sharing supernet.

``OneShotEstimator`` reads a search.py (DARTS/blank mixture) run; ``SinglePathEstimator`` a train_oneshot.py
(single-path, aw_nas) run, evaluated as aw_nas' derive does; ``oneshot_for_run`` picks the right one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from nas.data import TensorLoader, load_dataset
from nas.errors import ConfigError
from nas.estimators.base import Score
from nas.estimators.scoretable import ScoreTable
from nas.nb201_iso import representative
from nas.spaces import get_space
from nas.supernet.search import build_search_model, load_search
from nas.supernet.singlepath import (
    build_singlepath_model,
    is_singlepath_run,
    load_singlepath,
    load_singlepath_data,
    path_of,
    subnet_weights,
)
from nas.train import evaluate

__all__ = ["OneShotEstimator", "SinglePathEstimator", "oneshot_for_run", "subnet_weights"]


class OneShotEstimator:
    """Validation accuracy of ``arch`` in a trained supernet (a search.py run), every other op masked.

    The chosen op of each edge gets weight 1 and the rest are not run (single-path, as a weight-sharing
    evaluation of one architecture in Ning et al. 2021); batch norm uses batch statistics by default
    (``batch_stats``), as DARTS-PT evaluates sub-networks, since the running statistics belong to the
    whole supernet. Use a search checkpoint before projection: projected edges keep their projected op.
    """

    def __init__(self, run_dir: str, data: Any, device: torch.device | str = "cpu", *, epoch: int | None = None,
                 batch_size: int = 256, limit_valid: int | None = None, batch_stats: bool = True,
                 name: str = "oneshot"):
        self.name = name
        self.device = torch.device(device)
        cfg, state = load_search(run_dir, epoch=epoch, device=self.device)
        self.model = build_search_model(cfg, data.n_classes, int(data.valid_x.shape[1]), self.device)
        self.model.load_state_dict(state["model"])
        vx, vy = data.valid_x, data.valid_y
        if limit_valid:
            vx, vy = vx[:limit_valid], vy[:limit_valid]
        self.loader = TensorLoader(vx, vy, batch_size=batch_size, shuffle=False, augment=False, mean=data.mean,
                                   std=data.std, device=self.device)
        self.batch_stats = batch_stats

    @torch.no_grad()
    def evaluate(self, arch: Any) -> dict[str, float]:
        """Loss and accuracy (%) of ``arch`` as a sub-network of the supernet."""
        w = {ct: t.to(self.device) for ct, t in subnet_weights(self.model, arch).items()}
        masks = {ct: (t > 0).cpu() for ct, t in w.items()}
        # running statistics stay as they are: every sub-network sees the same supernet
        return evaluate(self.model, self.loader, forward=lambda x: self.model(x, masks, w),
                        batch_stats=self.batch_stats, update_running=False)

    def score(self, arch: Any) -> Score:
        """One-shot validation accuracy (%) of ``arch``."""
        t0 = time.perf_counter()
        r = self.evaluate(arch)
        return Score(value=r["acc"], cost_seconds=time.perf_counter() - t0, extras={"loss": r["loss"], "n": r["n"]})


class SinglePathEstimator:
    """One-shot accuracy of an architecture in a single-path supernet, as aw_nas' derive computes it.

    aw_nas ``MepaEvaluator.evaluate_rollouts`` (mepa.py 657-702, /work/notes/pertnas_awnas_original.md B.3):
    the held-out part of the training split (``[train_portion, 1)``) with the test transform, batch 512, no
    shuffle, so every architecture sees the same batches in the same order; BatchNorm in train mode (each
    batch's own statistics, no recalibration; the running statistics are left alone here, aw_nas moves them
    but never reads them), dropout in eval mode, no gradients; the reward is the unweighted mean of the
    per-batch accuracies (objective/base.py 43-44). In NB201 with ``deiso`` every isomorphism class is
    evaluated once, through its representative (the member the training sampled), and its isomorphs share
    the score. Each evaluated class's loss and per-batch accuracies go to ``classes_csv`` (a ScoreTable:
    a killed scoring resumes without evaluating a class twice).
    """

    # higher is better in every estimate column: the loss enters negated, as aw_nas ranks by -loss (cal_loss)
    columns = ("oneshot", "oneshot_neg_loss", "oneshot_batch_std")

    def __init__(self, run_dir: str | Path, classes_csv: str | Path, device: torch.device | str = "cpu", *,
                 epoch: int | None = None, data: Any = None, data_path: str | None = None,
                 limit_valid: int | None = None, batch_size: int = 512, deiso: bool = True,
                 overwrite: bool = False, name: str = "oneshot"):
        self.name = name
        self.device = torch.device(device)
        cfg, state = load_singlepath(run_dir, epoch=epoch, device=self.device)
        self.space = get_space(cfg.space)
        data = data if data is not None else load_singlepath_data(cfg, data_path=data_path, limit_valid=limit_valid)
        self.model = build_singlepath_model(cfg, data.n_classes, data.in_channels, self.device)
        self.model.load_state_dict(state["model"])
        self.dropouts = [m for m in self.model.modules() if isinstance(m, nn.Dropout)]
        self.loader = TensorLoader(data.valid_x, data.valid_y, batch_size=batch_size, shuffle=False, augment=False,
                                   mean=data.mean, std=data.std, device=self.device)
        self.deiso = deiso and self.space.kind == "nb201"
        settings = {"run": str(Path(run_dir).resolve()), "epoch": int(state["epoch"]), "batch_size": batch_size,
                    "n_valid": len(data.valid_y), "deiso": self.deiso}
        self.table = ScoreTable(classes_csv, arch_column="arch_str" if self.space.kind == "nb201" else "genotype",
                                columns=["loss", *[f"b{i:03d}" for i in range(len(self.loader))]],
                                settings=settings, overwrite=overwrite)

    def _forward(self, w: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]):
        def fwd(x: torch.Tensor) -> torch.Tensor:
            for m in self.dropouts:  # aw_nas _patch_dropout_forward: dropout off, BN on batch statistics
                m.eval()
            return self.model(x, masks, w)
        return fwd

    def class_of(self, arch: Any) -> str:
        """The key of the computation evaluated for ``arch`` (its class representative under deiso)."""
        return representative(self.space.key(arch)) if self.deiso else self.space.key(arch)

    def evaluate(self, arch: Any) -> tuple[float, list[float]]:
        """(loss, per-batch accuracies in %) of ``arch``'s class, evaluated now or read from the table."""
        key = self.class_of(arch)
        row = self.table.done.get(key)
        if row is None:
            t0 = time.perf_counter()
            w, masks = path_of(self.model, self.space.parse(key), self.device)
            per_batch: list[float] = []
            r = evaluate(self.model, self.loader, forward=self._forward(w, masks), batch_stats=True,
                         update_running=False, per_batch=per_batch)
            row = {"loss": r["loss"], **{f"b{i:03d}": v for i, v in enumerate(per_batch)}}
            self.table.append(key, row, time.perf_counter() - t0)
        accs = [row[f"b{i:03d}"] for i in range(len(self.loader))]
        return row["loss"], accs

    def score(self, arch: Any) -> Score:
        """Unweighted mean of the per-batch accuracies (%), with the loss and the std over batches."""
        t0 = time.perf_counter()
        loss, accs = self.evaluate(arch)
        return Score(value=float(np.mean(accs)), cost_seconds=time.perf_counter() - t0,
                     extras={"oneshot_neg_loss": -loss, "oneshot_batch_std": float(np.std(accs))})

    def close(self) -> None:
        self.table.close()

    def __enter__(self) -> SinglePathEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def oneshot_for_run(run_dir: str, *, space: Any, dataset: str, data_path: str, device: torch.device,
                    epoch: int | None, limit_valid: int | None, out: str | Path, overwrite: bool = False) -> Any:
    """The one-shot estimator of a run folder (single-path or search.py); its columns: scoring.oneshot_columns."""
    if is_singlepath_run(run_dir):
        cfg, _ = load_singlepath(run_dir, epoch=epoch)
        if get_space(cfg.space).kind != space.kind:
            raise ConfigError(f"--oneshot {run_dir} trained space {cfg.space!r}, not {space.name!r}")
        return SinglePathEstimator(run_dir, f"{out}.oneshot_classes.csv", device, epoch=epoch, data_path=data_path,
                                   limit_valid=limit_valid, overwrite=overwrite)
    scfg, _ = load_search(run_dir, epoch=epoch, device=device)
    if (scfg.space == "nb201") != (space.kind == "nb201"):
        raise ConfigError(f"--oneshot {run_dir} searched space {scfg.space!r}, not {space.name!r}")
    vdata = load_dataset(dataset, data_path, valid=scfg.train_portion, limit_valid=limit_valid or 1024)
    return OneShotEstimator(run_dir, vdata, device, epoch=epoch)
