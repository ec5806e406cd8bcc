"""REINFORCE (Williams 1992) with an exponential-moving-average baseline, and its controllers.

Three controllers, each with the defaults of the code it reproduces:

- ``bpe`` (the default in the DARTS spaces): BPE's ``REINFORCEOptimizer`` (run_rl.py 132-160, 310-321).
  One zero-initialised logit vector per variable, a sample per variable, and plain gradient ascent
  ``theta_e += lr * A * (onehot(a_e) - softmax(theta_e))`` at ``--lr`` 0.1 (its ``var.assign_add(lr *
  grad)``); the reward is the accuracy as a fraction; no entropy term.
- ``nb201`` (the default on NAS-Bench-201): AutoDL-Projects' REINFORCE for NAS-Bench-201/NATS-Bench
  (exps/NATS-algos/reinforce.py 35-75, 122-185): logits ``1e-3 * randn`` per edge, Adam at ``--lr`` 0.01
  (its run-all.sh 21 and usage lines 6-8) on ``-log_prob * (reward - baseline)`` summed over edges, the
  reward in percent as the benchmark stores it, no entropy term. The NAS-Bench-201 docs' older
  ``REINFORCE.sh cifar10 0.5`` collapses the policy within ~50 queries (bench/strategies_nb201.py:
  93.05 vs random 93.92 at 150 queries); pass ``--lr 0.5`` for it.
- ``lstm``: an ENAS-style LSTM controller with Adam and an entropy bonus (1e-4), an improvement kept
  behind the flag.

The baseline is both codes' ``ExponentialMovingAverage``: a bias-corrected EMA (momentum 0.9) updated
with the reward *before* the advantage is taken, so the first step never moves the policy.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn

from nas.errors import ConfigError
from nas.strategies.base import Strategy

CONTROLLERS = ("auto", "bpe", "nb201", "lstm", "logits")


class LSTMController(nn.Module):
    """Autoregressive policy: one LSTM step per position, a linear head per position (ENAS-style)."""

    def __init__(self, sizes: Sequence[int], hidden: int = 64, tanh_c: float = 2.5):
        super().__init__()
        self.sizes = list(sizes)
        self.hidden = hidden
        self.tanh_c = tanh_c  # ENAS: logits = c * tanh(logits / c) keeps early sampling exploratory
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.embed = nn.ModuleList(nn.Embedding(n, hidden) for n in self.sizes)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in self.sizes)
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    def forward(self, actions: Sequence[int] | None = None, generator: torch.Generator | None = None):
        """Sample (or score given ``actions``): returns actions, summed log-prob, entropy, per-position probs."""
        x = self.start
        h = c = torch.zeros(1, self.hidden)
        acts, logp, ent, probs = [], [], [], []
        for i in range(len(self.sizes)):
            h, c = self.lstm(x, (h, c))
            logits = self.heads[i](h)
            if self.tanh_c:
                logits = self.tanh_c * torch.tanh(logits / self.tanh_c)
            dist = torch.distributions.Categorical(logits=logits)
            a = int(torch.multinomial(dist.probs, 1, generator=generator).item()) if actions is None \
                else int(actions[i])
            acts.append(a)
            at = torch.tensor([a])
            logp.append(dist.log_prob(at))
            ent.append(dist.entropy())
            probs.append(dist.probs[0])
            x = self.embed[i](at)
        return acts, torch.stack(logp).sum(), torch.stack(ent).sum(), probs


class FactorizedController(nn.Module):
    """Independent logits per position: BPE's (zeros) or NAS-Bench-201's (``1e-3 * randn``) policy."""

    def __init__(self, sizes: Sequence[int], init_std: float = 0.0):
        super().__init__()
        self.sizes = list(sizes)
        self.logits = nn.ParameterList(nn.Parameter(init_std * torch.randn(1, n)) for n in self.sizes)

    def forward(self, actions: Sequence[int] | None = None, generator: torch.Generator | None = None):
        acts, logp, ent, probs = [], [], [], []
        for i, lg in enumerate(self.logits):
            dist = torch.distributions.Categorical(logits=lg)
            a = int(torch.multinomial(dist.probs, 1, generator=generator).item()) if actions is None \
                else int(actions[i])
            acts.append(a)
            logp.append(dist.log_prob(torch.tensor([a])))
            ent.append(dist.entropy())
            probs.append(dist.probs[0])
        return acts, torch.stack(logp).sum(), torch.stack(ent).sum(), probs


# controller -> (optimizer, lr, entropy weight, reward scale): each original's own defaults
DEFAULTS = {
    "bpe": ("sgd", 0.1, 0.0, 100.0),  # BPE run_rl.py: --lr 1e-1, reward = accuracy fraction
    "nb201": ("adam", 0.01, 0.0, 1.0),  # AutoDL NATS-algos run-all.sh: --learning_rate 0.01; reward in %
    "lstm": ("adam", 0.1, 1e-4, 100.0),
}


def resolve_controller(controller: str, space_kind: str) -> str:
    """``auto``: BPE's controller in the DARTS spaces, NAS-Bench-201's on nb201 (``logits`` = ``bpe``)."""
    if controller not in CONTROLLERS:
        raise ConfigError(f"unknown --controller {controller!r}; allowed: {', '.join(CONTROLLERS)}")
    if controller == "auto":
        return "nb201" if space_kind == "nb201" else "bpe"
    return "bpe" if controller == "logits" else controller


class Reinforce(Strategy):
    """REINFORCE with the EMA baseline of BPE and AutoDL-Projects (updated before the advantage)."""

    name = "rl"

    def __init__(self, encoding: Any, seed: int, *, lr: float | None = None, momentum: float = 0.9,
                 controller: str = "auto", entropy_weight: float | None = None, hidden: int = 64,
                 optimizer: str = "auto", reward_scale: float | None = None):
        super().__init__(encoding, seed)
        self.controller_name = resolve_controller(controller, getattr(encoding, "kind", "darts"))
        opt_name, lr_default, ent_default, scale_default = DEFAULTS[self.controller_name]
        self.lr = lr_default if lr is None else float(lr)
        if not self.lr > 0:
            raise ConfigError(f"--lr (controller) must be positive, got {lr!r}")
        if not 0 <= momentum < 1:
            raise ConfigError(f"--momentum_baseline must be in [0, 1), got {momentum!r}")
        self.gen = torch.Generator().manual_seed(seed)
        # Parameter init draws from the global torch RNG; fork it so the result depends on ``seed`` only.
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            sizes = encoding.choice_sizes()
            if self.controller_name == "lstm":
                self.controller: nn.Module = LSTMController(sizes, hidden=hidden)
            else:
                self.controller = FactorizedController(sizes, init_std=1e-3 if self.controller_name == "nb201" else 0)
        opt_name = opt_name if optimizer == "auto" else optimizer
        if opt_name == "sgd":  # BPE: var.assign_add(lr * grad), plain gradient ascent
            self.opt: torch.optim.Optimizer = torch.optim.SGD(self.controller.parameters(), lr=self.lr)
        elif opt_name == "adam":
            self.opt = torch.optim.Adam(self.controller.parameters(), lr=self.lr)
        else:
            raise ConfigError(f"unknown --controller_optimizer {optimizer!r}; allowed: auto, sgd, adam")
        self.momentum = momentum
        self.entropy_weight = ent_default if entropy_weight is None else float(entropy_weight)
        self.reward_scale = scale_default if reward_scale is None else float(reward_scale)
        if not self.reward_scale > 0:
            raise ConfigError(f"--reward_scale must be positive, got {reward_scale!r}")
        self.num = 0.0  # EMA numerator / denominator (BPE ExponentialMovingAverage)
        self.den = 0.0

    def baseline(self) -> float:
        return self.num / self.den if self.den else 0.0

    def probabilities(self) -> list[list[float]]:
        """The policy's per-position probabilities (factorised controllers; the LSTM's along a sample)."""
        with torch.no_grad():
            return [[float(x) for x in p] for p in self.controller(generator=torch.Generator().manual_seed(0))[3]]

    def propose(self, n: int, n_done: int) -> list[list[int]]:
        with torch.no_grad():
            return [self.controller(generator=self.gen)[0] for _ in range(n)]

    def tell(self, vecs: list[list[int]], values: list[float]) -> list[dict]:
        self.opt.zero_grad()
        loss = torch.zeros(())
        logs = []
        for v, val in zip(vecs, values):
            reward = float(val) / self.reward_scale
            # Both originals update the baseline with this reward before computing the advantage.
            self.num = self.momentum * self.num + (1 - self.momentum) * reward
            self.den = self.momentum * self.den + (1 - self.momentum)
            adv = reward - self.baseline()
            _, logp, ent, _ = self.controller(actions=v)
            # a batch of candidates averages their terms (the originals score one candidate per step)
            loss = loss - (adv * logp + self.entropy_weight * ent) / len(vecs)
            logs.append({"baseline": self.baseline(), "reward": reward})
        loss.backward()
        self.opt.step()
        with torch.no_grad():  # BPE's optim_prob: the policy after the update, per position
            for v, log in zip(vecs, logs):
                log["optim_prob"] = [[float(x) for x in p] for p in self.controller(actions=v)[3]]
        return logs

    def state_dict(self) -> dict:
        return {**super().state_dict(), "controller": self.controller.state_dict(), "opt": self.opt.state_dict(),
                "gen": self.gen.get_state(), "ema": [self.num, self.den]}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.controller.load_state_dict(state["controller"])
        self.opt.load_state_dict(state["opt"])
        self.gen.set_state(state["gen"])
        self.num, self.den = (float(x) for x in state["ema"])
