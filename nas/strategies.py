"""Search strategies over any space with any estimator, on one shared, resumable, torchrun-aware loop.

- ``RegularizedEvolution``: Real et al. 2019 (ageing: the oldest member dies), tournament of
  ``sample_size`` drawn with replacement, child = one mutation of the winner (BPE ``run_evolution.py``).
- ``Reinforce``: REINFORCE (Williams 1992) with an LSTM controller over the space's encoding (ENAS /
  NASNet style), an exponential-moving-average baseline and an entropy bonus; ``--controller
  logits`` is BPE ``run_rl.py``'s factorised categorical (one logit vector per position, plain
  gradient ascent).
- ``RandomSearch``: uniform samples.

Encodings. NAS-Bench-201 and two-input DARTS cells use ``nas.spaces`` directly. BPE's RL and EA
search a *supernet genotype* instead (``BPECellEncoding``): every one of the 14 edges of a cell keeps
its input and carries one of the 7 non-'none' ops (BPE ``get_configuration_space``: 28 categorical
variables); ``parse_json.py`` then keeps two inputs per node.

The loop (``run_search``) proposes a batch of ``batch`` candidates, scores them (one per rank under
torchrun), tells the strategy, and checkpoints after every completed evaluation, so a rerun after a
kill never repeats finished work.
"""

from __future__ import annotations

import argparse
import collections
import math
import random
import re
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from genotypes import Genotype, format_genotype, make_genotype
from nas.checkpoint import (
    get_rng_state,
    load_checkpoint,
    python_rng_from_list,
    python_rng_to_list,
    save_checkpoint,
    set_rng_state,
)
from nas.cli import NASError, UsageError
from nas.distributed import DistContext, all_gather_object, broadcast_object
from nas.estimators import arch_text, call_score
from nas.spaces import N_NODES, DartsSpace, edge_index, get_space

# ============================================================================= encodings


class BPECellEncoding:
    """BPE's supernet genotype: per cell, 14 edges each with one non-'none' op (28 positions).

    Position order is BPE's ``for cell: for node in 2..5: for prev in 0..node-1``, which is the
    node-major ``edge_index`` order of ``nas.spaces``. Values index the edge's candidate ops with
    'none' removed; for S5 that is ``PRIMITIVES[:7]``, BPE's exact indices.
    """

    kind = "darts"

    def __init__(self, space: DartsSpace):
        self.space = space
        self.name = f"{space.name}-bpe"
        self.n_edges = sum(range(2, N_NODES + 2))
        self.ops = [space.edge_ops[c][e] for c in ("normal", "reduce") for e in range(self.n_edges)]

    def choice_sizes(self) -> list[int]:
        return [len(o) for o in self.ops]

    def decode(self, vec: Sequence[int], keep: Sequence[bool] | None = None) -> Genotype:
        """Vector -> Genotype with every input of every node (or only the edges where ``keep``)."""
        if len(vec) != len(self.ops):
            raise ValueError(f"BPE cell encoding has {len(self.ops)} entries, got {len(vec)}")
        cells = []
        for c in range(2):
            nodes = []
            for k in range(N_NODES):
                node = []
                for s in range(k + 2):
                    p = c * self.n_edges + edge_index(k, s)
                    if keep is None or keep[p]:
                        node.append((self.ops[p][int(vec[p]) % len(self.ops[p])], s))
                nodes.append(node)
            cells.append(nodes)
        return make_genotype(cells[0], cells[1])

    def encode(self, g: Genotype) -> list[int]:
        """A full supernet genotype (every node keeps all inputs) -> vector."""
        vec = [0] * len(self.ops)
        for c, nodes in enumerate((g.normal, g.reduce)):
            for k, node in enumerate(nodes):
                if sorted(s for _, s in node) != list(range(k + 2)):
                    raise ValueError(f"node {k} must keep all {k + 2} inputs in the BPE supernet encoding")
                for op, s in node:
                    p = c * self.n_edges + edge_index(k, s)
                    vec[p] = self.ops[p].index(op)
        return vec

    def sample(self, rng: random.Random) -> Genotype:
        return self.decode([rng.randrange(n) for n in self.choice_sizes()])

    def mutate(self, g: Genotype, rng: random.Random) -> Genotype:
        """BPE ``mutate_arch``: one variable gets a different op."""
        vec = self.encode(g)
        p = rng.randrange(len(vec))
        vec[p] = rng.choice([i for i in range(len(self.ops[p])) if i != vec[p]] or [vec[p]])
        return self.decode(vec)

    def key(self, g: Genotype) -> str:
        return format_genotype(g)

    def format(self, g: Genotype) -> str:
        return format_genotype(g)


class SpaceEncoding:
    """A ``nas.spaces`` space used as it is (NB201 strings, two-input DARTS cells)."""

    def __init__(self, space: Any):
        self.space = space
        self.kind = space.kind
        self.name = space.name

    def choice_sizes(self) -> list[int]:
        return self.space.choice_sizes()

    def encode(self, arch: Any) -> list[int]:
        return self.space.encode(arch)

    def decode(self, vec: Sequence[int]) -> Any:
        return self.space.decode(vec)

    def sample(self, rng: random.Random) -> Any:
        return self.space.sample(rng)

    def mutate(self, arch: Any, rng: random.Random) -> Any:
        return self.space.mutate(arch, rng)

    def key(self, arch: Any) -> str:
        return self.space.key(arch)

    def format(self, arch: Any) -> str:
        return self.space.format(arch)


ENCODINGS = ("auto", "bpe", "pair")


def make_encoding(space_name: str, encoding: str = "auto") -> BPECellEncoding | SpaceEncoding:
    """``bpe`` (supernet genotype, DARTS default) or ``pair`` (two-input cells) for DARTS spaces."""
    space = get_space(space_name)
    if encoding not in ENCODINGS:
        raise UsageError(f"unknown --encoding {encoding!r}; allowed: {', '.join(ENCODINGS)}")
    if space.kind == "nb201":
        if encoding == "bpe":
            raise UsageError("--encoding bpe is for DARTS spaces; NB201 has one encoding")
        return SpaceEncoding(space)
    return SpaceEncoding(space) if encoding == "pair" else BPECellEncoding(space)


# ============================================================================= strategies


class Strategy:
    """Ask/tell interface: ``propose(n)`` encoded candidates, then ``tell`` their scores."""

    name = "base"

    def __init__(self, encoding: Any, seed: int):
        self.enc = encoding
        self.rng = random.Random(seed)

    def propose(self, n: int, n_done: int) -> list[list[int]]:
        raise NotImplementedError

    def tell(self, vecs: list[list[int]], values: list[float]) -> list[dict]:
        """Update from a finished batch; returns per-candidate extras to log (e.g. baseline)."""
        return [{} for _ in vecs]

    def state_dict(self) -> dict:
        return {"rng": python_rng_to_list(self.rng)}

    def load_state_dict(self, state: dict) -> None:
        self.rng = python_rng_from_list(state["rng"])


class RandomSearch(Strategy):
    """Uniform samples from the encoding (Li & Talwalkar 2019 baseline)."""

    name = "random"

    def propose(self, n: int, n_done: int) -> list[list[int]]:
        return [self.enc.encode(self.enc.sample(self.rng)) for _ in range(n)]


class RegularizedEvolution(Strategy):
    """Ageing evolution (Real et al. 2019; BPE ``regularized_evolution``)."""

    name = "evolution"

    def __init__(self, encoding: Any, seed: int, *, pop_size: int, sample_size: int):
        super().__init__(encoding, seed)
        if pop_size < 1 or sample_size < 1:
            raise UsageError("--pop_size and --sample_size must be >= 1")
        self.pop_size, self.sample_size = pop_size, sample_size
        self.population: collections.deque = collections.deque()  # (vec, value), oldest first

    def propose(self, n: int, n_done: int) -> list[list[int]]:
        out = []
        for i in range(n):
            if n_done + i < self.pop_size or not self.population:
                # BPE: the first pop_size evaluations are random models
                out.append(self.enc.encode(self.enc.sample(self.rng)))
                continue
            # tournament drawn with replacement (BPE: random.choice(list(population)))
            pool = list(self.population)
            sample = [pool[self.rng.randrange(len(pool))] for _ in range(self.sample_size)]
            parent = max(sample, key=lambda m: m[1])
            child = self.enc.mutate(self.enc.decode(parent[0]), self.rng)
            out.append(self.enc.encode(child))
        return out

    def tell(self, vecs: list[list[int]], values: list[float]) -> list[dict]:
        for v, val in zip(vecs, values):
            self.population.append((list(v), float(val)))
            if len(self.population) > self.pop_size:
                self.population.popleft()  # ageing: the oldest dies, not the worst
        return [{} for _ in vecs]

    def state_dict(self) -> dict:
        return {**super().state_dict(), "population": [[list(v), x] for v, x in self.population]}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.population = collections.deque((list(v), float(x)) for v, x in state["population"])


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
            if actions is None:
                a = int(torch.multinomial(dist.probs, 1, generator=generator).item())
            else:
                a = int(actions[i])
            acts.append(a)
            at = torch.tensor([a])
            logp.append(dist.log_prob(at))
            ent.append(dist.entropy())
            probs.append(dist.probs[0])
            x = self.embed[i](at)
        return acts, torch.stack(logp).sum(), torch.stack(ent).sum(), probs


class FactorizedController(nn.Module):
    """BPE ``REINFORCEOptimizer``: independent logits per position, initialised to zero."""

    def __init__(self, sizes: Sequence[int]):
        super().__init__()
        self.sizes = list(sizes)
        self.logits = nn.ParameterList(nn.Parameter(torch.zeros(1, n)) for n in self.sizes)

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


class Reinforce(Strategy):
    """REINFORCE with an EMA baseline (BPE ``ExponentialMovingAverage``, bias-corrected) and entropy bonus."""

    name = "rl"

    def __init__(self, encoding: Any, seed: int, *, lr: float, momentum: float = 0.9, controller: str = "lstm",
                 entropy_weight: float = 1e-4, hidden: int = 64, optimizer: str = "auto", reward_scale: float = 100.0):
        super().__init__(encoding, seed)
        torch_gen = torch.Generator().manual_seed(seed)
        self.gen = torch_gen
        # Parameter init draws from the global torch RNG; fork it so the result depends on ``seed`` only.
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            if controller == "lstm":
                self.controller: nn.Module = LSTMController(encoding.choice_sizes(), hidden=hidden)
            elif controller == "logits":
                self.controller = FactorizedController(encoding.choice_sizes())
            else:
                raise UsageError(f"unknown --controller {controller!r}; allowed: lstm, logits")
        if optimizer == "auto":
            optimizer = "sgd" if controller == "logits" else "adam"
        if optimizer == "sgd":  # BPE: var.assign_add(lr * grad), plain gradient ascent
            self.opt: torch.optim.Optimizer = torch.optim.SGD(self.controller.parameters(), lr=lr)
        elif optimizer == "adam":
            self.opt = torch.optim.Adam(self.controller.parameters(), lr=lr)
        else:
            raise UsageError(f"unknown --controller_optimizer {optimizer!r}; allowed: auto, sgd, adam")
        self.momentum, self.entropy_weight, self.reward_scale = momentum, entropy_weight, reward_scale
        self.num = 0.0  # EMA numerator / denominator (BPE ExponentialMovingAverage)
        self.den = 0.0

    def baseline(self) -> float:
        return self.num / self.den if self.den else 0.0

    def propose(self, n: int, n_done: int) -> list[list[int]]:
        with torch.no_grad():
            return [self.controller(generator=self.gen)[0] for _ in range(n)]

    def tell(self, vecs: list[list[int]], values: list[float]) -> list[dict]:
        self.opt.zero_grad()
        loss = torch.zeros(())
        logs = []
        for v, val in zip(vecs, values):
            reward = float(val) / self.reward_scale
            # BPE updates the baseline with this reward before computing the advantage.
            self.num = self.momentum * self.num + (1 - self.momentum) * reward
            self.den = self.momentum * self.den + (1 - self.momentum)
            adv = reward - self.baseline()
            _, logp, ent, _ = self.controller(actions=v)
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


METHODS = {"evolution": "EA", "rl": "RL", "random": "RS"}


def make_strategy(method: str, encoding: Any, args: argparse.Namespace) -> Strategy:
    """The strategy the command line asks for."""
    if method == "evolution":
        return RegularizedEvolution(encoding, args.seed, pop_size=args.pop_size, sample_size=args.sample_size)
    if method == "rl":
        return Reinforce(encoding, args.seed, lr=args.lr_controller, momentum=args.baseline_momentum,
                         controller=args.controller, entropy_weight=args.entropy_weight,
                         optimizer=args.controller_optimizer, reward_scale=args.reward_scale)
    if method == "random":
        return RandomSearch(encoding, args.seed)
    raise UsageError(f"unknown --strategy {method!r}; allowed: {', '.join(METHODS)}")


# ============================================================================= the loop


class EvalFailed(NASError):
    """An estimator failed on some rank; re-raised everywhere so no rank hangs."""


def run_search(strategy: Strategy, encoding: Any, estimator: Any, *, n_iters: int, batch: int = 1,
               ckpt_path: str | Path | None = None, resume_state: dict | None = None, ctx: DistContext | None = None,
               logger: Any = None, writer: Any = None, config_key: dict | None = None,
               after_eval: Callable[[int], None] | None = None) -> list[dict]:
    """Propose, score (spread over ranks), tell, checkpoint; returns the history (rank 0; [] elsewhere)."""
    ctx = ctx or DistContext()
    history: list[dict] = []
    pending: dict | None = None
    if ctx.is_main and resume_state is not None:
        history = list(resume_state["history"])
        pending = resume_state.get("pending")
        strategy.load_state_dict(resume_state["strategy"])
        set_rng_state(resume_state["rng"])
        if logger:
            logger.info("resumed from %s: %d evaluations done%s", ckpt_path, len(history),
                        f", {len(pending['results'])}/{len(pending['vecs'])} of a batch" if pending else "")

    def save() -> None:
        if ctx.is_main and ckpt_path is not None:
            save_checkpoint(ckpt_path, {"history": history, "pending": pending, "strategy": strategy.state_dict(),
                                        "rng": get_rng_state(), "config_key": config_key or {}})

    while True:
        if ctx.is_main:
            if pending is None and len(history) < n_iters:
                vecs = strategy.propose(min(batch, n_iters - len(history)), len(history))
                pending = {"vecs": vecs, "results": {}}
                save()  # strategy state after proposing: a resume re-uses these candidates
            msg = None if pending is None else {"vecs": pending["vecs"], "done": sorted(pending["results"])}
        else:
            msg = None
        msg = broadcast_object(msg, ctx)
        if msg is None:
            break
        vecs, done = msg["vecs"], set(msg["done"])
        todo = [j for j in range(len(vecs)) if j not in done]
        mine = todo[ctx.rank::ctx.world_size]  # one candidate per rank (round-robin if batch > ranks)
        local: dict[int, Any] = {}
        for j in mine:
            idx = len(history) + j if ctx.is_main else None
            try:
                arch = encoding.decode(vecs[j])
                s = call_score(estimator, arch, tag=f"eval_{(idx if idx is not None else j):04d}")
                local[j] = {"value": float(s.value), "cost_seconds": float(s.cost_seconds), "extras": s.extras}
            except Exception as exc:  # noqa: BLE001 - forwarded so that every rank stops together
                if not ctx.enabled:
                    raise
                local[j] = {"error": f"{type(exc).__name__}: {exc}"}
            if ctx.is_main and "error" not in local[j]:
                pending["results"][j] = local[j]
                save()  # checkpoint after every completed evaluation
                if after_eval is not None:
                    after_eval(len(history) + len(pending["results"]))
        gathered = all_gather_object(local, ctx)
        errors = [r["error"] for g in gathered for r in g.values() if "error" in r]
        if errors:
            raise EvalFailed(f"evaluation failed: {errors[0]}")
        if not ctx.is_main:
            continue
        for g in gathered:
            pending["results"].update(g)
        results = [pending["results"][j] for j in range(len(vecs))]
        logs = strategy.tell(vecs, [r["value"] for r in results])
        for v, r, lg in zip(vecs, results, logs):
            arch = encoding.decode(v)
            rec = {"index": len(history), "sample": [int(x) for x in v], "arch": encoding.format(arch),
                   "value": r["value"], "cost_seconds": r["cost_seconds"], "extras": r["extras"], **lg}
            history.append(rec)
            best = max(h["value"] for h in history)
            if logger:
                logger.info("eval %d/%d value %.4f best %.4f cost %.2fs arch %s", rec["index"] + 1, n_iters,
                            rec["value"], best, rec["cost_seconds"], arch_text(rec["arch"]))
                if "baseline" in lg:  # BPE run_rl.py's line, read by parse_json.py
                    logger.info("step = %d, baseline reward = %.5f", rec["index"], lg["baseline"])
            if writer is not None:
                writer.add_scalar("search/value", rec["value"], rec["index"])
                writer.add_scalar("search/best_so_far", best, rec["index"])
                if "baseline" in lg:
                    writer.add_scalar("search/baseline_reward", lg["baseline"], rec["index"])
        pending = None
        save()
    return history


def bpe_results(history: list[dict], method: str) -> dict:
    """The keys BPE's tools read: val_acc, genotype, sample, best_val_acc, best_genotype (+ optim_prob for RL)."""
    vals = [h["value"] for h in history]
    best = max(range(len(vals)), key=lambda i: vals[i]) if vals else None
    res = {
        "val_acc": vals,
        "genotype": [h["arch"] for h in history],
        "sample": [h["sample"] for h in history],
        "best_val_acc": [vals[best]] if best is not None else [],
        "best_genotype": [history[best]["arch"]] if best is not None else [],
        "best_index": best,
        "cost_seconds": [h["cost_seconds"] for h in history],
        "extras": [h["extras"] for h in history],
    }
    if method == "rl":
        res["optim_prob"] = [h.get("optim_prob", []) for h in history]
        res["baseline_reward"] = [h.get("baseline") for h in history]
    return res


def run_tag(args: argparse.Namespace) -> str:
    """``BPE1`` for budgeted training, the benchmark's stem with --benchmark, else the estimator name."""
    if getattr(args, "benchmark", None):
        return re.sub(r"[^A-Za-z0-9.-]+", "-", Path(args.benchmark).stem)
    if args.estimator not in ("auto", "train"):
        return re.sub(r"[^A-Za-z0-9.-]+", "-", args.estimator)
    return str(args.param)


def add_search_args(parser: argparse.ArgumentParser, method: str | None) -> None:
    """Flags shared by run_rl.py, run_evolution.py and run_random.py (BPE's names kept)."""
    if method is None:
        parser.add_argument("--strategy", default="evolution", choices=list(METHODS), help="search strategy")
    parser.add_argument("--run_id", default=0, type=int, help="identifies the run in file names")
    parser.add_argument("--seed", default=2, type=int, help="seeds the strategy and the training (BPE default 2)")
    default_out = {"rl": "experiment/RL", "evolution": "experiment/EA", "random": "experiment/RS"}.get(method or "",
                                                                                                      "experiment")
    parser.add_argument("--output_path", default=default_out, help="folder for the JSON, log, checkpoint")
    parser.add_argument("--n_iters", default=100, type=int, help="number of evaluations (equal budget for all)")
    parser.add_argument("--space", default="darts", help="darts (= s5), s1..s5 or nb201")
    parser.add_argument("--encoding", default="auto", choices=list(ENCODINGS),
                        help="DARTS: bpe = BPE's supernet genotype (all 14 edges, default), pair = two-input cells")
    parser.add_argument("--batch_candidates", default=1, type=int,
                        help="candidates proposed per step and scored in parallel (one per torchrun rank)")
    parser.add_argument("--overwrite", action="store_true", help="start over even if results/checkpoint exist")
    if method in ("evolution", None):
        parser.add_argument("--pop_size", default=50, type=int, help="population size (BPE 50; NB201 paper 10)")
        parser.add_argument("--sample_size", default=10, type=int, help="tournament size (BPE 10; NB201 paper 3)")
    if method in ("rl", None):
        # BPE's run_rl.py calls the controller's learning rate --lr; it replaces the budget's --lr here
        # (the training lr stays reachable as --w_lr).
        rl = parser.add_argument_group("controller", conflict_handler="resolve")
        rl.add_argument("--lr", "--lr_controller", dest="lr_controller", default=0.1, type=float,
                            help="controller learning rate (BPE --lr, default 0.1); training lr: --w_lr")
        parser.add_argument("--momentum_baseline", dest="baseline_momentum", default=0.9, type=float,
                            help="EMA momentum of the reward baseline (BPE --momentum)")
        parser.add_argument("--controller", default="lstm", choices=["lstm", "logits"],
                            help="lstm (ENAS-style) or logits (BPE's factorised categorical)")
        parser.add_argument("--controller_optimizer", default="auto", choices=["auto", "sgd", "adam"],
                            help="auto: adam for lstm, sgd (BPE gradient ascent) for logits")
        parser.add_argument("--entropy_weight", default=1e-4, type=float, help="entropy bonus weight")
        parser.add_argument("--reward_scale", default=100.0, type=float,
                            help="reward = score / this (100 turns percent into BPE's [0, 1] reward)")


def search_main(args: argparse.Namespace, method: str | None = None) -> int:
    """Everything run_rl.py / run_evolution.py / run_random.py do after parsing."""
    import os

    from nas.cli import get_logger
    from nas.distributed import cleanup, init_distributed
    from nas.estimators import build_estimator, estimator_kind
    from nas.io import atomic_write_json, run_metadata

    method = method or args.strategy
    started = time.time()
    if args.n_iters < 1 or args.batch_candidates < 1:
        raise UsageError("--n_iters and --batch_candidates must be >= 1")
    encoding = make_encoding(args.space, args.encoding)
    kind = estimator_kind(args)
    if kind == "train" and not getattr(args, "param", None):
        raise UsageError("give --param (BPE1, BPE2, DARTS) for budgeted training, or --benchmark FILE")
    tag = run_tag(args)
    prefix = METHODS[method]
    out = Path(args.output_path)
    json_path = out / f"run_{tag}_{args.run_id}.json"
    ckpt_path = out / f"{prefix}_{tag}_{args.run_id}.ckpt"
    log_path = out / f"{prefix}_{tag}_{args.run_id}.log"
    ctx = init_distributed(getattr(args, "device", "auto") or "auto")
    try:
        config_key = {"method": method, "space": args.space, "encoding": encoding.name, "seed": args.seed,
                      "batch": args.batch_candidates, "estimator": kind, "tag": tag}
        resume = None
        if ctx.is_main and not args.overwrite and ckpt_path.exists() and json_path.exists():
            done = load_checkpoint(ckpt_path)
            if done.get("config_key") == config_key and len(done["history"]) >= args.n_iters:
                print(f"{json_path} is complete ({len(done['history'])} evaluations); nothing to do "
                      "(--overwrite starts over, a larger --n_iters extends it)")
                cleanup(ctx)
                return 0
        if ctx.is_main:
            if args.overwrite:
                ckpt_path.unlink(missing_ok=True)
            elif ckpt_path.exists():
                resume = load_checkpoint(ckpt_path)
                if resume.get("config_key") != config_key:
                    raise UsageError(f"{ckpt_path} belongs to another run ({resume.get('config_key')}); "
                                     "pass --overwrite to start over or change --run_id")
            elif json_path.exists():
                raise UsageError(f"{json_path} exists; pass --overwrite or another --run_id")
        logger = get_logger(f"nas.search.{prefix}.{ctx.rank}", log_path if ctx.is_main else None,
                            quiet=not ctx.is_main)
        if kind == "train" and ctx.device != "cpu":
            args.device = ctx.device  # each rank trains on its own GPU
        estimator = build_estimator(args, space_kind=encoding.kind, workdir=out / f"work_{prefix}_{tag}_{args.run_id}",
                                    logger=logger)
        if ctx.is_main:
            logger.info("%s on %s (%s encoding), estimator %s, %d evaluations, batch %d, world %d", method,
                        args.space, encoding.name, kind, args.n_iters, args.batch_candidates, ctx.world_size)
        random.seed(args.seed)
        torch.manual_seed(args.seed)
        strategy = make_strategy(method, encoding, args)
        writer = None
        if ctx.is_main:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out / f"tb_{prefix}_{tag}_{args.run_id}"))
        try:
            history = run_search(strategy, encoding, estimator, n_iters=args.n_iters, batch=args.batch_candidates,
                                 ckpt_path=ckpt_path, resume_state=resume, ctx=ctx, logger=logger, writer=writer,
                                 config_key=config_key, after_eval=_TEST_HOOK.get("after_eval"))
        finally:
            if writer is not None:
                writer.close()
        if ctx.is_main:
            _sanity(history)
            res = bpe_results(history, method)
            res["run_metadata"] = run_metadata(args, seed=args.seed, started=started)
            res["run_metadata"].update({"method": method, "space": args.space, "encoding": encoding.name,
                                        "estimator": getattr(estimator, "name", kind), "world_size": ctx.world_size,
                                        "val_acc_unit": "estimator value (percent for accuracies)",
                                        "pid": os.getpid()})
            atomic_write_json(json_path, res)
            logger.info("Best accuracy: %s", res["best_val_acc"][0])
            logger.info("Best genotype: %s", res["best_genotype"][0])
            logger.info("wrote %s", json_path)
    finally:
        cleanup(ctx)
    return 0


# Tests set _TEST_HOOK["after_eval"] = fn(n_completed) to simulate a kill after k evaluations.
_TEST_HOOK: dict[str, Callable[[int], None]] = {}


def _sanity(history: list[dict]) -> None:
    bad = [h["index"] for h in history if not math.isfinite(h["value"])]
    if bad:
        raise NASError(f"non-finite scores at evaluations {bad[:5]}")




# ============================================================================= parse_json.py helpers


def load_run(path: str | Path) -> dict:
    """A run JSON with its encoding resolved; clear errors for missing keys."""
    from nas.io import read_json

    run = read_json(path)
    if not isinstance(run, dict):
        raise NASError(f"{path}: not a run JSON object")
    missing = [k for k in ("val_acc", "sample", "best_genotype") if k not in run]
    if missing or not run["val_acc"]:
        raise NASError(f"{path}: not a search run (missing or empty: {', '.join(missing) or 'val_acc'})")
    meta = run.get("run_metadata", {})
    enc = meta.get("encoding")
    if enc is None:  # a JSON written by BPE itself: 28-entry supernet samples
        enc = "s5-bpe" if len(run["sample"][0]) == 28 else None
    run["bpe_encoding"] = bool(enc and enc.endswith("-bpe"))
    if run["bpe_encoding"]:
        run["encoding_obj"] = make_encoding(enc[: -len("-bpe")], "bpe")
    run["path"] = str(path)
    return run


def rl_choose_by_prob(run: dict) -> str:
    """BPE ``RL_choose_by_prob``: best sample, per node keep the two inputs whose policy is most certain."""
    import numpy as np

    enc: BPECellEncoding = run["encoding_obj"]
    val = list(run["val_acc"])
    if len(val) > 1:
        val[0] = float("-inf")  # BPE drops the first evaluation ("remove the invalid value")
    index = int(np.argmax(val))
    if not run.get("optim_prob") or not run["optim_prob"][index]:
        raise NASError(f"{run['path']}: no optim_prob for evaluation {index}; was it written by run_rl.py?")
    prob = np.array([max(p) for p in run["optim_prob"][index]])
    sample = run["sample"][index]
    keep = [False] * len(sample)
    for c in range(2):
        for k in range(N_NODES):
            pos = [c * enc.n_edges + edge_index(k, s) for s in range(k + 2)]
            # two largest, first occurrence wins ties (np.argmax in BPE)
            for p in sorted(pos, key=lambda q: (-prob[q], q))[:2]:
                keep[p] = True
    geno = enc.decode(sample, keep)
    lines = [f"# index: {index}", f"# sample: {sample}", f"# best genotype: {run['best_genotype']}",
             f"# keep: {[int(x) for x in keep]}", "# new genotype:", format_genotype(geno)]
    return "\n".join(lines)


def ea_sample_cells(run: dict, *, number: int = 10, seed: int | None = None, saveto: str | Path | None = None
                    ) -> list[str]:
    """BPE ``Evolution_choose_randomly``: ``number`` two-input cells drawn from the best supernet genotype."""
    from nas.io import atomic_write_text

    enc: BPECellEncoding = run["encoding_obj"]
    val = run["val_acc"]
    index = max(range(len(val)), key=lambda i: val[i])
    sample = run["sample"][index]
    rng = random.Random(seed)
    out = []
    for _ in range(number):
        keep = []
        for _c in range(2):
            for k in range(N_NODES):
                # drop k of the node's k+2 inputs at random, as BPE's get_mask_for_cell
                drop = set(rng.sample(range(k + 2), k))
                keep += [s not in drop for s in range(k + 2)]
        out.append(format_genotype(enc.decode(sample, keep)))
    if saveto is not None:
        atomic_write_text(saveto, "".join(g + "\n" for g in out))
    return out


def plot_curve(run: dict, method: str, png: str | Path) -> None:
    """PNG of the baseline reward (RL, BPE ``plt_reward_of_RL``) or the best-so-far value (EA/RS)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    if method == "RL" and run.get("baseline_reward") and run["baseline_reward"][0] is not None:
        ys, label = run["baseline_reward"], "baseline reward"
    else:
        ys, best = [], float("-inf")
        for v in run["val_acc"]:
            best = max(best, v)
            ys.append(best)
        label = "best so far"
    ax.plot(range(len(ys)), ys)
    ax.set_xlabel("evaluation")
    ax.set_ylabel(label)
    ax.set_title(Path(run["path"]).name)
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)
