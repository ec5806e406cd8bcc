"""PertNAS' decisions (afzalxo/PertNAS ``search_evolutionary.py``, "SE" below): selection rules,
perturb-val, and one decision ("step") of a member or of the shared selection.

A step builds a fresh network from the current switches (SE 198, 286, 317: weights are never carried
across decisions), trains it ``epochs_per_step`` epochs with cosine to ``lr_min``, scores ops by
perturb-val, decides, and returns the new state. States are plain JSON, written after every step, so a
killed run resumes at its last decision; every random draw of a step is seeded by
``child_seed(train_seed, "step", step)``, so a resumed run makes the decisions of an uninterrupted one.

Phases: ``expand`` (one edge per step in the fixed order 0..13, SE 173/188: the edge holds every op,
each op is scored into the 14 x ops valuation matrix), ``fine`` (after the top-2 coarse selection, one
op per edge in SE 266's fixed order), ``topology`` (two inputs per node, nodes 1-3 in a random order),
and, for independent members only, ``final`` (one more training to rank members; not in PertNAS).
"""

from __future__ import annotations

import copy
import itertools
import logging
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from genotypes import PRIMITIVES, Genotype, format_genotype, make_genotype
from models.pertnas_net import N_EDGES, N_NODES, PertNASNetwork, edge_inputs, node_edges
from nas.errors import ConfigError, NASError
from nas.seeds import child_seed
from nas.train import evaluate as evaluate_loader
from nas.train import train_epoch

log = logging.getLogger(__name__)

# The 7 DARTS ops (``--ops darts``): what NAS-Bench-301 and the DARTS evaluation space hold.
CANDIDATE_OPS: tuple[str, ...] = tuple(op for op in PRIMITIVES if op != "none")
# PertNAS' own list (extras/genotypes.py 5-15, ``--ops pertnas``): sep_conv_7x7 added, dil_conv_5x5 twice
# (indices 7 and 8 are two modules with their own weights; both map to the genotype op 'dil_conv_5x5').
PERTNAS_OPS: tuple[str, ...] = ("skip_connect", "max_pool_3x3", "avg_pool_3x3", "sep_conv_3x3", "sep_conv_5x5",
                                "sep_conv_7x7", "dil_conv_3x3", "dil_conv_5x5", "dil_conv_5x5")
OP_LISTS: dict[str, tuple[str, ...]] = {"pertnas": PERTNAS_OPS, "darts": CANDIDATE_OPS}
# SE 266: the fixed edge order of fine-grained op selection.
FINE_ORDER: tuple[int, ...] = (13, 12, 8, 11, 7, 4, 9, 10, 5, 6, 2, 3, 0, 1)
RESTORE_MODES = ("copy", "alias")


@dataclass(frozen=True)
class PertNASConfig:
    """Search hyperparameters; the defaults are PertNAS' (SE 44-68 and its constants)."""

    init_channels: int = 16
    layers: int = 5
    batch_size: int = 256
    lr: float = 0.2176  # used as lr/2.5 (expand, fine, topology) and lr/3 (coarse retrain), SE 207/260/295/301
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    epochs_per_step: int = 5  # SE 179-181: _perturb_every = _greedy_select_train_epochs = _perturb_every_op_top = 5
    finetune_steps: int = 50
    finetune_extra: tuple[int, int, int] = (20, 80, 130)  # SE 211, 270, 303: +20, +80, +130
    op_cap: int = 1
    ops: tuple[str, ...] = PERTNAS_OPS
    amp: bool = True  # only on CUDA (SE trains and infers under autocast + GradScaler)
    max_train_steps: int | None = None  # cap on steps per training epoch (tiny CPU runs)
    perturb_restore: str = "copy"  # 'alias' restores SE 364's aliasing bug (weights never restored)

    def __post_init__(self) -> None:
        allowed = sorted(set(PERTNAS_OPS) | set(CANDIDATE_OPS))
        bad = [op for op in self.ops if op not in allowed]
        if bad:
            raise ConfigError(f"unknown candidate ops {bad}; allowed: {', '.join(allowed)}")
        if not 1 <= self.op_cap <= len(self.ops):
            raise ConfigError(f"--op_cap must be in 1..{len(self.ops)}, got {self.op_cap}")
        for name in ("epochs_per_step", "batch_size", "layers", "init_channels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be positive, got {getattr(self, name)}")
        if self.finetune_steps < 0 or len(self.finetune_extra) != 3 or min(self.finetune_extra) < 0:
            raise ConfigError("--finetune_steps and the three --finetune_extra values must be >= 0")
        if self.perturb_restore not in RESTORE_MODES:
            raise ConfigError(f"unknown --perturb_restore {self.perturb_restore!r}; allowed: "
                              f"{', '.join(RESTORE_MODES)}")


@dataclass
class SearchData:
    """Train and validation loaders (TensorLoader or FFCV), each iteration one epoch on the device."""

    train: Iterable
    valid: Iterable
    n_classes: int
    in_channels: int = 3
    source: str = "tensor"
    extras: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- selection rules


def init_switches(rng: random.Random, n_ops: int, op_cap: int = 1) -> list[list[int]]:
    """SE 549-556 ``_init_switches``: per edge ``op_cap`` random op indices (sorted) plus 'none' (-1, SE's 100)."""
    return [sorted(rng.sample(range(n_ops), op_cap)) + [-1] for _ in range(N_EDGES)]


def coarse_select(valuation: np.ndarray, keep: int = 2) -> list[list[int]]:
    """SE 432-434: the ``keep`` ops with the lowest (most harmful to remove) scores, plus 'none'."""
    # numpy sorts <= 16 items by insertion sort, so SE's default argsort is this stable one
    return [sorted(np.argsort(row, kind="stable")[:keep].tolist()) + [-1] for row in np.asarray(valuation)]


def fine_select(scores: Sequence[float], ops: Sequence[int]) -> list[int]:
    """SE 441-447: the one op whose removal lowers accuracy most, plus 'none'."""
    return [int(ops[int(np.argsort(np.asarray(scores), kind="stable")[0])]), -1]


def node_select(scores: dict[int, float], node: int) -> list[int]:
    """SE 458-485 ``discretize_node``: the two input edges of ``node`` whose removal hurts most."""
    edges = list(node_edges(node))
    vals = np.asarray([scores[e] for e in edges])
    return sorted(edges[i] for i in np.argsort(vals, kind="stable")[:2])


def switch_names(switches: Sequence[Sequence[int]], ops: Sequence[str]) -> list[list[str]]:
    """Op indices (-1 = 'none') to op names for the network."""
    return [[("none" if i < 0 else ops[i]) for i in sw] for sw in switches]


def to_genotype(switches: Sequence[Sequence[int]], ops: Sequence[str]) -> Genotype:
    """SE 411-430: kept edges per node by op name (a duplicated name is one genotype op); reduce = normal."""
    nodes = []
    for node in range(N_NODES):
        nodes.append([(ops[switches[e][0]], edge_inputs(e)[1]) for e in node_edges(node) if switches[e][0] >= 0])
    return make_genotype(nodes, nodes)


# ----------------------------------------------------------------------------- training pieces


def _amp_dtype(device: torch.device, cfg: PertNASConfig) -> torch.dtype | None:
    # SE 499/532: torch.cuda.amp.autocast (float16 + GradScaler); on CPU we stay in float32.
    return torch.float16 if cfg.amp and device.type == "cuda" else None


def _batches(loader: Iterable, epoch: int, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One pass of ``loader`` on ``device`` with flat int64 labels (FFCV yields [B, 1] labels)."""
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)  # TensorLoader: draws depend on (seed, epoch) only, so resumes match
    for x, y in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True).long().view(-1)


def _cycled(loader: Iterable, epoch_key: int, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Passes over ``loader`` one after another (fresh draws each), until a pass yields nothing."""
    for rounds in itertools.count():
        any_batch = False
        for batch in _batches(loader, child_seed(epoch_key, "round", rounds) if rounds else epoch_key, device):
            any_batch = True
            yield batch
        if not any_batch:
            return


def train_steps(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                *, device: torch.device, amp: torch.dtype | None, max_steps: int | None, epoch_key: int) -> dict:
    """One pass over ``loader``, or exactly ``max_steps`` updates cycling passes: SE 487-518 ``train`` through
    the toolkit's one training loop (no gradient clipping: SE never uses --grad_clip)."""
    batches = (_batches(loader, epoch_key, device) if max_steps is None
               else itertools.islice(_cycled(loader, epoch_key, device), max_steps))
    return train_epoch(model, batches, optimizer, grad_clip=0.0, amp=amp,
                       scaler=scaler if scaler.is_enabled() else None)


def evaluate(model: nn.Module, loader: Iterable, *, device: torch.device, amp: torch.dtype | None) -> dict:
    """Validation loss and top-1 accuracy (percent), eval-mode BN: SE 520-547 ``infer``."""
    return evaluate_loader(model, _batches(loader, 0, device), amp=amp)


def _sgd(model: nn.Module, lr: float, cfg: PertNASConfig) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def perturb_val(model: PertNASNetwork, optimizer: torch.optim.Optimizer, data: SearchData,
                targets: Sequence[tuple[int, int]], *, finetune_steps: int, device: torch.device,
                amp: torch.dtype | None, epoch_key: int, restore: str = "copy") -> tuple[float, list[float]]:
    """SE 359-409: accuracy change (points) when each (edge, op slot) is switched off and fine-tuned.

    Negative = removing the op hurts = the op matters. ``acc_before`` is measured once (SE 367). Each
    fine-tune makes ``finetune_steps + 1`` updates: SE's ``train(partial=True)`` breaks only after the
    step where ``step >= finetune_steps`` (SE 514-515); none when ``finetune_steps`` is 0 (SE 395).
    ``restore='copy'`` restores weights, BN statistics and optimizer state from a deep copy before each
    op and at the end. ``'alias'`` reproduces SE: ``model.state_dict()`` aliases the live tensors, so the
    weights are never restored and the fine-tunes accumulate across ops; the optimizer state is restored
    from its first snapshot, as torch 1.12 (SE's pin) deep-copies it in ``Optimizer.load_state_dict``.
    """
    sd = copy.deepcopy(model.state_dict()) if restore == "copy" else None
    osd = copy.deepcopy(optimizer.state_dict())
    before = evaluate(model, data.valid, device=device, amp=amp)["acc"]
    scaler = torch.amp.GradScaler(device.type, enabled=amp is not None)  # one per call, as SE 368
    diffs = []
    for k, (edge, slot) in enumerate(targets):
        model.set_op(edge, slot, False)
        if finetune_steps:
            if sd is not None:
                model.load_state_dict(sd)
            optimizer.load_state_dict(copy.deepcopy(osd))
            train_steps(model, data.train, optimizer, scaler, device=device, amp=amp, max_steps=finetune_steps + 1,
                        epoch_key=child_seed(epoch_key, "op", k))
        after = evaluate(model, data.valid, device=device, amp=amp)["acc"]
        model.set_op(edge, slot, True)
        diffs.append(after - before)
    if sd is not None:
        model.load_state_dict(sd)
    optimizer.load_state_dict(osd)
    return before, diffs


# ----------------------------------------------------------------------------- states and steps


def new_member_state(member: int, seed: int, cfg: PertNASConfig, *, shared: bool, train_seed: int) -> dict[str, Any]:
    """A population member's starting state: its initial ops (from ``seed``) and orders.

    ``shared`` members only expand (their valuation matrices are averaged, SE 217-231); independent
    members run every phase themselves and also differ in edge order (member > 0) and training seeds.
    """
    rng = random.Random(seed)  # SE leaves Python's random unseeded (a different cell per process); we seed it
    switches = init_switches(rng, len(cfg.ops), cfg.op_cap)
    expand_order = list(range(N_EDGES))  # SE 173/188: every member expands edges 0..13 in this order
    if not shared and member > 0:
        rng.shuffle(expand_order)
    node_order = _node_order(rng)
    return {"mode": "member" if shared else "independent", "member": member, "seed": seed, "train_seed": train_seed,
            "phase": "expand", "step": 0, "pos": 0, "switches": switches, "initial_switches": copy.deepcopy(switches),
            "store": None, "expand_order": expand_order, "fine_order": list(FINE_ORDER), "node_order": node_order,
            "valuation": np.zeros((N_EDGES, len(cfg.ops))).tolist(), "scores": [], "history": [],
            "ops": list(cfg.ops)}


def new_selection_state(seed: int, valuation: np.ndarray, cfg: PertNASConfig, members: int) -> dict[str, Any]:
    """The shared selection (SE 237-330, rank 0 only) from the population's mean valuation matrix."""
    rng = random.Random(child_seed(seed, "selection"))
    return {"mode": "selection", "member": None, "members": members, "seed": seed, "train_seed": seed,
            "phase": "fine", "step": N_EDGES, "pos": 0, "switches": coarse_select(valuation), "store": None,
            "expand_order": [], "fine_order": list(FINE_ORDER), "node_order": _node_order(rng),
            "valuation": np.asarray(valuation).tolist(), "scores": [], "history": [], "ops": list(cfg.ops)}


def _node_order(rng: random.Random) -> list[int]:
    nodes, order = [1, 2, 3], []  # SE 174: node 0 has only two inputs and is never discretised
    while nodes:
        order.append(nodes.pop(nodes.index(rng.choice(nodes))))  # SE 305: random.choice over the rest
    return order


def n_steps(state: dict) -> int:
    """Decisions of a state's whole life: 14 (member), 14 + 3 (selection), 14 + 14 + 3 + 1 (independent)."""
    last = {"member": N_EDGES, "selection": 2 * N_EDGES + len(state["node_order"])}
    return last.get(state["mode"], 2 * N_EDGES + len(state["node_order"]) + 1)


def _train_fresh(state: dict, cfg: PertNASConfig, data: SearchData, device: torch.device, lr: float,
                 step_seed: int) -> tuple[PertNASNetwork, torch.optim.Optimizer, dict]:
    """A new network from the current switches, trained ``epochs_per_step`` epochs, cosine to lr_min (SE 332-356)."""
    torch.manual_seed(step_seed)
    model = PertNASNetwork(switch_names(state["switches"], cfg.ops), C=cfg.init_channels, n_classes=data.n_classes,
                           layers=cfg.layers, in_channels=data.in_channels,
                           compute_removed=cfg.perturb_restore == "alias").to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)  # SE 199
    amp = _amp_dtype(device, cfg)
    opt = _sgd(model, lr, cfg)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, float(cfg.epochs_per_step), eta_min=cfg.lr_min)
    scaler = torch.amp.GradScaler(device.type, enabled=amp is not None)  # one per training, SE 333
    rec: dict[str, Any] = {}
    for ep in range(cfg.epochs_per_step):
        tr = train_steps(model, data.train, opt, scaler, device=device, amp=amp, max_steps=cfg.max_train_steps,
                         epoch_key=child_seed(step_seed, "epoch", ep))
        sched.step()
        rec = {"train_loss": tr["loss"], "train_acc": tr["acc"], "train_seconds": tr["seconds"]}
    return model, opt, rec


def run_step(state: dict, cfg: PertNASConfig, data: SearchData, device: torch.device) -> dict:
    """Make one decision (see the module docstring) and return the new state."""
    state = copy.deepcopy(state)
    amp = _amp_dtype(device, cfg)
    phase, pos, sw = state["phase"], state["pos"], state["switches"]
    step_seed = child_seed(state["train_seed"], "step", state["step"])
    key = child_seed(step_seed, "perturb")
    perturb = {"device": device, "amp": amp, "epoch_key": key, "restore": cfg.perturb_restore}
    if phase == "expand":
        edge = state["expand_order"][pos]
        if state["store"] is not None:  # SE 449-456 update_switches: the previous edge gets its own ops back
            sw[state["store"]["edge"]] = state["store"]["ops"]
        state["store"] = {"edge": edge, "ops": sw[edge]}
        sw[edge] = list(range(len(cfg.ops))) + [-1]
        model, opt, rec = _train_fresh(state, cfg, data, device, cfg.lr / 2.5, step_seed)  # SE 207
        slots = list(range(len(cfg.ops)))  # 'none' is not perturbed (include_none=True, SE 389)
        before, diffs = perturb_val(model, opt, data, [(edge, s) for s in slots],
                                    finetune_steps=cfg.finetune_steps + cfg.finetune_extra[0], **perturb)  # SE 211
        for s, d in zip(slots, diffs):
            state["valuation"][edge][s] = d  # SE 436-439
        state["scores"].append({"phase": phase, "step": state["step"], "edge": edge, "acc_before": before,
                                "ops": [cfg.ops[s] for s in slots], "diffs": diffs})
        state["pos"] += 1
        if state["pos"] == N_EDGES:
            state.update(pos=0, store=None)
            if state["mode"] == "member":
                state["phase"] = "expanded"  # the selection runs once, from the population's mean (SE 237)
            else:
                state.update(phase="fine", switches=coarse_select(np.asarray(state["valuation"])))
    elif phase == "fine":
        edge = state["fine_order"][pos]
        # the first training after the coarse selection runs at lr/3 (SE 260), the later ones at lr/2.5 (SE 295)
        model, opt, rec = _train_fresh(state, cfg, data, device, cfg.lr / (3.0 if pos == 0 else 2.5), step_seed)
        real = [i for i in sw[edge] if i >= 0]
        before, diffs = perturb_val(model, opt, data, [(edge, s) for s in range(len(real))],
                                    finetune_steps=cfg.finetune_steps + cfg.finetune_extra[1], **perturb)  # SE 270
        sw[edge] = fine_select(diffs, real)
        state["scores"].append({"phase": phase, "step": state["step"], "edge": edge, "acc_before": before,
                                "ops": [cfg.ops[i] for i in real], "diffs": diffs, "kept": cfg.ops[sw[edge][0]]})
        state["pos"] += 1
        if state["pos"] == N_EDGES:
            state["switches"] = [[i for i in s if i >= 0] for s in sw]  # SE 282-283: drop 'none'
            state.update(phase="topology", pos=0)
    elif phase == "topology":
        node = state["node_order"][pos]
        model, _, rec = _train_fresh(state, cfg, data, device, cfg.lr / 2.5, step_seed)  # SE 295/328
        # SE 301: perturb with a fresh optimizer at lr/2.5 whose scheduler is never stepped (no momentum yet)
        opt = _sgd(model, cfg.lr / 2.5, cfg)
        # SE 303 scores all 14 edges and reads this node's. With restored weights the other edges' scores
        # cannot change this node's, so 'copy' scores only this node's edges; 'alias' keeps SE's order,
        # since there every fine-tune starts from the previous ones.
        edges = list(node_edges(node)) if cfg.perturb_restore == "copy" else list(range(N_EDGES))
        before, diffs = perturb_val(model, opt, data, [(e, 0) for e in edges],
                                    finetune_steps=cfg.finetune_steps + cfg.finetune_extra[2], **perturb)
        names = [switch_names([sw[e]], cfg.ops)[0][0] for e in edges]
        keep = node_select(dict(zip(edges, diffs)), node)
        for e in node_edges(node):
            if e not in keep:
                sw[e] = [-1]
        state["scores"].append({"phase": phase, "step": state["step"], "node": node, "acc_before": before,
                                "edges": edges, "ops": names, "diffs": diffs, "kept_edges": keep})
        state["pos"] += 1
        if state["pos"] == len(state["node_order"]):
            state["pos"] = 0
            state["genotype"] = format_genotype(to_genotype(sw, cfg.ops))  # SE 314
            # SE trains nothing after the last node; independent members train once more to be ranked
            state["phase"] = "final" if state["mode"] == "independent" else "done"
    elif phase == "final":
        model, _, rec = _train_fresh(state, cfg, data, device, cfg.lr / 2.5, step_seed)
        before = evaluate(model, data.valid, device=device, amp=amp)["acc"]
        state["valid_acc"] = before
        state["phase"] = "done"
    else:
        raise NASError(f"state has unknown phase {phase!r} (corrupt state.json); pass --overwrite")
    rec.update(valid_acc=before, step=state["step"], decision=phase)  # acc_before = the trained net's accuracy
    state["history"].append(rec)
    state["step"] += 1
    return state
