"""The architect: how the alphas of a supernet are updated.

``darts``: DARTS' first-order step (DARTS-PT ``nasbench201/architect_ig.py`` ``_step_fo``): Adam (lr 3e-4,
betas (0.5, 0.999), weight decay 1e-3) on the validation loss. ``unrolled``: DARTS' second-order step as
pt.darts' architect.py (which BPE's search.py always runs). ``blank``: no step (DARTS-PT Sec. 5).

BPE's architect.py 36-37 calls ``clip_grad_norm_(v_grads, 5.)`` on the tensors ``autograd.grad`` returns;
``clip_grad_norm_`` clips the ``.grad`` of what it is given, which is None for those tensors, so the call
changes nothing (checked with torch 2.14: a gradient of norm 204.6 comes back unchanged). Nothing is
clipped here either.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from models.supernets import Supernet


class Architect:
    """Updates the alphas: first order, DARTS second order (``unrolled``) or not at all (``blank``)."""

    def __init__(self, model: Supernet, *, method: str = "darts", unrolled: bool = False, lr: float = 3e-4,
                 weight_decay: float = 1e-3, w_momentum: float = 0.9, w_weight_decay: float = 3e-4):
        self.model = model
        self.method = method
        self.unrolled = unrolled
        self.w_momentum, self.w_weight_decay = w_momentum, w_weight_decay
        # Adam with betas (0.5, 0.999): DARTS' architect (architect_ig.py)
        self.optimizer = torch.optim.Adam(model.alphas(), lr=lr, betas=(0.5, 0.999), weight_decay=weight_decay)
        self._v_net: Supernet | None = None

    def step(self, trn_x: torch.Tensor, trn_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor, *,
             lr: float = 0.0, w_optim: torch.optim.Optimizer | None = None) -> None:
        """One alpha update on a validation batch (a no-op for 'blank')."""
        if self.method == "blank":
            return
        alphas = self.model.alphas()
        if self.unrolled:
            grads = self._unrolled_grads(trn_x, trn_y, val_x, val_y, lr, w_optim)
        else:
            loss = F.cross_entropy(self.model(val_x), val_y)
            # only the alphas' gradient: skips the weight-gradient kernels of a full backward()
            grads = torch.autograd.grad(loss, alphas)
        for a, g in zip(alphas, grads):
            a.grad = g
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    # -- DARTS second order (pt.darts architect.py, as BPE's search.py runs it) ----------------
    def _unrolled_grads(self, trn_x, trn_y, val_x, val_y, xi: float, w_optim) -> list[torch.Tensor]:
        model = self.model
        if self._v_net is None:
            self._v_net = copy.deepcopy(model)
        v_net = self._v_net
        with torch.no_grad():  # alphas and buffers (BN statistics, projection state); the weights are set below
            for src, dst in zip((*model.alphas(), *model.buffers()), (*v_net.alphas(), *v_net.buffers())):
                dst.copy_(src)
        if v_net._proj != model._proj or v_net._edge_on != model._edge_on:
            v_net._refresh_host()
        v_net.train(model.training)
        # virtual step w' = w - xi * (momentum + dw + wd * w)
        loss = F.cross_entropy(model(trn_x), trn_y)
        gw = torch.autograd.grad(loss, model.weights())
        with torch.no_grad():
            for w, vw, g in zip(model.weights(), v_net.weights(), gw):
                m = w_optim.state[w].get("momentum_buffer", None) if w_optim is not None else None
                m = m * self.w_momentum if m is not None else 0.0
                vw.copy_(w - xi * (m + g + self.w_weight_decay * w))
        loss = F.cross_entropy(v_net(val_x), val_y)
        v_alphas, v_weights = tuple(v_net.alphas()), tuple(v_net.weights())
        v_grads = torch.autograd.grad(loss, v_alphas + v_weights, allow_unused=True)
        dalpha = v_grads[: len(v_alphas)]
        dw = [g if g is not None else torch.zeros_like(w) for g, w in zip(v_grads[len(v_alphas):], v_weights)]
        # finite-difference Hessian-vector product, eps = 0.01 / ||dw|| (DARTS architect.py)
        eps = float(0.01 / torch.cat([d.reshape(-1) for d in dw]).norm().clamp_min(1e-12))  # one host sync
        weights = model.weights()
        with torch.no_grad():
            for p, d in zip(weights, dw):
                p.add_(d, alpha=eps)
        dpos = torch.autograd.grad(F.cross_entropy(model(trn_x), trn_y), model.alphas())
        with torch.no_grad():
            for p, d in zip(weights, dw):
                p.sub_(d, alpha=2.0 * eps)
        dneg = torch.autograd.grad(F.cross_entropy(model(trn_x), trn_y), model.alphas())
        with torch.no_grad():
            for p, d in zip(weights, dw):
                p.add_(d, alpha=eps)
        # DARTS divides by 2*eps; pt.darts' "(p-n) / 2.*eps" (architect.py 68, copied by BPE) multiplies by
        # eps/2 through operator precedence, shrinking the Hessian term by eps**2: corrected here, documented.
        return [da - xi * (p - n) / (2.0 * eps) for da, p, n in zip(dalpha, dpos, dneg)]
