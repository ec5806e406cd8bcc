"""Operation registry for the DARTS space (pt.darts layout) and NAS-Bench-201 (the benchmark's own).

``OPS[name](C, stride, affine)`` builds a DARTS op; ``NB201_OPS[name](C_in, C_out, stride, affine,
track_running_stats)`` builds a NAS-Bench-201 op. Unknown names raise ``ValueError`` listing the
choices (``build_op``). Nothing here touches a device.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


class DropPath(nn.Module):
    """Drop a whole sample's path with probability ``p`` (DARTS' drop_path), scaling the rest."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.p > 0.0:
            keep = 1.0 - self.p
            # one Bernoulli per sample, on x's device and dtype (the seed code used torch.cuda.FloatTensor)
            mask = torch.empty((x.size(0), 1, 1, 1), device=x.device, dtype=x.dtype).bernoulli_(keep)
            return x * mask / keep
        return x


class PoolBN(nn.Sequential):
    """Avg/max pool followed by BatchNorm (pt.darts)."""

    def __init__(self, pool_type: str, C: int, kernel_size: int, stride: int, padding: int, affine: bool = True):
        if pool_type == "max":
            pool = nn.MaxPool2d(kernel_size, stride, padding)
        elif pool_type == "avg":
            pool = nn.AvgPool2d(kernel_size, stride, padding, count_include_pad=False)
        else:
            raise ValueError(f"pool_type must be 'max' or 'avg', got {pool_type!r}")
        super().__init__(pool, nn.BatchNorm2d(C, affine=affine))


class StdConv(nn.Sequential):
    """ReLU - Conv - BN."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, affine: bool = True):
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(C_in, C_out, kernel_size, stride, padding, bias=False),
                         nn.BatchNorm2d(C_out, affine=affine))


class DilConv(nn.Sequential):
    """ReLU - depthwise (dilated) conv - pointwise conv - BN."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, dilation: int,
                 affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride, padding, dilation=dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, stride=1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine))


class SepConv(nn.Sequential):
    """Two DilConv(dilation=1) in a row, the first carrying the stride."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, affine: bool = True):
        super().__init__(DilConv(C_in, C_in, kernel_size, stride, padding, 1, affine=affine),
                         DilConv(C_in, C_out, kernel_size, 1, padding, 1, affine=affine))


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The 'none' op: zeros of the (strided) input's shape."""

    def __init__(self, stride: int = 1, C_out: int | None = None):
        super().__init__()
        self.stride = stride
        self.C_out = C_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.C_out is not None and self.C_out != x.size(1):
            shape = list(x.shape)
            shape[1] = self.C_out
            return x.new_zeros(shape)
        return x * 0.0


class NoiseOp(nn.Module):
    """DARTS-PT's S4 'noise' op: Gaussian noise of the (strided) input's shape, input ignored."""

    def __init__(self, stride: int = 1, mean: float = 0.0, std: float = 1.0):
        super().__init__()
        self.stride, self.mean, self.std = stride, mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return torch.randn_like(x) * self.std + self.mean


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing information: two offset 1x1 stride-2 convs, concatenated."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True):
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even C_out, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        # pad odd sizes so both branches agree (the seed code assumed even sizes)
        if x.size(2) % 2 or x.size(3) % 2:
            x = F.pad(x, (0, x.size(3) % 2, 0, x.size(2) % 2))
        return self.bn(torch.cat([self.conv1(x), self.conv2(x[:, :, 1:, 1:])], dim=1))


OpFactory = Callable[[int, int, bool], nn.Module]

OPS: dict[str, OpFactory] = {
    "none": lambda C, stride, affine: Zero(stride),
    "avg_pool_3x3": lambda C, stride, affine: PoolBN("avg", C, 3, stride, 1, affine=affine),
    "max_pool_3x3": lambda C, stride, affine: PoolBN("max", C, 3, stride, 1, affine=affine),
    "skip_connect": lambda C, stride, affine: Identity() if stride == 1 else FactorizedReduce(C, C, affine),
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine=affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine=affine),
    "sep_conv_7x7": lambda C, stride, affine: SepConv(C, C, 7, stride, 3, affine=affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine=affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine=affine),
    "conv_7x1_1x7": lambda C, stride, affine: nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(C, C, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
        nn.Conv2d(C, C, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
        nn.BatchNorm2d(C, affine=affine)),
    "noise": lambda C, stride, affine: NoiseOp(stride),
}


def build_op(name: str, C: int, stride: int, affine: bool = True) -> nn.Module:
    """A DARTS op by name; unknown names raise ValueError with the choices."""
    try:
        factory = OPS[name]
    except KeyError:
        raise ValueError(f"unknown op {name!r}; allowed: {', '.join(OPS)}") from None
    return factory(C, stride, affine)


# ----------------------------------------------------------------------------- NAS-Bench-201


class ReLUConvBN(nn.Sequential):
    """NAS-Bench-201's ReLU - Conv - BN (conv bias only when BN is not affine)."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, dilation: int = 1,
                 affine: bool = True, track_running_stats: bool = True):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(C_in, C_out, kernel_size, stride, padding, dilation=dilation, bias=not affine),
                         nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats))


class NB201Pool(nn.Module):
    """NAS-Bench-201's POOLING: optional 1x1 ReLUConvBN when channels change, then 3x3 avg pool."""

    def __init__(self, C_in: int, C_out: int, stride: int, affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        self.preprocess = None if C_in == C_out else ReLUConvBN(C_in, C_out, 1, 1, 0, 1, affine, track_running_stats)
        self.op = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(self.preprocess(x) if self.preprocess is not None else x)


class NB201FactorizedReduce(nn.Module):
    """NAS-Bench-201's skip with stride 2 or a channel change."""

    def __init__(self, C_in: int, C_out: int, stride: int, affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        self.stride = stride
        self.relu = nn.ReLU(inplace=False)
        if stride == 2:
            c_outs = [C_out // 2, C_out - C_out // 2]
            self.convs = nn.ModuleList(nn.Conv2d(C_in, c, 1, stride=2, padding=0, bias=not affine) for c in c_outs)
            self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0)
        else:
            self.conv = nn.Conv2d(C_in, C_out, 1, stride=1, padding=0, bias=not affine)
        self.bn = nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            x = self.relu(x)
            y = self.pad(x)
            out = torch.cat([self.convs[0](x), self.convs[1](y[:, :, 1:, 1:])], dim=1)
        else:
            out = self.conv(x)
        return self.bn(out)


NB201OpFactory = Callable[[int, int, int, bool, bool], nn.Module]

NB201_OPS: dict[str, NB201OpFactory] = {
    "none": lambda C_in, C_out, stride, affine, track: Zero(stride, C_out),
    "avg_pool_3x3": lambda C_in, C_out, stride, affine, track: NB201Pool(C_in, C_out, stride, affine, track),
    "nor_conv_3x3": lambda C_in, C_out, stride, affine, track: ReLUConvBN(C_in, C_out, 3, stride, 1, 1, affine,
                                                                            track),
    "nor_conv_1x1": lambda C_in, C_out, stride, affine, track: ReLUConvBN(C_in, C_out, 1, stride, 0, 1, affine,
                                                                            track),
    "skip_connect": lambda C_in, C_out, stride, affine, track: Identity() if stride == 1 and C_in == C_out
    else NB201FactorizedReduce(C_in, C_out, stride, affine, track),
}


def build_nb201_op(name: str, C_in: int, C_out: int, stride: int = 1, affine: bool = True,
                   track_running_stats: bool = True) -> nn.Module:
    """A NAS-Bench-201 op by name; unknown names raise ValueError with the choices."""
    try:
        factory = NB201_OPS[name]
    except KeyError:
        raise ValueError(f"unknown NAS-Bench-201 op {name!r}; allowed: {', '.join(NB201_OPS)}") from None
    return factory(C_in, C_out, stride, affine, track_running_stats)
