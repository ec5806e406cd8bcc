"""PertNAS search network: one discrete cell type whose edges hold a few ops switched on or off.

Follows PertNAS ``models/model_search.py``: every edge is a list of candidate ops ("switches") whose
outputs are summed with binary weights (1 = on, 0 = removed by a perturbation); 'none' may be in the
list and contributes nothing. Reduction cells are the same cell with stride 2 on the edges from the
two cell inputs (PertNAS searches one cell type); 5 cells, C=16 by default, reductions at layers//3
and 2*layers//3, ops without affine BN (pools followed by a non-affine BN, as PertNAS' MixedOp).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from models.networks import darts_layout, darts_stem
from models.ops import FactorizedReduce, PoolBN, StdConv, build_op

N_NODES = 4
N_EDGES = sum(range(2, N_NODES + 2))  # 14
Switches = list[list[str]]  # per edge, the op names it holds ('none' allowed)


def edge_inputs(edge: int) -> tuple[int, int]:
    """(node, input state) of an edge in DARTS' node-major order: edge 0 = node 0 <- s0."""
    start = 0
    for node in range(N_NODES):
        if edge < start + node + 2:
            return node, edge - start
        start += node + 2
    raise ValueError(f"edge must be in 0..{N_EDGES - 1}, got {edge}")


def node_edges(node: int) -> range:
    """The edges that feed intermediate node ``node`` (0-based)."""
    start = sum(range(2, node + 2))
    return range(start, start + node + 2)


class SwitchedEdge(nn.Module):
    """PertNAS' MixedOp: sum of the edge's ops times binary weights; 'none' is a zero we never compute."""

    def __init__(self, ops: Sequence[str], C: int, stride: int, compute_removed: bool = False):
        super().__init__()
        self.names = list(ops)
        self.stride = stride
        self.compute_removed = compute_removed
        mods = []
        for name in self.names:
            if name == "none":
                mods.append(nn.Identity())  # placeholder, never called: 'none' adds zeros
            elif name in ("max_pool_3x3", "avg_pool_3x3"):
                # PertNAS wraps pools in a non-affine BN (model_search.py MixedOp); PoolBN is exactly that.
                mods.append(PoolBN(name[:3], C, 3, stride, 1, affine=False))
            else:
                mods.append(build_op(name, C, stride, affine=False))
        self.ops = nn.ModuleList(mods)
        # binary weights: a plain list (not a parameter) as PertNAS' alphas_normal, so state_dicts ignore it
        self.weights = [1.0] * len(self.names)

    def forward(self, x: torch.Tensor) -> torch.Tensor | None:
        out = None
        for w, name, op in zip(self.weights, self.names, self.ops):
            # Skipping zero-weight ops gives the same output as PertNAS' `w * op(x)` (model_search.py 34);
            # only the removed op's BN running statistics, weight decay and momentum stop while it is off,
            # which matters only when perturb-val does not restore the weights (``compute_removed``).
            if name == "none" or (w == 0.0 and not self.compute_removed):
                continue
            y = op(x) if w == 1.0 else w * op(x)
            out = y if out is None else out + y
        return out


class SearchCell(nn.Module):
    """A PertNAS search cell: 4 nodes, each the sum over its (switched) input edges."""

    def __init__(self, switches: Switches, C_pp: int, C_p: int, C: int, reduction: bool, reduction_prev: bool,
                 compute_removed: bool = False):
        super().__init__()
        self.reduction = reduction
        self.pre0 = FactorizedReduce(C_pp, C, affine=False) if reduction_prev else StdConv(C_pp, C, 1, 1, 0, False)
        self.pre1 = StdConv(C_p, C, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList()
        for e, ops in enumerate(switches):
            _, src = edge_inputs(e)
            self.edges.append(SwitchedEdge(ops, C, 2 if reduction and src < 2 else 1, compute_removed))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for node in range(N_NODES):
            out = None
            for e in node_edges(node):
                _, src = edge_inputs(e)
                y = self.edges[e](states[src])
                if y is not None:
                    out = y if out is None else out + y
            if out is None:  # every input edge is 'none' or switched off: the node outputs zeros
                s = 2 if self.reduction else 1
                out = states[0][:, :, ::s, ::s] * 0.0
            states.append(out)
        return torch.cat(states[2:], dim=1)


class PertNASNetwork(nn.Module):
    """Stem, ``layers`` cells sharing one switch list (reductions at 1/3, 2/3), pool, linear classifier.

    ``compute_removed`` runs switched-off ops times 0, as PertNAS does, instead of skipping them.
    """

    def __init__(self, switches: Switches, *, C: int = 16, n_classes: int = 10, layers: int = 5,
                 in_channels: int = 3, stem_multiplier: int = 3, compute_removed: bool = False):
        super().__init__()
        if len(switches) != N_EDGES:
            raise ValueError(f"switches must list {N_EDGES} edges, got {len(switches)}")
        self.switches = [list(s) for s in switches]
        self.stem = darts_stem(in_channels, C, stem_multiplier)
        slots, C_p = darts_layout(layers, C, multiplier=N_NODES, stem_multiplier=stem_multiplier)
        self.cells = nn.ModuleList(SearchCell(self.switches, s.C_pp, s.C_p, s.C, s.reduction, s.reduction_prev,
                                              compute_removed) for s in slots)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.pool(s1).flatten(1))

    def set_op(self, edge: int, op_index: int, on: bool) -> None:
        """PertNAS ``_perturb_binary``: switch op ``op_index`` of ``edge`` off or back on in every cell."""
        for cell in self.cells:
            cell.edges[edge].weights[op_index] = 1.0 if on else 0.0
