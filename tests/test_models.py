"""Ops at stride 1 and 2, networks at several sizes, golden parameter counts of published cells."""

from __future__ import annotations

import pytest
import torch

import genotypes as gt
from models.networks import DartsNetwork, NB201Network, build_network, count_flops, count_params
from models.ops import NB201_OPS, OPS, build_nb201_op, build_op


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("stride", [1, 2])
def test_darts_op_shapes(name, stride):
    op = build_op(name, 8, stride)
    out = op(torch.randn(2, 8, 8, 8))
    assert out.shape == (2, 8, 8 // stride, 8 // stride)


@pytest.mark.parametrize("name", sorted(NB201_OPS))
@pytest.mark.parametrize("stride", [1, 2])
def test_nb201_op_shapes(name, stride):
    out = build_nb201_op(name, 8, 8, stride)(torch.randn(2, 8, 8, 8))
    assert out.shape == (2, 8, 8 // stride, 8 // stride)


def test_unknown_op_lists_choices():
    with pytest.raises(ValueError, match="allowed: .*sep_conv_3x3"):
        build_op("conv_9x9", 8, 1)


def test_darts_v2_golden_parameter_count():
    # DARTS (Liu et al. 2019) reports 3.3M parameters for DARTS_V2 at 36 channels, 20 layers (no aux head); its
    # train.py logs 3.349342M. pt.darts (and so BPE) adds an affine BatchNorm after each pool: 2,160 more here.
    net = DartsNetwork(gt.NAMED_GENOTYPES["DARTS_V2"], C=36, n_classes=10, layers=20, input_size=32, auxiliary=True)
    n = count_params(net)
    assert n == 3_349_342 + 2_160
    assert 3.3e6 <= n < 3.4e6
    assert count_params(net, exclude_aux=False) > n


def test_nb201_golden_parameter_counts():
    # NAS-Bench-201 reports 1.531546M (all nor_conv_3x3) and 0.073306M (no convolution), C=16, N=5, 10 classes
    assert count_params(NB201Network(gt.nb201_from_ops(["nor_conv_3x3"] * 6))) == 1_531_546
    assert count_params(NB201Network(gt.nb201_from_ops(["skip_connect"] * 6))) == 73_306
    assert count_params(NB201Network(gt.nb201_from_ops(["none", "avg_pool_3x3"] * 3))) == 73_306


@pytest.mark.parametrize("size, layers", [(16, 6), (32, 8), (12, 3)])
def test_darts_network_any_size_forward_backward(size, layers):
    g = gt.NAMED_GENOTYPES["DARTS_V1"]
    net = build_network(g, space_kind="darts", C=8, layers=layers, n_classes=5, input_size=size, auxiliary=True,
                        drop_path_prob=0.2)
    net.train()
    logits, aux = net(torch.randn(3, 3, size, size))
    assert logits.shape == (3, 5) and aux.shape == (3, 5)
    (logits.sum() + aux.sum()).backward()
    net.eval()
    logits, aux = net(torch.randn(3, 3, size, size))
    assert aux is None
    assert count_flops(net, (3, size, size)) > 0


def test_nb201_network_forward_backward():
    net = NB201Network("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|",
                       C=8, N=1, n_classes=4)
    logits, aux = net(torch.randn(2, 3, 16, 16))
    assert logits.shape == (2, 4) and aux is None
    logits.sum().backward()


def test_drop_path_only_in_training():
    from models.ops import DropPath

    dp = DropPath(0.5)
    x = torch.ones(64, 1, 2, 2)
    dp.train()
    y = dp(x)
    assert set(y.unique().tolist()) <= {0.0, 2.0} and 0 < (y == 0).sum() < y.numel()
    dp.eval()
    assert torch.equal(dp(x), x)
