"""Each zero-shot measure on tiny networks, against a closed form or a second, independent computation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nas.checkpoint import save_checkpoint
from nas.data import ImageData
from nas.estimators import Score
from nas.estimators import zeroshot as zs
from nas.estimators.oneshot import OneShotEstimator, subnet_weights
from nas.supernet.search import SearchConfig, build_search_model


def _linear(seed: int = 0, d_in: int = 5, n_out: int = 3, bias: bool = True) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(d_in, n_out, bias=bias)


def _batch(n: int = 6, d: int = 5, n_cls: int = 3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, n_cls, (n,), generator=g)


def _softmax_grad(lin: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed form of mean cross-entropy's gradients: dL/dz = (softmax(z) - onehot(y)) / N, dL/dW = dz^T x."""
    with torch.no_grad():
        z = lin(x)
        dz = (torch.softmax(z, 1) - F.one_hot(y, z.shape[1]).float()) / x.shape[0]
        return z, dz


def test_grad_norm_and_snip_closed_form_on_linear_softmax():
    lin = _linear()
    x, y = _batch()
    _, dz = _softmax_grad(lin, x, y)
    gw = dz.t() @ x
    assert zs.grad_norm(lin, x, y) == pytest.approx(float(gw.norm()), rel=1e-5)
    assert zs.snip(lin, x, y) == pytest.approx(float((lin.weight.detach() * gw).abs().sum()), rel=1e-5)
    assert lin.weight.grad is None  # measured on a copy


def test_grad_norm_sums_per_layer_norms_like_manual_autograd():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    x, y = _batch()
    ws = [net[0].weight, net[2].weight]
    grads = torch.autograd.grad(F.cross_entropy(net(x), y), ws)
    assert zs.grad_norm(net, x, y) == pytest.approx(sum(float(g.norm()) for g in grads), rel=1e-5)


def test_grasp_equals_minus_w_hessian_g_from_explicit_hessian():
    lin = _linear(bias=False)
    x, y = _batch()
    w0 = lin.weight.detach().clone()

    def loss_of(w_flat: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(x @ w_flat.view_as(w0).t(), y)

    w = w0.flatten()
    H = torch.autograd.functional.hessian(loss_of, w)  # explicit 15 x 15 Hessian
    g = torch.autograd.functional.jacobian(loss_of, w)
    expect = float(-(w * (H @ g)).sum())
    assert zs.grasp(lin, x, y) == pytest.approx(expect, rel=1e-4, abs=1e-9)


def test_fisher_closed_form_on_linear_layer():
    lin = _linear()
    x, y = _batch()
    z, dz = _softmax_grad(lin, x, y)
    per_channel = 0.5 * (z * dz).pow(2).mean(0)
    # zero-cost-nas broadcasts a channel's value over weight.shape[1:] = (in_features,)
    expect = float(per_channel.sum()) * lin.in_features
    assert zs.fisher(lin, x, y) == pytest.approx(expect, rel=1e-5)


def test_synflow_is_layers_times_path_norm_for_linear_net_with_bn_removed():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3, bias=False), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        net[1].weight.fill_(-7.0)  # BN must be switched off, or this would change the answer
    a1, a2 = net[0].weight.detach().abs().double(), net[3].weight.detach().abs().double()
    # R = 1^T |W2| |W1| 1; every layer of a bias-free linear chain carries all of R (synaptic flow is
    # conserved, Tanaka et al. 2020), so the sum over 2 layers is 2R
    R = float(torch.ones(2, dtype=torch.float64) @ a2 @ a1 @ torch.ones(4, dtype=torch.float64))
    x = torch.randn(3, 4)
    assert zs.synflow(net, x) == pytest.approx(2 * R, rel=1e-10)
    assert net[0].weight.dtype == torch.float32 and (net[0].weight < 0).any()  # original untouched


def test_jacob_cov_matches_per_sample_jacobians_and_eig():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    x, _ = _batch(n=4)
    rows = []
    for i in range(x.shape[0]):  # one sample at a time: no batch interaction in this net
        xi = x[i:i + 1].clone().requires_grad_(True)
        net(xi).sum().backward()
        rows.append(xi.grad.flatten().numpy().astype(np.float64))
    corr = np.corrcoef(np.stack(rows))
    v = np.linalg.eig(corr)[0].real
    expect = -np.sum(np.log(v + 1e-5) + 1.0 / (v + 1e-5))
    assert zs.jacob_cov(net, x) == pytest.approx(float(expect), rel=1e-6)


def test_jacob_cov_closed_form_on_linear_net():
    lin = _linear(bias=False)
    x, _ = _batch(n=4)
    # every sample has the same Jacobian 1^T W: the correlation matrix is all ones, eigenvalues (4, 0, 0, 0)
    k = 1e-5
    expect = -(math.log(4 + k) + 1 / (4 + k) + 3 * (math.log(k) + 1 / k))
    assert zs.jacob_cov(lin, x) == pytest.approx(expect, rel=1e-6)


def test_relu_logdet_matches_hamming_kernel_by_hand():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    x, _ = _batch(n=5)
    with torch.no_grad():
        h1 = net[0](x)
        h2 = net[2](torch.relu(h1))
    codes = torch.cat([h1 > 0, h2 > 0], 1).numpy()
    n_units = codes.shape[1]
    K = np.array([[n_units - np.sum(codes[i] != codes[j]) for j in range(5)] for i in range(5)], dtype=float)
    assert zs.relu_logdet(net, x) == pytest.approx(float(np.linalg.slogdet(K)[1]), rel=1e-9)


def test_params_and_flops_by_hand():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=2, bias=False),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    x = torch.randn(2, 3, 8, 8)
    assert zs.params(net) == (3 * 4 * 9 + 4) + (4 + 4) + (4 * 2 * 9) + (4 * 10 + 10)
    # conv1: 8*8*4 outputs x 3*9 MACs; conv2 (groups 2): 4*4*4 outputs x 2*9; linear 4*10
    assert zs.flops(net, x) == 8 * 8 * 4 * 27 + 4 * 4 * 4 * 18 + 40


def test_compute_measures_on_conv_net_all_finite_and_unknown_name():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 10, (8,))
    before = [p.detach().clone() for p in net.parameters()]
    out = zs.compute_measures(net, x, y)
    assert set(out) == set(zs.MEASURES)
    assert all(math.isfinite(v) for v in out.values())
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    with pytest.raises(ValueError, match="allowed"):
        zs.compute_measures(net, x, y, ["synflow", "nope"])


def test_zero_shot_estimator_on_nb201_network():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (16,), generator=g)
    data = ImageData(name="tiny", train_x=x, train_y=y, valid_x=x, valid_y=y, n_classes=10,
                     mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    cfg = zs.NetConfig("nb201", n_classes=10, input_size=8, C=4, layers=1)
    arch = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    est = zs.ZeroShotEstimator("synflow", "nb201", data, "cpu", seeds=[1, 2], batch_size=8, net_config=cfg)
    s1, s2 = est.score(arch), est.score(arch)
    assert isinstance(s1, Score)
    assert s1.value > 0 and s1.value == pytest.approx(s2.value)  # seeded: repeatable
    assert s1.cost_seconds >= 0 and s1.extras["measure"] == "synflow"


def test_shared_passes_equal_separate_measures():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 10, (8,))
    secs: dict[str, float] = {}
    shared = zs.compute_measures(net, x, y, seconds=secs)
    alone = zs.compute_measures(net, x, y, shared=False)
    for n in zs.MEASURES:
        assert shared[n] == pytest.approx(alone[n], rel=1e-5), n
    assert "grad_norm+snip+grasp+fisher" in secs and "jacob_cov+relu_logdet" in secs


class _IgnoresInput(nn.Module):
    """Output independent of the input (an NB201 cell cut off by 'none' edges)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        return self.fc(torch.ones(x.shape[0], 2)), None


def test_jacob_cov_is_nan_when_output_ignores_input():
    x = torch.randn(4, 5)
    assert math.isnan(zs.jacob_cov(_IgnoresInput(), x))
    assert math.isnan(zs.compute_measures(_IgnoresInput(), x, torch.zeros(4, dtype=torch.long), ["jacob_cov"])[
        "jacob_cov"])


def test_oneshot_estimator_on_tiny_nb201_supernet(tmp_path):
    cfg = SearchConfig(space="nb201", init_channels=4, layers=1, seed=0)
    model = build_search_model(cfg, 10, 3, torch.device("cpu"))
    save_checkpoint(tmp_path / "checkpoint.pt", {"epoch": 1, "config": dataclasses.asdict(cfg),
                                                 "model": model.state_dict()})
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (24, 3, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (24,), generator=g)
    data = ImageData(name="tiny", train_x=x, train_y=y, valid_x=x, valid_y=y, n_classes=10,
                     mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    est = OneShotEstimator(str(tmp_path), data, "cpu", batch_size=8)
    arch = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    w = subnet_weights(est.model, arch)["cell"]
    ops = est.model.edge_ops["cell"]
    assert w.sum() == 6 and all(ops[e][int(w[e].argmax())] == op for e, op in
                                enumerate(["nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none", "avg_pool_3x3",
                                           "nor_conv_3x3"]))
    s = est.score(arch)
    assert 0.0 <= s.value <= 100.0 and s.extras["n"] == 24
    # second computation: count correct predictions of the same forward by hand, one batch of all 24
    est2 = OneShotEstimator(str(tmp_path), data, "cpu", batch_size=24)
    masks = {"cell": w > 0}
    est2.model.train()
    with torch.no_grad():
        xb, yb = next(iter(est2.loader))
        acc = 100.0 * float((est2.model(xb, masks, {"cell": w}).argmax(1) == yb).float().mean())
    assert est2.score(arch).value == pytest.approx(acc)


def _is_tensor(o: object) -> bool:
    try:
        return isinstance(o, torch.Tensor)
    except ReferenceError:  # a dead weakref.proxy among gc's objects (numba's, once ffcv is installed)
        return False


def test_score_all_memory_stays_flat_over_many_cells(tmp_path, one_thread):
    """Scoring all of NB201 must not grow: networks, hooks and graphs are freed cell by cell."""
    import gc
    import random

    from nas.data import ImageData
    from nas.estimators.scoring import ProxyScorer, ScoreTable, score_all
    from nas.spaces import get_space

    g = torch.Generator().manual_seed(0)
    data = ImageData("syn", torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8, generator=g),
                     torch.randint(0, 10, (32,), generator=g), torch.zeros(0, 3, 8, 8, dtype=torch.uint8),
                     torch.zeros(0, dtype=torch.long), 10, (0.5,) * 3, (0.25,) * 3)
    cfg = zs.default_net_config("nb201", n_classes=10, input_size=8)
    cfg.C, cfg.layers = 4, 1
    scorer = ProxyScorer(list(zs.MEASURES), cfg, zs.BatchSource(data, batch_size=8), [1], torch.device("cpu"))
    space = get_space("nb201")
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(36)]

    def live_tensors() -> int:
        import warnings

        gc.collect()
        with warnings.catch_warnings():  # isinstance on torch.distributed's deprecated reduce_op warns
            warnings.simplefilter("ignore")
            return sum(1 for o in gc.get_objects() if _is_tensor(o))

    with ScoreTable(tmp_path / "s.csv", arch_column="arch_str", columns=list(zs.MEASURES), settings={}) as table:
        score_all(archs[:6], space, table, proxies=scorer)  # warm: caches, the batch per seed
        before = live_tensors()
        n = score_all(archs[6:], space, table, proxies=scorer)
        after = live_tensors()
    assert n == len(set(archs[6:]) - set(archs[:6]))
    assert after <= before + 2, f"{after - before} tensors more after {n} cells"
