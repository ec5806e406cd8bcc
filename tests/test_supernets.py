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
    with pytest.raises(ValueError, match="unknown space 's9'"):
        build_supernet("s9", C=4, layers=3, n_classes=5)
    with pytest.raises(ValueError, match="at least 3 layers"):
        build_supernet("s5", C=4, layers=2, n_classes=5)


def _reference_forward(net, x):
    """The supernet's function computed the plain way: every active op on its own input, its own ReLU
    included, weighted and summed edge by edge (what models/supernets.py computed before sharing ReLUs)."""
    import torch.nn.functional as F

    def edge(e_mod, h, w, active):
        out = None
        for k in active:
            op = e_mod.ops[k]
            # the op as built (a 3x3 avg pool by torch's own kernel instead of the box sum)
            y = F.avg_pool2d(h, 3, 1, 1, count_include_pad=False) if type(op).__name__ == "BoxAvgPool3x3" \
                else _pool_swapped_call(op, h)
            out = y * w[k] if out is None else out + y * w[k]
        return out

    if net.kind == "nb201":
        w, active = net.arch_weights("cell")
        h = net.stem(x)
        for cell in net.cells:
            if not hasattr(cell, "max_nodes"):
                h = cell(h)
                continue
            nodes, e = [h], 0
            for i in range(1, cell.max_nodes):
                acc = None
                for j in range(i):
                    y = edge(cell.edges[e], nodes[j], w[e], active[e])
                    e += 1
                    if y is not None:
                        acc = y if acc is None else acc + y
                nodes.append(acc)
            h = nodes[-1]
        return net.classifier(torch.flatten(net.gap(net.lastact(h)), 1))
    wa = {ct: net.arch_weights(ct) for ct in net.cell_types}
    s0 = s1 = net.stem(x)
    for cell in net.cells:
        w, active = wa["reduce" if cell.reduction else "normal"]
        states, e = [cell.preproc0(s0), cell.preproc1(s1)], 0
        for _ in range(cell.n_nodes):
            acc = None
            for h in states:
                y = edge(cell.edges[e], h, w[e], active[e])
                e += 1
                if y is not None:
                    acc = y if acc is None else acc + y
            states.append(acc)
        s0, s1 = s1, torch.cat(states[-cell.multiplier:], dim=1)
    return net.classifier(torch.flatten(net.gap(s1), 1))


def _pool_swapped_call(op, h):
    """``op(h)`` with any BoxAvgPool3x3 inside replaced by torch's avg_pool2d (the reference pool)."""
    import torch.nn.functional as F

    if type(op).__name__ == "BoxAvgPool3x3":
        return F.avg_pool2d(h, 3, 1, 1, count_include_pad=False)
    if isinstance(op, torch.nn.Sequential):
        for m in op:
            h = _pool_swapped_call(m, h)
        return h
    if hasattr(op, "op") and hasattr(op, "preprocess"):  # NB201Pool
        h = op.preprocess(h) if op.preprocess is not None else h
        return _pool_swapped_call(op.op, h)
    return op(h)


@pytest.mark.parametrize("space", ["nb201", "s2", "s5", "darts"])
def test_shared_relu_forward_equals_plain_computation(space, one_thread):
    torch.manual_seed(0)
    net = build_supernet(space, C=4, layers=2 if space == "nb201" else 4, n_classes=5)
    with torch.no_grad():
        for a in net.alphas():
            a.normal_()
    x = torch.randn(4, 3, 8, 8)
    out = net(x)
    params = list(net.parameters())
    g_new = torch.autograd.grad(out.square().sum(), params, allow_unused=True)
    torch.manual_seed(0)
    ref_net = build_supernet(space, C=4, layers=2 if space == "nb201" else 4, n_classes=5)
    ref_net.load_state_dict(net.state_dict())
    ref = _reference_forward(ref_net, x)
    g_ref = torch.autograd.grad(ref.square().sum(), list(ref_net.parameters()), allow_unused=True)
    # forward to 1e-6 (the box-sum pool differs from torch's by float rounding only)
    assert torch.allclose(out, ref, rtol=1e-6, atol=1e-6), (out - ref).abs().max()
    scale = max(float(g.abs().max()) for g in g_ref if g is not None)
    for gn, gr in zip(g_new, g_ref):
        assert (gn is None) == (gr is None)
        if gn is not None:
            assert float((gn - gr).abs().max()) <= 1e-5 * scale


def test_graph_cache_counts_evicts_and_is_never_copied():
    import copy
    import pickle

    from models.graphed import _GraphCache

    c = _GraphCache(size=2, after=3)
    assert [c.count("a") for _ in range(3)] == [False, False, True]  # captured on the 3rd use only
    c.put("a", 1)
    c.put("b", 2)
    c.put("c", 3)
    assert c.get("a") is None and c.get("c") == 3  # the oldest went
    net = build_supernet("nb201", C=4, layers=1, n_classes=5)
    net.__dict__["_graph_cache"] = c
    assert copy.deepcopy(net).__dict__["_graph_cache"].graphs == {}  # DARTS' unrolled copy starts empty
    assert pickle.loads(pickle.dumps(c)).graphs == {}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("space", ["nb201", "s5"])
def test_cuda_graphed_supernet_steps_equal_eager(space):
    from models.supernets import Supernet

    def run(graphs: bool):
        torch.manual_seed(0)
        net = build_supernet(space, C=8, layers=2 if space == "nb201" else 5, n_classes=10).cuda()
        opt = torch.optim.SGD(net.weights(), lr=0.05, momentum=0.9)
        aopt = torch.optim.Adam(net.alphas(), lr=3e-3)
        g = torch.Generator(device="cuda").manual_seed(1)
        losses = []
        Supernet.cuda_graphs = graphs
        try:
            for _ in range(6):
                x = torch.randn(16, 3, 16, 16, device="cuda", generator=g)
                y = torch.randint(0, 10, (16,), device="cuda", generator=g)
                ga = torch.autograd.grad(torch.nn.functional.cross_entropy(net(x), y), net.alphas())
                for a, gr in zip(net.alphas(), ga):
                    a.grad = gr
                aopt.step()
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(net(x), y)
                loss.backward()
                opt.step()
                losses.append(float(loss))
        finally:
            Supernet.cuda_graphs = False
        return losses, [p.detach().clone() for p in net.parameters()], [b.clone() for b in net.buffers()]

    torch.backends.cudnn.deterministic = True
    l0, p0, b0 = run(False)
    l1, p1, b1 = run(True)
    assert l1 == pytest.approx(l0, rel=1e-5, abs=1e-5)
    for a, b in zip(p0 + b0, p1 + b1):
        assert torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-5)


def test_projected_darts_genotype_is_the_same_ranked_by_alphas_or_weights():
    """BPE-protocol runs parse by raw alphas (rank_by="alphas"); a projected cell must still read its decisions."""
    torch.manual_seed(4)
    net = build_supernet("darts", C=4, layers=3, n_classes=5)
    sep = net.edge_ops["normal"][0].index("sep_conv_3x3")
    with torch.no_grad():
        net.alpha("normal").normal_()
    for e in range(net.n_edges):
        net.project_op("normal", e, sep)
    for k in range(net.n_nodes):  # keep inputs 0 and 1 of every node
        net.project_edges("normal", net.node_edges[k][2:])
    for g in (net.genotype(rank_by="alphas"), net.genotype(rank_by="weights")):
        assert [[op for op, _ in node] for node in g.normal] == [["sep_conv_3x3"] * 2] * net.n_nodes
        assert [sorted(src for _, src in node) for node in g.normal] == [[0, 1]] * net.n_nodes
