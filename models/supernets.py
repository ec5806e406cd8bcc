"""Weight-sharing supernets: the DARTS space (S1-S5) and NAS-Bench-201, with DARTS-PT's projection state.

Both follow DARTS-PT (Wang et al., ICLR 2021): ``sota/cnn/model_search*.py`` for the DARTS space and
``nasbench201/search_model*.py`` for NAS-Bench-201. Every edge is a mixed op; the architecture
weights of a cell type are one ``[n_edges, n_ops]`` alpha tensor. What the originals keep as mutable
python attributes (``candidate_flags``, ``proj_weights``) lives here in buffers, so a projection
state saves and loads with ``state_dict``.

Speed on CPU: a mixed op only runs the ops whose weight can be non-zero. Which ops those are is
decided on the host from the projection state and the caller's mask (never by reading weights
back from the device), and ``'none'`` is never run: ``w * 0`` adds nothing to the output and
nothing to any gradient. A masked op therefore costs nothing, and the output is exactly that of a
supernet built without it (tests/test_supernets.py checks this).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from genotypes import NB201_OPS, Genotype, make_genotype, nb201_from_ops
from models.graphed import graphed_body
from models.networks import ResNetBasicBlock, darts_layout, darts_stem
from models.ops import FactorizedReduce, StdConv, build_nb201_op, build_op

Masks = dict[str, torch.Tensor]  # cell type -> bool [n_edges, n_ops] (False = op removed), on the CPU


class BoxAvgPool3x3(nn.Module):
    """3x3 stride-1 average pool without counting the padding, as 9 shifted adds over a count map.

    Same numbers as ``nn.AvgPool2d(3, 1, 1, count_include_pad=False)`` (to float rounding) at 3-4x
    less CPU time on 16x16-32x32 maps: ATen's CPU avg_pool2d was the largest cost of the NB201
    supernet step (21% forward, 14% backward in a torch.profiler trace). Off the CPU it is that pool.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":  # on a GPU the native pool is 1 kernel (the box sum here is ~12, ~8 back)
            return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        H, W = x.shape[-2:]
        p = F.pad(x, (1, 1, 1, 1))
        s = p[:, :, :, 0:W] + p[:, :, :, 1:W + 1] + p[:, :, :, 2:W + 2]
        s = s[:, :, 0:H] + s[:, :, 1:H + 1] + s[:, :, 2:H + 2]
        rows = torch.full((H,), 3.0, device=x.device, dtype=x.dtype)
        rows[0] = rows[-1] = 2.0
        cols = torch.full((W,), 3.0, device=x.device, dtype=x.dtype)
        cols[0] = cols[-1] = 2.0
        return s / (rows[:, None] * cols[None, :])


def _fast_pools(module: nn.Module) -> None:
    """Swap every 3x3 stride-1 ``count_include_pad=False`` average pool for :class:`BoxAvgPool3x3`."""
    for name, child in module.named_children():
        if (isinstance(child, nn.AvgPool2d) and child.kernel_size in (3, (3, 3)) and child.stride in (1, (1, 1))
                and child.padding in (1, (1, 1)) and not child.count_include_pad and not child.ceil_mode):
            setattr(module, name, BoxAvgPool3x3())
        else:
            _fast_pools(child)


def _after_relu(op: nn.Module) -> list[nn.Module] | None:
    """The modules ``op`` runs after its leading ReLU (``op(x) == tail(relu(x))``), or None without one.

    ReLU-Conv-BN, DilConv, SepConv (whose first DilConv starts with the ReLU) and conv_7x1_1x7 start so.
    """
    if not isinstance(op, nn.Sequential) or len(op) == 0:
        return None
    first = op[0]
    if isinstance(first, nn.ReLU) and not first.inplace:
        return list(op)[1:]
    inner = _after_relu(first)
    return None if inner is None else inner + list(op)[1:]


class MixedEdge(nn.Module):
    """One edge of a supernet: a weighted sum of candidate ops, running only the active ones.

    Ops that start with a ReLU may be given ``relu(x)``, computed once per cell input and shared by every
    edge reading it (a cell's node 0 feeds 3 NB201 edges of 2 such ops each: 6 ReLUs become 1, forward
    and backward): the same numbers, fewer kernels.
    """

    def __init__(self, op_names: Sequence[str], build: Callable[[str], nn.Module]):
        super().__init__()
        self.op_names = list(op_names)
        self.ops = nn.ModuleList(build(name) for name in self.op_names)
        _fast_pools(self.ops)
        # plain lists of the ops' own modules, not registered again (state_dict unchanged)
        self._tails = [_after_relu(op) for op in self.ops]

    def uses_relu(self, active: Sequence[int]) -> bool:
        """Whether an active op starts with a ReLU (then the cell computes relu(x) once for all)."""
        return any(self._tails[k] is not None for k in active)

    def forward(self, x: torch.Tensor, w: torch.Tensor, active: Sequence[int],
                relu_x: torch.Tensor | None = None) -> torch.Tensor | None:
        out = None
        for k in active:
            tail = self._tails[k] if relu_x is not None else None
            if tail is None:
                h = self.ops[k](x)
            else:
                h = relu_x
                for m in tail:
                    h = m(h)
            y = h * w[k]
            out = y if out is None else out + y
        return out


class _SharedRelu:
    """relu(state) computed at most once per cell input, only when an active op wants it."""

    def __init__(self, states: list[torch.Tensor]):
        self.states = states
        self.cache: dict[int, torch.Tensor] = {}

    def get(self, i: int, edge: MixedEdge, active: Sequence[int]) -> torch.Tensor | None:
        if not edge.uses_relu(active):
            return None
        if i not in self.cache:
            self.cache[i] = F.relu(self.states[i])
        return self.cache[i]


class Supernet(nn.Module):
    """Shared part of both supernets: alphas, projection state, masks and the active-op lists.

    Projection state per cell type (DARTS-PT ``model_search_darts_proj.py``): ``proj_op_<ct>[e]`` is
    the op fixed on edge ``e`` (-1 while undecided), ``edge_on_<ct>[e]`` is False once node-input
    selection dropped the edge. Weights seen by the network: softmax(alpha) on undecided edges,
    one-hot on decided ones, zero on dropped ones, times the caller's mask.
    """

    cell_types: tuple[str, ...] = ()
    # CUDA graphs of the training forward+backward (see _run_body); off unless a caller turns it on
    # (search.py/project.py --cuda_graph), class-wide so that the supernets nas.supernet builds follow it
    cuda_graphs: bool = False

    def _run_body(self, x: torch.Tensor, ws: Sequence[torch.Tensor], actives: Sequence) -> torch.Tensor:
        """The network after the architecture weights: eager, or replayed from a CUDA graph.

        With ``cuda_graphs`` on, a training-mode forward with autograd on CUDA is captured once per static
        configuration (input shape and layout, active ops, which inputs need gradients) after that
        configuration has come 3 times, as forward and backward graphs
        (``torch.cuda.make_graphed_callables``), and replayed from then on: a one-off configuration (a
        projection mask, the last partial batch) stays eager. BatchNorm statistics and the RNG are put back
        after the capture's warm-up passes, so training sees exactly its own steps. A replayed output
        lives in the graph's memory: its backward must run before the next forward of the same
        configuration (every training step here does: forward, backward, then the next forward).
        Evaluation (no autograd, or eval mode) always runs eagerly.
        """
        if not (self.cuda_graphs and x.is_cuda and self.training and torch.is_grad_enabled()):
            return self._body(x, ws, actives)
        return graphed_body(self, x, ws, actives)

    def _init_arch(self, edge_ops: dict[str, list[list[str]]]) -> None:
        self.edge_ops = {ct: [list(ops) for ops in edge_ops[ct]] for ct in self.cell_types}
        self.n_ops = max(len(ops) for ct in self.cell_types for ops in self.edge_ops[ct])
        self.n_edges = len(self.edge_ops[self.cell_types[0]])
        for ct in self.cell_types:
            valid = torch.zeros(self.n_edges, self.n_ops, dtype=torch.bool)
            for e, ops in enumerate(self.edge_ops[ct]):
                valid[e, : len(ops)] = True
            self.register_buffer(f"valid_{ct}", valid, persistent=False)
            # DARTS starts alphas at 1e-3 * randn; zeros make 'blank' exactly uniform and the two
            # agree to 1e-3. The caller (nas.supernet_search) re-initialises them with its seed.
            self.register_parameter(f"alpha_{ct}", nn.Parameter(torch.zeros(self.n_edges, self.n_ops)))
            self.register_buffer(f"proj_op_{ct}", torch.full((self.n_edges,), -1, dtype=torch.long))
            self.register_buffer(f"edge_on_{ct}", torch.ones(self.n_edges, dtype=torch.bool))
        self._refresh_host()

    # -- parameters ---------------------------------------------------------------------------
    def alphas(self) -> list[nn.Parameter]:
        """Architecture parameters, one per cell type (pt.darts ``SearchCNNController.alphas``)."""
        return [getattr(self, f"alpha_{ct}") for ct in self.cell_types]

    def weights(self) -> list[nn.Parameter]:
        """Every parameter but the alphas (pt.darts ``weights``)."""
        ids = {id(a) for a in self.alphas()}
        return [p for p in self.parameters() if id(p) not in ids]

    def alpha(self, ct: str) -> nn.Parameter:
        return getattr(self, f"alpha_{ct}")

    # -- projection state ---------------------------------------------------------------------
    def _refresh_host(self) -> None:
        """Mirror the projection buffers on the host, so forward never reads the device."""
        self._proj = {ct: getattr(self, f"proj_op_{ct}").tolist() for ct in self.cell_types}
        self._edge_on = {ct: getattr(self, f"edge_on_{ct}").tolist() for ct in self.cell_types}
        self._base_active = {}
        for ct in self.cell_types:
            rows = []
            for e, ops in enumerate(self.edge_ops[ct]):
                if not self._edge_on[ct][e]:
                    rows.append([])
                elif self._proj[ct][e] >= 0:
                    rows.append([] if ops[self._proj[ct][e]] == "none" else [self._proj[ct][e]])
                else:
                    rows.append([k for k, name in enumerate(ops) if name != "none"])
            self._base_active[ct] = rows

    def _load_from_state_dict(self, *args, **kwargs):  # noqa: ANN002, ANN003 - torch's signature
        super()._load_from_state_dict(*args, **kwargs)
        self._refresh_host()

    def project_op(self, ct: str, edge: int, op: int) -> None:
        """Fix edge ``edge`` of cell type ``ct`` to op index ``op`` (DARTS-PT ``project_op``)."""
        getattr(self, f"proj_op_{ct}")[edge] = op
        self._refresh_host()

    def project_edges(self, ct: str, drop: Sequence[int]) -> None:
        """Drop edges (node-input selection, DARTS-PT ``project_edge``)."""
        for e in drop:
            getattr(self, f"edge_on_{ct}")[e] = False
        self._refresh_host()

    def undecided_edges(self, ct: str) -> list[int]:
        return [e for e in range(self.n_edges) if self._proj[ct][e] < 0]

    def full_masks(self) -> Masks:
        """All-True masks (nothing removed), to edit for one perturbation."""
        return {ct: getattr(self, f"valid_{ct}").cpu().clone() for ct in self.cell_types}

    # -- weights ------------------------------------------------------------------------------
    def softmax(self, ct: str) -> torch.Tensor:
        """Softmax of the alphas over each edge's own candidates."""
        a = self.alpha(ct).masked_fill(~getattr(self, f"valid_{ct}"), float("-inf"))
        return F.softmax(a, dim=-1)

    def arch_weights(self, ct: str, mask: torch.Tensor | None = None,
                     weights: torch.Tensor | None = None) -> tuple[torch.Tensor, list[list[int]]]:
        """Weights of cell type ``ct`` after projection and ``mask``, and each edge's active ops.

        ``weights`` replaces softmax(alpha) (DARTS-PT's ``forward(input, weights)``).
        """
        w = self._projected(ct, self.softmax(ct) if weights is None else weights, 1.0, 0.0)
        active = self._base_active[ct]
        if mask is not None:
            keep = mask.tolist()
            active = [[k for k in row if keep[e][k]] for e, row in enumerate(active)]
            w = w * mask.to(device=w.device, dtype=w.dtype)
        return w, active

    def _projected(self, ct: str, w: torch.Tensor, chosen: float, other: float) -> torch.Tensor:
        """``w`` after projection: a decided edge is ``chosen`` on its op and ``other`` elsewhere, a
        dropped edge (node inputs decided) is ``other`` everywhere."""
        proj = getattr(self, f"proj_op_{ct}")
        if any(p >= 0 for p in self._proj[ct]):
            pick = F.one_hot(proj.clamp(min=0), self.n_ops).bool()
            fixed = torch.full_like(w, other).masked_fill(pick, chosen)
            w = torch.where((proj >= 0).unsqueeze(1), fixed, w)
        if not all(self._edge_on[ct]):
            w = w.masked_fill(~getattr(self, f"edge_on_{ct}").unsqueeze(1), other)
        return w

    def projected_weights(self, ct: str) -> torch.Tensor:
        """Weights after projection, detached (what genotype() and the logs read)."""
        return self.arch_weights(ct)[0].detach()


# ============================================================================= DARTS space


class DartsSearchCell(nn.Module):
    """A DARTS search cell (DARTS-PT ``sota/cnn/model_search.py`` ``Cell``): 4 nodes, 14 mixed edges."""

    def __init__(self, edge_ops: list[list[str]], n_nodes: int, multiplier: int, C_pp: int, C_p: int, C: int,
                 reduction: bool, reduction_p: bool):
        super().__init__()
        self.reduction = reduction
        self.n_nodes = n_nodes
        self.multiplier = multiplier
        self.C = C
        # search cells use affine=False everywhere (DARTS model_search.py)
        self.preproc0 = FactorizedReduce(C_pp, C, affine=False) if reduction_p else StdConv(C_pp, C, 1, 1, 0, False)
        self.preproc1 = StdConv(C_p, C, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList()
        e = 0
        for i in range(n_nodes):
            for j in range(i + 2):
                stride = 2 if reduction and j < 2 else 1
                self.edges.append(MixedEdge(edge_ops[e], lambda name, s=stride: build_op(name, C, s, affine=False)))
                e += 1

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, w: torch.Tensor, active: list[list[int]]) -> torch.Tensor:
        states = [self.preproc0(s0), self.preproc1(s1)]
        relus = _SharedRelu(states)
        e = 0
        for _ in range(self.n_nodes):
            acc = None
            for i, h in enumerate(states):
                y = self.edges[e](h, w[e], active[e], relus.get(i, self.edges[e], active[e]))
                e += 1
                if y is not None:
                    acc = y if acc is None else acc + y
            if acc is None:  # every input masked: the node is zero (DARTS' sum of zeros)
                h = states[1]
                hw = [(s + 1) // 2 for s in h.shape[2:]] if self.reduction else list(h.shape[2:])
                acc = h.new_zeros(h.size(0), self.C, *hw)
            states.append(acc)
        return torch.cat(states[-self.multiplier:], dim=1)


class DartsSupernet(Supernet):
    """DARTS-space supernet (S1-S5): stem, ``layers`` cells with reductions at 1/3 and 2/3, GAP, linear."""

    cell_types = ("normal", "reduce")
    kind = "darts"

    def __init__(self, edge_ops: dict[str, list[list[str]]], *, C: int = 16, n_classes: int = 10, layers: int = 8,
                 in_channels: int = 3, n_nodes: int = 4, multiplier: int = 4, stem_multiplier: int = 3):
        super().__init__()
        if layers < 3:
            raise ValueError(f"a DARTS supernet needs at least 3 layers (two are reductions), got {layers}")
        n_edges = sum(range(2, n_nodes + 2))
        for ct in self.cell_types:
            if len(edge_ops[ct]) != n_edges:
                raise ValueError(f"{ct} cell needs {n_edges} edge op lists, got {len(edge_ops[ct])}")
        self.n_nodes, self.multiplier = n_nodes, multiplier
        self.stem = darts_stem(in_channels, C, stem_multiplier)
        slots, C_p = darts_layout(layers, C, multiplier=multiplier, stem_multiplier=stem_multiplier)
        self.cells = nn.ModuleList(
            DartsSearchCell(edge_ops["reduce" if s.reduction else "normal"], n_nodes, multiplier, s.C_pp, s.C_p, s.C,
                            s.reduction, s.reduction_prev) for s in slots)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, n_classes)
        # node k's incoming edges, as DARTS-PT's nid2eids (which leaves out node 0: it has only 2)
        self.node_edges = [list(range(sum(range(2, k + 2)), sum(range(2, k + 3)))) for k in range(n_nodes)]
        self._init_arch(edge_ops)

    def forward(self, x: torch.Tensor, masks: Masks | None = None,
                weights: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        masks, weights = masks or {}, weights or {}
        wn, an = self.arch_weights("normal", masks.get("normal"), weights.get("normal"))
        wr, ar = self.arch_weights("reduce", masks.get("reduce"), weights.get("reduce"))
        return self._run_body(x, (wn, wr), (an, ar))

    def _body(self, x: torch.Tensor, ws: Sequence[torch.Tensor], actives: Sequence) -> torch.Tensor:
        (wn, wr), (an, ar) = ws, actives
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            w, a = (wr, ar) if cell.reduction else (wn, an)
            s0, s1 = s1, cell(s0, s1, w, a)
        return self.classifier(torch.flatten(self.gap(s1), 1))

    def genotype(self, rank_by: str = "weights") -> Genotype:
        """Argmax cell (DARTS ``genotype()``): per node the 2 edges with the largest non-'none' weight.

        ``rank_by="weights"`` ranks by the (projected) softmax weights as DARTS and DARTS-PT do;
        ``"alphas"`` by the raw alphas as pt.darts' ``parse`` (genotypes.py 65-80), which BPE's search uses.
        """
        if rank_by not in ("weights", "alphas"):
            raise ValueError(f"unknown rank_by {rank_by!r}; allowed: weights, alphas")
        cells = []
        for ct in self.cell_types:
            if rank_by == "alphas":  # a decided op outranks every alpha, as its weight 1 outranks every softmax
                a = self.alpha(ct).detach().masked_fill(~getattr(self, f"valid_{ct}"), float("-inf"))
                W = self._projected(ct, a, float("inf"), float("-inf")).cpu().tolist()
            else:
                W = self.projected_weights(ct).cpu().tolist()
            ops = self.edge_ops[ct]
            # best non-'none' op of every edge (DARTS' k_best)
            best = [max((i for i, name in enumerate(ops[e]) if name != "none"), key=W[e].__getitem__)
                    for e in range(self.n_edges)]
            nodes = []
            for k in range(self.n_nodes):
                eids = self.node_edges[k]
                # DARTS-PT: a dropped edge has all-zero weights and so never wins
                top = sorted(range(len(eids)), key=lambda j, eids=eids: -W[eids[j]][best[eids[j]]])[:2]
                nodes.append([(ops[eids[j]][best[eids[j]]], j) for j in top])
            cells.append(nodes)
        concat = range(2 + self.n_nodes - self.multiplier, self.n_nodes + 2)
        return make_genotype(cells[0], cells[1], concat, concat)


# ============================================================================= NAS-Bench-201


class NB201SearchCell(nn.Module):
    """NAS-Bench-201 search cell (DARTS-PT ``search_cells.py``): 4 nodes, edge i<-j for all j < i."""

    def __init__(self, edge_ops: list[list[str]], C: int, max_nodes: int = 4):
        super().__init__()
        self.max_nodes = max_nodes
        # affine=False, track_running_stats=True: DARTS-PT's TinyNetwork defaults
        self.edges = nn.ModuleList(
            MixedEdge(ops, lambda name: build_nb201_op(name, C, C, 1, affine=False, track_running_stats=True))
            for ops in edge_ops)

    def forward(self, x: torch.Tensor, w: torch.Tensor, active: list[list[int]]) -> torch.Tensor:
        nodes = [x]
        relus = _SharedRelu(nodes)
        e = 0
        for i in range(1, self.max_nodes):
            acc = None
            for j in range(i):
                y = self.edges[e](nodes[j], w[e], active[e], relus.get(j, self.edges[e], active[e]))
                e += 1
                if y is not None:
                    acc = y if acc is None else acc + y
            nodes.append(acc if acc is not None else torch.zeros_like(x))
        return nodes[-1]


class NB201Supernet(Supernet):
    """NAS-Bench-201 supernet (DARTS-PT ``TinyNetwork``): 3 stages of N cells, ResNet blocks between."""

    cell_types = ("cell",)
    kind = "nb201"

    def __init__(self, edge_ops: list[list[str]] | None = None, *, C: int = 16, N: int = 5, n_classes: int = 10,
                 in_channels: int = 3, dropout: float = 0.0):
        super().__init__()
        edge_ops = edge_ops if edge_ops is not None else [list(NB201_OPS)] * 6
        if len(edge_ops) != 6:
            raise ValueError(f"a NAS-Bench-201 cell has 6 edges, got {len(edge_ops)} op lists")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        self.cells = nn.ModuleList()
        C_prev = C
        for stage, C_curr in enumerate((C, 2 * C, 4 * C)):
            if stage:
                self.cells.append(ResNetBasicBlock(C_prev, C_curr, 2))
            for _ in range(N):
                self.cells.append(NB201SearchCell(edge_ops, C_curr))
            C_prev = C_curr
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=True))
        self.gap = nn.AdaptiveAvgPool2d(1)
        # aw_nas' single-path supernet drops out before the classifier (nasbench_201.py 2646-2650)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(C_prev, n_classes)
        self._init_arch({"cell": edge_ops})

    def forward(self, x: torch.Tensor, masks: Masks | None = None,
                weights: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        w, active = self.arch_weights("cell", (masks or {}).get("cell"), (weights or {}).get("cell"))
        return self._run_body(x, (w,), (active,))

    def _body(self, x: torch.Tensor, ws: Sequence[torch.Tensor], actives: Sequence) -> torch.Tensor:
        (w,), (active,) = ws, actives
        h = self.stem(x)
        for cell in self.cells:
            h = cell(h, w, active) if isinstance(cell, NB201SearchCell) else cell(h)
        return self.classifier(self.dropout(torch.flatten(self.gap(self.lastact(h)), 1)))

    def genotype(self, rank_by: str = "weights") -> str:
        """Argmax arch string (DARTS-PT ``genotype()``: argmax over all 5 ops, 'none' included).

        Per edge the argmax of softmax and of the raw alphas agree, so ``rank_by`` changes nothing here."""
        W = self.projected_weights("cell").cpu()
        ops = self.edge_ops["cell"]
        return nb201_from_ops([ops[e][int(W[e, : len(ops[e])].argmax())] for e in range(self.n_edges)])
