"""Zero-shot (zero-cost) estimators: scores of an untrained network from one batch or none.

Each measure follows its reference implementation:
- grad_norm, snip, grasp, fisher, jacob_cov, synflow: Abdelfattah et al., "Zero-Cost Proxies for
  Lightweight NAS" (ICLR 2021), code ``SamsungLabs/zero-cost-nas`` ``foresight/pruners/measures/*.py``
  (per-layer arrays over every Conv2d / Linear weight, summed as in ``predictive.find_measures``);
- relu_logdet: Mellor et al., "Neural Architecture Search without Training" (ICML 2021, NASWOT):
  log-determinant of the summed Hamming kernel of the ReLU activation codes;
- params and flops (``models.networks.count_params`` / ``count_flops``: multiply-adds for one image).

Every measure works on its own deep copy of the network (``get_prunable_copy`` there), in train
mode as a freshly built network is, so batch norm uses the batch statistics. Higher = better for all.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from models.networks import build_network, count_flops, count_params
from nas.data import TensorLoader, load_dataset
from nas.device import resolve_device
from nas.estimators.base import Score

MEASURES: tuple[str, ...] = ("grad_norm", "snip", "grasp", "fisher", "jacob_cov", "synflow", "relu_logdet",
                             "params", "flops")
# published NAS-Bench-201 CIFAR-10 Spearman over all cells (Abdelfattah et al. 2021, table 2)
PUBLISHED_NB201_CIFAR10 = {"synflow": 0.74, "jacob_cov": 0.73, "snip": 0.60, "grad_norm": 0.59, "grasp": 0.51,
                           "fisher": 0.36}

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def logits_of(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The logits of a forward pass (the toolkit's networks return ``(logits, aux)``)."""
    out = model(x)
    return out[0] if isinstance(out, (tuple, list)) else out


def prunable_layers(model: nn.Module) -> list[nn.Module]:
    """The Conv2d and Linear layers, the only ones the zero-cost measures score (``get_layer_metric_array``)."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _copy(model: nn.Module) -> nn.Module:
    """A private train-mode copy, so a measure's gradients and changed weights never leak out."""
    net = copy.deepcopy(model)
    net.train()
    net.zero_grad(set_to_none=True)
    return net


def _sum_weights(layers: Sequence[nn.Module], fn: Callable[[nn.Module], torch.Tensor]) -> float:
    """Sum of a per-weight metric over layers; a layer without gradient adds 0 (as ``zeros_like`` there).

    Summed in float64 on the layers' device and read once (one host sync per measure, not per layer)."""
    total = None
    for layer in layers:
        if layer.weight.grad is not None:
            t = fn(layer).detach().double().sum()
            total = t if total is None else total + t
    return 0.0 if total is None else float(total)


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable = F.cross_entropy) -> float:
    """Sum over layers of the L2 norm of the loss gradient w.r.t. the layer weight (measures/grad_norm.py)."""
    return _loss_grad_pass(model, x, y, ["grad_norm"], loss_fn)["grad_norm"]


def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable = F.cross_entropy) -> float:
    """SNIP saliency sum |dL/dmask| at mask = 1, i.e. sum |w * dL/dw| (measures/snip.py, Lee et al. 2019)."""
    return _loss_grad_pass(model, x, y, ["snip"], loss_fn)["snip"]


def grasp(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable = F.cross_entropy) -> float:
    """GraSP: sum of -w * (H g) with g the loss gradient and H the Hessian (measures/grasp.py, Wang et al. 2020)."""
    return _loss_grad_pass(model, x, y, ["grasp"], loss_fn)["grasp"]


def fisher(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable = F.cross_entropy) -> float:
    """Fisher channel saliency (Theis et al. 2018) as zero-cost-nas measures/fisher.py sums it (see _fisher_hooks)."""
    return _loss_grad_pass(model, x, y, ["fisher"], loss_fn)["fisher"]


def jacob_cov(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """Score of the correlations of input Jacobians (Mellor et al. v1; measures/jacob_cov.py); NaN on failure."""
    return _input_pass(model, x, ["jacob_cov"])["jacob_cov"]


def relu_logdet(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """NASWOT score: log|K_H| with K_H summed over ReLUs of N_A - hamming(c_i, c_j) (Mellor et al. 2021)."""
    return _input_pass(model, x, ["relu_logdet"])["relu_logdet"]


@torch.no_grad()
def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """SynFlow (Tanaka et al. 2020) as measures/synflow.py: |weights|, BN off, float64, all-ones input.

    Returns sum |w * d(sum of outputs)/dw| over conv and linear weights; data-free (only x's shape is used).
    """
    net = _copy(model)
    # measure('synflow', bn=False): batch norm layers become the identity
    _remove_batchnorm(net)
    for t in net.state_dict().values():  # linearize: every parameter and buffer by its absolute value
        t.abs_()
    net.double()
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    with torch.enable_grad():
        logits_of(net, ones).sum().backward()
    return _sum_weights(prunable_layers(net), lambda m: (m.weight * m.weight.grad).abs())


def _remove_batchnorm(net: nn.Module) -> None:
    """Replace every batch-norm module by the identity (zero-cost-nas' ``copynet(bn=False)``)."""
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _BN):
                setattr(parent, name, nn.Identity())


def params(model: nn.Module, x: torch.Tensor | None = None, y: torch.Tensor | None = None) -> float:
    """Number of parameters (the auxiliary head excluded, as the networks count them)."""
    return float(count_params(model))


def flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """Multiply-adds of conv and linear layers for one input image (``models.networks.count_flops``)."""
    return float(count_flops(model, tuple(x.shape[1:])))


_FUNCS: dict[str, Callable[..., float]] = {
    "grad_norm": grad_norm, "snip": snip, "grasp": grasp, "fisher": fisher, "jacob_cov": jacob_cov,
    "synflow": synflow, "relu_logdet": relu_logdet, "params": params, "flops": flops,
}


def check_measures(names: Sequence[str]) -> list[str]:
    """Validate measure names, answering an unknown one with the allowed list."""
    out = []
    for n in names:
        if n not in _FUNCS:
            raise ValueError(f"unknown zero-shot measure {n!r}; allowed: {', '.join(MEASURES)}")
        out.append(n)
    return out


_LOSS_GRAD = ("grad_norm", "snip", "fisher", "grasp")  # share the loss gradient of one pass
_INPUT_PASS = ("jacob_cov", "relu_logdet")  # share one forward (+ backward to the input)


def _fisher_hooks(layers: Sequence[nn.Module], per_layer: dict[int, torch.Tensor]) -> list:
    """Forward hooks that add each layer's Fisher channel saliency to ``per_layer`` during backward."""
    def fwd_hook(layer: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        if not out.requires_grad:
            return
        act = out.detach()

        def grad_hook(grad: torch.Tensor) -> None:
            g_nk = (act * grad).sum(dim=tuple(range(2, act.dim()))) if act.dim() > 2 else act * grad
            del_k = g_nk.pow(2).mean(0).mul(0.5)
            key = id(layer)
            per_layer[key] = per_layer[key] + del_k if key in per_layer else del_k

        out.register_hook(grad_hook)

    return [layer.register_forward_hook(fwd_hook) for layer in layers]


def _loss_grad_pass(model: nn.Module, x: torch.Tensor, y: torch.Tensor, names: Sequence[str],
                      loss_fn: Callable) -> dict[str, float]:
    """grad_norm, snip, fisher from one forward/backward, and grasp reusing that pass as its first one.

    The one implementation of these four measures: asked for one name it is that measure alone (as
    zero-cost-nas computes it, on its own copy); asked for several, they share the pass and get the same
    numbers (each starts from the same weights and batch, and batch norm uses batch statistics).
    """
    net = _copy(model)
    layers = prunable_layers(net)
    per_layer: dict[int, torch.Tensor] = {}
    handles = _fisher_hooks(layers, per_layer) if "fisher" in names else []
    try:
        loss_fn(logits_of(net, x), y).backward()
    finally:
        for h in handles:
            h.remove()
    out: dict[str, float] = {}
    if "grad_norm" in names:
        out["grad_norm"] = _sum_weights(layers, lambda m: m.weight.grad.norm())
    if "snip" in names:
        out["snip"] = _sum_weights(layers, lambda m: (m.weight * m.weight.grad).abs())
    if "fisher" in names:
        parts = [per_layer[id(m)].abs().double().sum() * m.weight[0].numel() for m in layers if id(m) in per_layer]
        out["fisher"] = float(torch.stack(parts).sum()) if parts else 0.0  # one host sync
    if "grasp" in names:
        g = [m.weight.grad.detach().clone() if m.weight.grad is not None else None for m in layers]
        net.zero_grad(set_to_none=True)
        weights = [m.weight for m in layers]
        gf = torch.autograd.grad(loss_fn(logits_of(net, x), y), weights, create_graph=True, allow_unused=True)
        z = sum((gi * fi).sum() for gi, fi in zip(g, gf) if gi is not None and fi is not None)
        if torch.is_tensor(z):
            z.backward()
            out["grasp"] = _sum_weights(layers, lambda m: -m.weight * m.weight.grad)
        else:
            out["grasp"] = 0.0
    return out


def _input_pass(model: nn.Module, x: torch.Tensor, names: Sequence[str]) -> dict[str, float]:
    """jacob_cov and relu_logdet from one forward pass (NASWOT also reads its codes in the Jacobian's pass)."""
    net = _copy(model)
    n = x.shape[0]
    K = torch.zeros((n, n), dtype=torch.float64, device=x.device)  # on the device: read once at the end

    def hook(_m: nn.Module, inp: tuple, _out: torch.Tensor) -> None:
        nonlocal K
        code = (inp[0].detach().reshape(n, -1) > 0).double()
        K = K + (code @ code.t() + (1.0 - code) @ (1.0 - code).t())

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)] \
        if "relu_logdet" in names else []
    x = x.detach().clone().requires_grad_("jacob_cov" in names)
    try:
        with torch.set_grad_enabled("jacob_cov" in names):
            logits = logits_of(net, x)
    finally:
        for h in handles:
            h.remove()
    out: dict[str, float] = {}
    if "relu_logdet" in names:
        out["relu_logdet"] = float(np.linalg.slogdet(K.cpu().numpy())[1])
    if "jacob_cov" in names:
        logits.backward(torch.ones_like(logits))
        out["jacob_cov"] = _jacob_score(_input_grad(x))
    return out


def _input_grad(x: torch.Tensor) -> np.ndarray:
    """Per-sample input gradients as rows; zeros (-> NaN score) when the output ignores the input,
    as in an NB201 cell whose every path from the input is 'none'."""
    g = x.grad if x.grad is not None else torch.zeros_like(x)
    return g.detach().reshape(x.shape[0], -1).double().cpu().numpy()


def _jacob_score(jacob: np.ndarray) -> float:
    """jacob_cov's eval_score: -sum(log(v + k) + 1/(v + k)) over eigenvalues of the correlation matrix."""
    with np.errstate(all="ignore"):
        corrs = np.corrcoef(jacob)
    if not np.all(np.isfinite(corrs)):
        return float("nan")  # a constant Jacobian row: zero-cost-nas' eig raises there and it records NaN
    # corrcoef is symmetric, so eigvalsh gives the eigenvalues np.linalg.eig gives there, as real numbers
    v = np.linalg.eigvalsh(corrs)
    k = 1e-5
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


def compute_measures(model: nn.Module, x: torch.Tensor, y: torch.Tensor, names: Sequence[str] = MEASURES,
                     *, seconds: dict[str, float] | None = None, shared: bool = True,
                     loss_fn: Callable = F.cross_entropy) -> dict[str, float]:
    """Every named measure of ``model`` on the batch ``(x, y)``; adds wall time per group to ``seconds``.

    ``shared=True`` computes measures that need the same pass together (half the cost on CPU, equal numbers);
    ``shared=False`` runs each measure in a pass of its own, on its own copy, as zero-cost-nas does.
    """
    names = check_measures(names)
    groups: list[tuple[str, Callable[[], dict[str, float]]]] = []
    rest = list(names)
    if shared:
        lg = [n for n in names if n in _LOSS_GRAD]
        ip = [n for n in names if n in _INPUT_PASS]
        if lg:
            groups.append(("+".join(lg), lambda: _loss_grad_pass(model, x, y, lg, loss_fn)))
        if ip:
            groups.append(("+".join(ip), lambda: _input_pass(model, x, ip)))
        rest = [n for n in names if n not in _LOSS_GRAD and n not in _INPUT_PASS]
    for n in rest:
        groups.append((n, lambda n=n: {n: _FUNCS[n](model, x, y)}))
    out: dict[str, float] = {}
    for key, fn in groups:
        t0 = time.perf_counter()
        out.update(fn())
        if seconds is not None:
            seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - t0
    return {n: out[n] for n in names}


# ---------------------------------------------------------------------------------------------
# Building networks and batches: the benchmark's own network for each space


@dataclass
class NetConfig:
    """How a space's architectures become networks (NB201: C=16, N=5 as the benchmark trains them)."""

    space_kind: str  # 'nb201' | 'darts'
    n_classes: int = 10
    input_size: int = 32
    in_channels: int = 3
    C: int = 16
    layers: int = 5  # NB201: cells per stage N; DARTS: number of cells
    extra: dict = field(default_factory=dict)


def default_net_config(space_kind: str, *, n_classes: int, input_size: int, in_channels: int = 3) -> NetConfig:
    """NB201: C=16, N=5 (the benchmark); DARTS: C=32, 8 cells (NAS-Bench-301's training network)."""
    if space_kind == "nb201":
        return NetConfig("nb201", n_classes, input_size, in_channels, C=16, layers=5)
    if space_kind == "darts":
        return NetConfig("darts", n_classes, input_size, in_channels, C=32, layers=8)
    raise ValueError(f"unknown space kind {space_kind!r}; allowed: nb201, darts")


def build_net(arch: Any, cfg: NetConfig) -> nn.Module:
    """The network of ``arch`` (an NB201 string or a Genotype) as ``cfg`` says (no auxiliary head)."""
    return build_network(arch, space_kind=cfg.space_kind, C=cfg.C, layers=cfg.layers, n_classes=cfg.n_classes,
                         input_size=cfg.input_size, in_channels=cfg.in_channels)


class BatchSource:
    """One fixed training batch per seed (zero-cost-nas' ``get_some_data``: 1 random batch)."""

    def __init__(self, data: Any, *, batch_size: int, device: torch.device | str = "cpu"):
        self.data = data
        self.batch_size = batch_size
        self.device = torch.device(device)
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def get(self, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of ``seed``: shuffled deterministically, no augmentation."""
        if seed not in self._cache:
            d = self.data
            loader = TensorLoader(d.train_x, d.train_y, batch_size=self.batch_size, shuffle=True,
                                      augment=False, mean=d.mean, std=d.std, device=self.device, seed=seed)
            x, y = next(iter(loader))
            self._cache[seed] = (x, y)
        return self._cache[seed]


def score_architecture(arch: Any, *, cfg: NetConfig, batches: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
                       seeds: Sequence[int], names: Sequence[str] = MEASURES, device: torch.device | str = "cpu",
                       seconds: dict[str, float] | None = None) -> tuple[dict[str, float], float]:
    """Measures of ``arch`` averaged over seeds (each seed: its own init and batch) and the seconds it took.

    As aw_nas' zero-shot study (seeds 20, 2020, 202020) the seed fixes both the initial weights and
    the batch; ``seconds`` (if given) accumulates each measure's own time.
    """
    names = check_measures(names)
    t0 = time.perf_counter()
    sums = {n: 0.0 for n in names}
    for seed in seeds:
        torch.manual_seed(seed)
        net = build_net(arch, cfg).to(device)
        x, y = batches(seed)
        for n, v in compute_measures(net, x, y, names, seconds=seconds).items():
            sums[n] += v
    return {n: v / len(seeds) for n, v in sums.items()}, time.perf_counter() - t0


class ZeroShotEstimator:
    """One zero-shot measure behind the toolkit's estimator interface: ``score(arch) -> Score``."""

    def __init__(self, name: str, space: Any = "nb201", data: Any = None, device: torch.device | str = "cpu",
                 seeds: Sequence[int] = (20,), *, batch_size: int = 64, net_config: NetConfig | None = None,
                 dataset: str | None = None, data_path: str | None = None):
        # ``data`` (ImageData) or ``dataset`` + ``data_path`` (loaded on the first score)
        self.name = check_measures([name])[0]
        kind = space if isinstance(space, str) else getattr(space, "kind", None)
        self.kind = "nb201" if kind == "nb201" else "darts" if kind in ("darts", "s1", "s2", "s3", "s4", "s5") \
            else None
        if self.kind is None:
            raise ValueError(f"unknown space {kind!r} for a zero-shot estimator; allowed: nb201, darts, s1-s5")
        self.space = space
        self.device = resolve_device(device)
        self.seeds = list(seeds)
        if not self.seeds:
            raise ValueError("ZeroShotEstimator needs at least one seed")
        self.batch_size = batch_size
        self.net_config = net_config
        self._dataset, self._data_path = dataset, data_path
        self.data = data
        self.batches: BatchSource | None = None

    def _ready(self) -> None:
        """Load data (when only its name and folder were given) and fix the network config, once."""
        if self.batches is not None:
            return
        if self.data is None:
            if not self._dataset or not self._data_path:
                raise ValueError("a zero-shot estimator needs data: pass data=ImageData or dataset and data_path")
            self.data = load_dataset(self._dataset, self._data_path, valid="none")
        d = self.data
        self.cfg = self.net_config or default_net_config(self.kind, n_classes=d.n_classes,
                                                         input_size=int(d.train_x.shape[-1]),
                                                         in_channels=int(d.train_x.shape[1]))
        self.batches = BatchSource(d, batch_size=self.batch_size, device=self.device)

    def score(self, arch: Any) -> Any:
        """The measure of ``arch`` averaged over the seeds, with its wall-clock cost."""
        self._ready()
        if isinstance(arch, str) and not isinstance(self.space, str) and hasattr(self.space, "parse"):
            arch = self.space.parse(arch)
        values, seconds = score_architecture(arch, cfg=self.cfg, batches=self.batches.get, seeds=self.seeds,
                                             names=[self.name], device=self.device)
        return Score(value=float(values[self.name]), cost_seconds=seconds,
                     extras={"measure": self.name, "seeds": self.seeds})
