"""SDARTS (Chen & Hsieh, ICML 2020) as DARTS-PT ships it: perturbed architecture weights for the weight step.

DARTS-PT ``sota/cnn/train_search.py`` 225-232, 298-300, 365-383 and ``attacker/{perturb,linf_sgd}.py``
(/work/notes/dartspt_original.md section 5). Per search step: the alphas first take the ordinary
first-order step on unperturbed weights (``Architect``); then the op weights p0 = softmax(alpha) (after
projection: the projected weights) are perturbed and the WEIGHT step alone runs on the perturbed
weights, after which the alphas are as before (DARTS-PT saves and restores them).

- ``sdarts-rs`` (``Random_alpha``): p = N(p0 + U[-eps, eps]);
- ``sdarts-adv`` (``Linf_PGD_alpha``): in eval mode on the TRAIN batch, p = N(p0 + U[-eps, eps]) (random
  start), then 7 times p <- p + (2 eps / 7) sign(grad_p L); p <- p0 + clamp(p - p0, -eps, eps); p <- N(p);
  kept only if L(p) >= L(p0) (``loss_before > loss_after`` restores p0).

N is DARTS-PT's ``model.clip()`` (``sota/cnn/model_search.py`` 215-222) per edge row: clamp to [0, 1]; a
row that became all zero gets 1 at its pre-clamp argmax; divide by the row sum. The eps-ball projection
comes before N, as there. eps ramps over the search, eps_t = 0.03 + (epsilon_alpha - 0.03) * epoch / epochs
(never reaching epsilon_alpha), and is the constant epsilon_alpha while projection fine-tunes.

The DARTS-space MixedOp skips ops whose weight is exactly 0 (``model_search.py`` 24): in the DARTS spaces
the perturbed forward masks those ops, so a clamped-to-zero op gets no PGD gradient and its BatchNorm
statistics do not move, as there. DARTS-PT has no SDARTS for NAS-Bench-201; there (our extension) every
op is run, as its NB201 cell does.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.supernets import Supernet

METHODS = ("sdarts-rs", "sdarts-adv")
EPS_START = 0.03  # train_search.py 299
PGD_STEPS = 7  # perturb.py 12


def epsilon_at(epoch: int, epochs: int, epsilon_alpha: float = 0.3) -> float:
    """The search-time ramp of DARTS-PT (train_search.py 298-300), ``epoch`` 0-based."""
    return EPS_START + (epsilon_alpha - EPS_START) * epoch / epochs


def clip_rows(p: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """DARTS-PT ``model.clip()`` on every row of ``p`` (a new tensor); ``valid`` masks non-candidates."""
    ref = p if valid is None else p.masked_fill(~valid, float("-inf"))
    top = ref.argmax(dim=-1)  # taken before the clamp, as line.argmax() there
    q = p.clamp(0.0, 1.0)
    if valid is not None:
        q = q * valid.to(q.dtype)
    empty = q.sum(dim=-1) == 0
    q = torch.where(empty.unsqueeze(-1), F.one_hot(top, q.size(-1)).to(q.dtype), q)
    return q / q.sum(dim=-1, keepdim=True)


def uniform_noise(like: torch.Tensor, eps: float) -> torch.Tensor:
    """U[-eps, eps] of ``like``'s shape from the global RNG (``torch.zeros_like(p).uniform_(-eps, eps)``)."""
    return torch.zeros_like(like).uniform_(-eps, eps)


class SDartsPerturbation(nn.Module):
    """The weight step's forward with perturbed op weights; ``prepare(x, y)`` draws them for the step.

    Passed to ``search_epoch`` as ``perturb``: the one training loop then calls it as the model.
    """

    def __init__(self, model: Supernet, method: str, eps: float = 0.3, *, steps: int = PGD_STEPS):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"unknown SDARTS method {method!r}; allowed: {', '.join(METHODS)}")
        self.model = model
        self.method, self.eps, self.steps = method, float(eps), steps
        self.skip_zero = model.kind == "darts"  # DARTS-space MixedOp skips w == 0 (see the module doc)
        self.weights: dict[str, torch.Tensor] | None = None
        self.masks: dict[str, torch.Tensor] | None = None

    def _valid(self, ct: str) -> torch.Tensor:
        return getattr(self.model, f"valid_{ct}")

    def _masks(self, w: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        return {ct: (t != 0).cpu() for ct, t in w.items()} if self.skip_zero else None

    def loss(self, x: torch.Tensor, y: torch.Tensor, w: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(self.model(x, self._masks(w), w), y)

    def start(self) -> dict[str, torch.Tensor]:
        """p0: the op weights DARTS-PT's ``softmax_arch_parameters`` copies into the alphas."""
        return {ct: self.model.projected_weights(ct) for ct in self.model.cell_types}

    def random(self, p0: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """N(p0 + U[-eps, eps]) (``Random_alpha``; one draw per cell type, in cell-type order)."""
        noisy = {ct: p0[ct] + uniform_noise(p0[ct], self.eps) for ct in self.model.cell_types}
        return {ct: clip_rows(noisy[ct], self._valid(ct)) for ct in self.model.cell_types}

    def pgd(self, x: torch.Tensor, y: torch.Tensor, p0: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``Linf_PGD_alpha`` (perturb.py 12-45): random start, ``steps`` signed steps of 2 eps / steps,
        eps-ball projection then N; p0 back unless the loss rose. BN in eval mode during the attack."""
        training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                before = self.loss(x, y, p0)
            p = self.random(p0)
            lr = 2 * self.eps / self.steps
            for _ in range(self.steps):
                leaves = {ct: t.detach().requires_grad_(True) for ct, t in p.items()}
                grads = torch.autograd.grad(self.loss(x, y, leaves), list(leaves.values()))
                with torch.no_grad():
                    for (ct, t), g in zip(leaves.items(), grads):
                        t = t + lr * torch.sign(g)  # Linf_SGD on -L: p - lr * sign(grad(-L))
                        t = p0[ct] + (t - p0[ct]).clamp(-self.eps, self.eps)
                        p[ct] = clip_rows(t, self._valid(ct))
            with torch.no_grad():
                after = self.loss(x, y, p)
            if before > after:  # the attack did not raise the loss: keep the clean weights
                p = {ct: t.clone() for ct, t in p0.items()}
        finally:
            self.model.train(training)
        return p

    def prepare(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Draw this step's perturbed weights (after the alpha step, before the weight step)."""
        p0 = self.start()
        self.weights = self.random(p0) if self.method == "sdarts-rs" else self.pgd(x, y, p0)
        self.masks = self._masks(self.weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weights is None:
            raise RuntimeError("SDartsPerturbation.prepare(x, y) must run before the weight step")
        return self.model(x, self.masks, self.weights)


def make_perturbation(method: str, model: Supernet, eps: float) -> SDartsPerturbation | None:
    """The SDARTS perturbation of ``method``, or None for methods without one (darts, blank)."""
    return SDartsPerturbation(model, method, eps) if method in METHODS else None
