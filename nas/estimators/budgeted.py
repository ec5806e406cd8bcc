"""Budgeted training (BPE's estimator): train the architecture from scratch under a ``Budget``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from nas.estimators.base import Score
from nas.seeds import child_seed
from nas.train import train_architecture


class BudgetedTrainingEstimator:
    """Train from scratch under ``budget`` (BPE1/BPE2/...); the value is the budget's reward (percent).

    BPE scores a cell by the best validation accuracy over its epochs (its run_rl.py 298-307); the
    budget's ``reward`` field says which ("best" or "last") and the record keeps both.
    """

    def __init__(self, budget: Any, data: Any, device: Any, seed: int, workdir: str | Path | None = None,
                 *, space_kind: str = "darts", logger: Any = None):
        self.budget, self.data, self.device, self.seed = budget, data, device, int(seed)
        self.workdir = Path(workdir) if workdir is not None else None
        self.space_kind = space_kind
        self.logger = logger
        self.name = "train"
        self.n_calls = 0

    def score(self, arch: Any, *, tag: str | None = None) -> Score:
        self.n_calls += 1
        wd = None
        if self.workdir is not None:
            # One folder per evaluation: train_architecture resumes an interrupted training from it.
            wd = self.workdir / (tag or f"eval_{self.n_calls:04d}")
            wd.mkdir(parents=True, exist_ok=True)
        # Each evaluation gets its own seed so that a resumed search trains it exactly as before.
        index = int(tag.split("_")[-1]) if tag and tag.split("_")[-1].isdigit() else self.n_calls
        t0 = time.time()
        rec = train_architecture(arch, space_kind=self.space_kind, budget=self.budget, data=self.data,
                                 device=self.device, seed=child_seed(self.seed, "eval", index), workdir=wd,
                                 logger=self.logger, writer=None)
        extras = {k: rec[k] for k in ("valid_acc", "best_valid_acc", "reward", "params", "flops") if k in rec}
        return Score(float(rec["reward_value"]), float(rec.get("seconds", time.time() - t0)), extras)
