"""CUDA graphs of a supernet's training forward and backward, one per static configuration.

A supernet step launches thousands of small kernels (every candidate op of every edge); replayed from a
graph they cost one launch each way. ``graphed_body`` is what ``Supernet._run_body`` calls when its
``cuda_graphs`` switch is on: a configuration (input shape and layout, the active ops, which inputs need
gradients) is captured with ``torch.cuda.make_graphed_callables`` once it has come 3 times, so one-off
configurations (a projection mask, an epoch's last partial batch) never pay for a capture.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn


class _GraphCache:
    """A supernet's CUDA graphs by configuration (at most ``size``) and how often each came; never copied
    (a deep copy of the supernet, as DARTS' unrolled step makes, starts empty) nor saved."""

    def __init__(self, size: int = 4, after: int = 3):
        self.size, self.after = size, after
        self.graphs: dict = {}
        self.seen: dict = {}

    def get(self, key):  # noqa: ANN001, ANN201 - private helper
        return self.graphs.get(key)

    def count(self, key) -> bool:  # noqa: ANN001
        """Count one more use of ``key``; True once it has come ``after`` times (capture it now)."""
        self.seen[key] = self.seen.get(key, 0) + 1
        return self.seen[key] >= self.after

    def put(self, key, graphed):  # noqa: ANN001, ANN201
        if len(self.graphs) >= self.size:
            self.graphs.pop(next(iter(self.graphs)))  # the oldest configuration goes
        self.graphs[key] = graphed
        return graphed

    def __deepcopy__(self, memo: dict) -> _GraphCache:
        return _GraphCache(self.size, self.after)

    def __getstate__(self) -> dict:
        return {"size": self.size, "after": self.after}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["size"], state["after"])


class _Body(nn.Module):
    """``supernet._body`` at fixed active ops, as a module of its own for ``make_graphed_callables``."""

    def __init__(self, net: nn.Module, actives: Sequence):
        super().__init__()
        self.net = net
        self.actives = actives

    def forward(self, x: torch.Tensor, *ws: torch.Tensor) -> torch.Tensor:
        return self.net._body(x, ws, self.actives)


def graphed_body(net: Any, x: torch.Tensor, ws: Sequence[torch.Tensor], actives: Sequence) -> torch.Tensor:
    """``net._body(x, ws, actives)``, replayed from a CUDA graph once its configuration has repeated.

    BatchNorm statistics and the CUDA RNG are put back after the capture's warm-up passes, so training
    sees exactly its own steps. A replayed output lives in the graph's memory: its backward must run before
    the next forward of the same configuration (every training step does: forward, backward, next forward).
    """
    cache = net.__dict__.setdefault("_graph_cache", _GraphCache())
    key = (tuple(x.shape), x.dtype, x.stride(), x.requires_grad, tuple(w.requires_grad for w in ws),
           tuple(tuple(tuple(row) for row in a) for a in actives))
    graphed = cache.get(key)
    if graphed is None:
        if not cache.count(key):
            return net._body(x, ws, actives)
        graphed = cache.put(key, _capture(net, x, ws, actives))
    return graphed(x, *ws)


def _capture(net: nn.Module, x: torch.Tensor, ws: Sequence[torch.Tensor], actives: Sequence) -> nn.Module:
    saved = [b.detach().clone() for b in net.buffers()]
    rng = torch.cuda.get_rng_state(x.device)
    sample = (x.detach().clone().requires_grad_(x.requires_grad),
              *[w.detach().clone().requires_grad_(w.requires_grad) for w in ws])
    try:
        return torch.cuda.make_graphed_callables(_Body(net, actives), sample, num_warmup_iters=2,
                                                 allow_unused_input=True)
    finally:
        with torch.no_grad():  # the warm-up passes moved BatchNorm statistics and drew random numbers
            for b, v in zip(net.buffers(), saved):
                b.copy_(v)
        torch.cuda.set_rng_state(rng, x.device)
