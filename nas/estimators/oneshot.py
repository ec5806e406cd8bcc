"""One-shot estimation: the accuracy of an architecture inside a trained weight-sharing supernet."""

from __future__ import annotations

import time
from typing import Any

import torch

from genotypes import nb201_ops
from nas.data import TensorLoader
from nas.estimators.base import Score
from nas.spaces import edge_index
from nas.supernet.search import build_search_model, load_search
from nas.train import evaluate


def subnet_weights(model: Any, arch: Any) -> dict[str, torch.Tensor]:
    """One-hot op weights per cell type selecting ``arch`` in ``model`` (all other ops and edges off)."""
    out: dict[str, torch.Tensor] = {}
    if model.kind == "nb201":
        picks = {"cell": list(enumerate(nb201_ops(arch)))}  # NB201 edge order is the arch string's order
    else:
        picks = {ct: [(edge_index(node, src), op) for node, pairs in enumerate(getattr(arch, ct))
                      for op, src in pairs] for ct in model.cell_types}
    for ct in model.cell_types:
        w = torch.zeros(model.n_edges, model.n_ops)
        for e, op in picks[ct]:
            cands = model.edge_ops[ct][e]
            if op not in cands:
                raise ValueError(f"op {op!r} is not a candidate of {ct} edge {e} in this supernet; "
                                 f"allowed: {', '.join(cands)}")
            w[e, cands.index(op)] = 1.0
        out[ct] = w
    return out


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
