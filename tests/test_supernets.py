"""Supernets (models/supernets.py): shapes, masking == building without the op, projection state."""

from __future__ import annotations

import pytest
import torch

from genotypes import NB201_OPS, parse_nb201
from models.supernets import DartsSupernet, NB201Supernet
from nas.spaces import get_space
from nas.supernet.search import build_supernet


def _copy_without(src: torch.nn.Module, dst: torch.nn.Module, edge: int, op: int, cell_filter) -> None:
    """Copy src's state into dst, whose edge ``edge`` lacks candidate ``op`` in cells passing cell_filter."""
    sd = src.state_dict()
    out = {}
    for name in dst.state_dict():
        parts = name.split(".")
        src_name = name
        if parts[0] == "cells" and "edges" in parts:
            i = parts.index("edges")
            cell = src.cells[int(parts[1])]
            if cell_filter(cell) and int(parts[i + 1]) == edge and parts[i + 2] == "ops" and int(parts[i + 3]) >= op:
                parts[i + 3] = str(int(parts[i + 3]) + 1)
                src_name = ".".join(parts)
        out[name] = sd[src_name]
    dst.load_state_dict(out)


@pytest.mark.parametrize("space", ["nb201", "s1", "s2", "s3", "s4", "s5"])
def test_forward_backward_two_cells_and_genotype(space):
    torch.manual_seed(0)
    net = build_supernet(space, C=4, layers=1 if space == "nb201" else 3, n_classes=5)
    x = torch.randn(2, 3, 8, 8)
    out = net(x)
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in net.alphas())
    g = net.genotype()
    sp = get_space(space)
    sp.encode(g)  # raises if the argmax cell is not in the space


def test_masking_darts_op_equals_supernet_built_without_it():
    torch.manual_seed(0)
    edge_ops = {ct: [list(o) for o in get_space("s3").supernet_ops[ct]] for ct in ("normal", "reduce")}
    full = DartsSupernet(edge_ops, C=4, layers=3, n_classes=5)
    with torch.no_grad():
        for a in full.alphas():
            a.normal_()
    e, k = 3, 2  # drop sep_conv_3x3 from normal edge 3
    smaller = {ct: [list(o) for o in ops] for ct, ops in edge_ops.items()}
    del smaller["normal"][e][k]
    other = DartsSupernet(smaller, C=4, layers=3, n_classes=5)
    _copy_without(full, other, e, k, lambda c: not c.reduction)
    x = torch.randn(3, 3, 8, 8)
    masks = full.full_masks()
    masks["normal"][e, k] = False
    with torch.no_grad():
        w = {ct: full.softmax(ct) for ct in full.cell_types}
        row = torch.cat([w["normal"][e, :k], w["normal"][e, k + 1:], w["normal"].new_zeros(1)])
        w_other = {"normal": w["normal"].clone(), "reduce": w["reduce"]}
        w_other["normal"][e] = row
        y_masked = full(x, masks)
        y_other = other(x, weights=w_other)
        y_unmasked = full(x)
    assert torch.allclose(y_masked, y_other, atol=1e-6)
    assert not torch.allclose(y_masked, y_unmasked, atol=1e-4)  # the mask did change something


def test_masking_nb201_op_equals_supernet_built_without_it():
    torch.manual_seed(1)
    full = NB201Supernet(C=4, N=1, n_classes=5)
    with torch.no_grad():
        full.alpha_cell.normal_()
    e, k = 2, NB201_OPS.index("nor_conv_3x3")
    ops = [list(NB201_OPS) for _ in range(6)]
    del ops[e][k]
    other = NB201Supernet(ops, C=4, N=1, n_classes=5)
    _copy_without(full, other, e, k, lambda c: hasattr(c, "max_nodes"))
    x = torch.randn(3, 3, 8, 8)
    masks = full.full_masks()
    masks["cell"][e, k] = False
    with torch.no_grad():
        w = full.softmax("cell").clone()
        w2 = w.clone()
        w2[e] = torch.cat([w[e, :k], w[e, k + 1:], w.new_zeros(1)])
        assert torch.allclose(full(x, masks), other(x, weights={"cell": w2}), atol=1e-6)


def test_masking_none_is_a_no_op_and_projection_is_one_hot():
    torch.manual_seed(2)
    net = NB201Supernet(C=4, N=1, n_classes=5).eval()
    x = torch.randn(2, 3, 8, 8)
    masks = net.full_masks()
    masks["cell"][:, NB201_OPS.index("none")] = False
    with torch.no_grad():
        assert torch.allclose(net(x), net(x, masks), atol=1e-6)
    net.project_op("cell", 0, NB201_OPS.index("skip_connect"))
    w = net.projected_weights("cell")
    expected = [1.0 if op == "skip_connect" else 0.0 for op in NB201_OPS]
    assert w[0].tolist() == expected
    assert parse_nb201(net.genotype())[0][0][0] == "skip_connect"
    # projection state survives a state_dict round trip
    again = NB201Supernet(C=4, N=1, n_classes=5)
    again.load_state_dict(net.state_dict())
    assert again.undecided_edges("cell") == [1, 2, 3, 4, 5]
    with torch.no_grad():
        assert torch.allclose(again.eval()(x), net(x), atol=1e-6)


def test_dropping_edges_changes_darts_genotype_inputs():
    torch.manual_seed(3)
    net = build_supernet("s2", C=4, layers=3, n_classes=5)
    node = 1  # edges 2, 3, 4 feed node 1 (inputs 0, 1, 2)
    net.project_edges("normal", [net.node_edges[node][0]])  # drop input 0
    g = net.genotype()
    assert sorted(src for _, src in g.normal[node]) == [1, 2]


def test_bad_sizes_are_value_errors():
    with pytest.raises(ValueError):
        build_supernet("s9", C=4, layers=3, n_classes=5)
    with pytest.raises(ValueError):
        build_supernet("s5", C=4, layers=2, n_classes=5)
