"""Fixed networks that train one architecture: a DARTS genotype (pt.darts' AugmentCNN, as BPE trains it)
and a NAS-Bench-201 cell (the benchmark's TinyNetwork, C=16, N=5 by default).

Both build at any channel count, depth and input size, return ``(logits, aux_logits | None)`` and never
pick a device themselves.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from genotypes import Genotype, parse_nb201
from models.ops import DropPath, FactorizedReduce, Identity, ReLUConvBN, StdConv, build_nb201_op, build_op


class CellSlot(NamedTuple):
    """Where one cell sits in a DARTS network: its input channels, own width and reduction flags."""

    C_pp: int
    C_p: int
    C: int
    reduction_prev: bool
    reduction: bool


def darts_stem(in_channels: int, C: int, stem_multiplier: int = 3) -> nn.Sequential:
    """DARTS' stem: a 3x3 conv to ``stem_multiplier * C`` channels and BatchNorm."""
    return nn.Sequential(nn.Conv2d(in_channels, stem_multiplier * C, 3, padding=1, bias=False),
                         nn.BatchNorm2d(stem_multiplier * C))


def darts_layout(layers: int, C: int, *, multiplier: Callable[[bool], int] | int = 4,
                 stem_multiplier: int = 3) -> tuple[list[CellSlot], int]:
    """The DARTS stacking shared by every DARTS-space network (fixed, supernet, PertNAS): reductions at
    1/3 and 2/3 depth double the width; a cell outputs ``multiplier(reduction) * C`` channels. Returns the
    slots and the last cell's output channels."""
    mult = multiplier if callable(multiplier) else (lambda _r, m=multiplier: m)
    C_pp = C_p = stem_multiplier * C
    C_cur, reduction_prev, slots = C, False, []
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        if reduction:
            C_cur *= 2
        slots.append(CellSlot(C_pp, C_p, C_cur, reduction_prev, reduction))
        reduction_prev = reduction
        C_pp, C_p = C_p, mult(reduction) * C_cur
    return slots, C_p


class AuxiliaryHead(nn.Module):
    """Auxiliary classifier at 2/3 depth (DARTS); BPE's variant pools adaptively for small inputs."""

    def __init__(self, input_size: int, C: int, n_classes: int):
        super().__init__()
        # DARTS assumes an 8x8 (or 7x7) map there; BPE's 16x16 images leave 4x4, so it pools to 2x2 adaptively
        pool = (nn.AvgPool2d(5, stride=input_size - 5, padding=0, count_include_pad=False)
                if input_size in (7, 8) else nn.AdaptiveAvgPool2d((2, 2)))
        self.net = nn.Sequential(
            nn.ReLU(inplace=True), pool,
            nn.Conv2d(C, 128, kernel_size=1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, kernel_size=2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True))
        self.linear = nn.Linear(768, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.flatten(self.net(x), 1))


class DartsCell(nn.Module):
    """A discrete DARTS cell: each node sums its genotype edges; the output concatenates ``concat``."""

    def __init__(self, genotype: Genotype, C_pp: int, C_p: int, C: int, reduction_p: bool, reduction: bool):
        super().__init__()
        self.reduction = reduction
        self.preproc0 = FactorizedReduce(C_pp, C) if reduction_p else StdConv(C_pp, C, 1, 1, 0)
        self.preproc1 = StdConv(C_p, C, 1, 1, 0)
        nodes = genotype.reduce if reduction else genotype.normal
        self.concat = list(genotype.reduce_concat if reduction else genotype.normal_concat)
        self.edges = nn.ModuleList()
        self.inputs: list[list[int]] = []
        for node in nodes:
            row = nn.ModuleList()
            for op_name, src in node:
                op = build_op(op_name, C, 2 if reduction and src < 2 else 1, True)
                # drop path on every op but identity, as DARTS / pt.darts
                row.append(op if isinstance(op, Identity) else nn.Sequential(op, DropPath()))
            self.edges.append(row)
            self.inputs.append([src for _, src in node])

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preproc0(s0), self.preproc1(s1)]
        for row, srcs in zip(self.edges, self.inputs):
            out = row[0](states[srcs[0]])
            for op, src in zip(row[1:], srcs[1:]):
                out = out + op(states[src])
            states.append(out)
        return torch.cat([states[i] for i in self.concat], dim=1)


class DartsNetwork(nn.Module):
    """The network that trains a DARTS genotype (reductions at 1/3 and 2/3 depth, stem x3)."""

    def __init__(self, genotype: Genotype, *, C: int, n_classes: int, layers: int, input_size: int,
                 in_channels: int = 3, auxiliary: bool = False, drop_path_prob: float = 0.0,
                 stem_multiplier: int = 3):
        super().__init__()
        self.genotype = genotype
        self.aux_pos = 2 * layers // 3 if auxiliary else -1
        C_cur = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C_cur, 3, 1, 1, bias=False), nn.BatchNorm2d(C_cur))
        C_pp, C_p, C_cur = C_cur, C_cur, C
        self.cells = nn.ModuleList()
        self.aux_head: AuxiliaryHead | None = None
        reduction_p = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_cur *= 2
            cell = DartsCell(genotype, C_pp, C_p, C_cur, reduction_p, reduction)
            self.cells.append(cell)
            reduction_p = reduction
            C_pp, C_p = C_p, C_cur * len(cell.concat)
            if i == self.aux_pos:
                self.aux_head = AuxiliaryHead(input_size // 4, C_p, n_classes)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(C_p, n_classes)
        self.set_drop_path(drop_path_prob)

    def set_drop_path(self, p: float) -> None:
        """Set the drop-path probability of every op (DARTS raises it linearly over epochs)."""
        for m in self.modules():
            if isinstance(m, DropPath):
                m.p = p

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if i == self.aux_pos and self.training and self.aux_head is not None:
                aux = self.aux_head(s1)
        return self.linear(torch.flatten(self.gap(s1), 1)), aux


class ResNetBasicBlock(nn.Module):
    """NAS-Bench-201's stride-2 residual block between stages."""

    def __init__(self, C_in: int, C_out: int, stride: int = 2):
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, stride, 1, 1)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1, 1)
        if stride == 2:
            self.downsample = nn.Sequential(nn.AvgPool2d(2, 2, 0), nn.Conv2d(C_in, C_out, 1, 1, 0, bias=False))
        elif C_in != C_out:
            self.downsample = ReLUConvBN(C_in, C_out, 1, 1, 0, 1)
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.downsample(x) if self.downsample is not None else x
        return residual + self.conv_b(self.conv_a(x))


class NB201Cell(nn.Module):
    """NAS-Bench-201's InferCell: node j sums op(i->j)(node i) over i<j; 'none' edges are skipped."""

    def __init__(self, arch: str, C: int):
        super().__init__()
        self.edges = nn.ModuleList()
        self.links: list[list[tuple[int, int]]] = []  # per node: (edge module index, input node)
        for node in parse_nb201(arch):
            links = []
            for op_name, src in node:
                if op_name == "none":  # contributes zeros: no compute, no parameters
                    continue
                links.append((len(self.edges), src))
                self.edges.append(build_nb201_op(op_name, C, C, 1))
            self.links.append(links)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for links in self.links:
            if not links:
                nodes.append(torch.zeros_like(x))
                continue
            out = self.edges[links[0][0]](nodes[links[0][1]])
            for e, src in links[1:]:
                out = out + self.edges[e](nodes[src])
            nodes.append(out)
        return nodes[-1]


class NB201Network(nn.Module):
    """NAS-Bench-201's TinyNetwork: stem, N cells, resblock, N cells, resblock, N cells, BN-ReLU, GAP, FC."""

    def __init__(self, arch: str, *, C: int = 16, N: int = 5, n_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.arch = arch
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        C_prev = C
        for stage, c in enumerate((C, 2 * C, 4 * C)):
            if stage:
                layers.append(ResNetBasicBlock(C_prev, c, 2))
            layers += [NB201Cell(arch, c) for _ in range(N)]
            C_prev = c
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=True))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        out = self.gap(self.lastact(self.cells(self.stem(x))))
        return self.classifier(torch.flatten(out, 1)), None


def build_network(arch, *, space_kind: str, C: int, layers: int, n_classes: int, input_size: int,
                  in_channels: int = 3, auxiliary: bool = False, drop_path_prob: float = 0.0) -> nn.Module:
    """The trainable network of ``arch`` in a space: ``darts`` (Genotype) or ``nb201`` (layers = N)."""
    if space_kind == "nb201":
        return NB201Network(arch, C=C, N=layers, n_classes=n_classes, in_channels=in_channels)
    if space_kind == "darts":
        return DartsNetwork(arch, C=C, n_classes=n_classes, layers=layers, input_size=input_size,
                            in_channels=in_channels, auxiliary=auxiliary, drop_path_prob=drop_path_prob)
    raise ValueError(f"unknown space kind {space_kind!r}; allowed: darts, nb201")


def count_params(model: nn.Module, *, exclude_aux: bool = True) -> int:
    """Trainable parameter count; the auxiliary head is left out as DARTS reports it."""
    return sum(p.numel() for n, p in model.named_parameters() if not (exclude_aux and n.startswith("aux_head")))


def count_flops(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Multiply-adds of one forward pass on one image in eval mode (convolutions and linear layers).

    ``torch.utils.flop_counter`` counts 2 FLOPs per multiply-add of conv/matmul ops (bias, BN, pooling
    and additions not counted); half of it is the multiply-add count DARTS and BPE report.
    """
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters())
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros((1, *input_shape), device=p.device, dtype=p.dtype))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2
