"""PertNAS (Ahmad et al., "Discrete Architectural Perturbations for NAS"): a population of discrete
models, each growing its cell decision by decision with perturb-val.

One population member (``search_member``) follows PertNAS ``search_evolutionary.py``:

1. *expand*: start from one random op per edge (``_init_switches``, op_cap=1) plus 'none'; for each
   edge in the member's edge order, give that edge every candidate op, train a fresh network, and
   score each op by perturb-val: the validation accuracy after removing it (and fine-tuning a few
   steps) minus the accuracy before. The scores fill a 14 x ops valuation matrix.
2. *fine*: keep the two most important ops per edge (``coarse_grained_op_select``), then edge by edge
   in PertNAS' fixed order train, perturb and keep the single most important op
   (``fine_grained_op_select``); finally drop 'none'.
3. *topology*: node by node (random order over nodes 1-3; node 0 has only two inputs) train, perturb
   each input edge and keep the two whose removal hurts most (``discretize_node``).
4. *final*: train the discrete cell once more and report its validation accuracy.

Every decision is a "step": build a fresh network from the current switches (PertNAS does not carry
weights across decisions), train it, perturb, decide, and write the member's state atomically, so a
killed member resumes at its last decision. Steps are seeded by (member seed, step index) so that a
resumed member makes the same decisions as an uninterrupted one.

Deviations from the original, on purpose: candidate ops are the 7 DARTS ops (PertNAS' list adds
'sep_conv_7x7' and repeats 'dil_conv_5x5', which NAS-Bench-301 and the DARTS evaluation space do
not have); perturb-val restores a deep copy of the weights before each op's fine-tune (the original
backs up ``model.state_dict()`` by reference, so its fine-tunes accumulate across ops); every member
runs all phases and the population's best cell (validation accuracy) is reported, where the
original averages the members' valuation matrices and runs phases 2-3 once on rank 0.
"""

from __future__ import annotations

import copy
import itertools
import logging
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from genotypes import PRIMITIVES, Genotype, format_genotype, make_genotype
from models.pertnas_net import N_EDGES, N_NODES, PertNASNetwork, edge_inputs, node_edges
from nas.io import atomic_write_json, read_json
from nas.train import evaluate as evaluate_loader
from nas.train import train_epoch

log = logging.getLogger(__name__)

CANDIDATE_OPS: tuple[str, ...] = tuple(op for op in PRIMITIVES if op != "none")
# PertNAS' fixed edge order for fine-grained op selection (search_evolutionary.py).
FINE_ORDER: tuple[int, ...] = (13, 12, 8, 11, 7, 4, 9, 10, 5, 6, 2, 3, 0, 1)


@dataclass(frozen=True)
class PertNASConfig:
    """Search hyperparameters; defaults are PertNAS' (batch 256, lr 0.2176 cosine to 0.001, ...)."""

    init_channels: int = 16
    layers: int = 5
    batch_size: int = 256
    lr: float = 0.2176
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    epochs_per_step: int = 5  # PertNAS' _perturb_every / _greedy_select_train_epochs / _perturb_every_op_top
    finetune_steps: int = 50
    # extra fine-tune steps per phase: expand +20, fine +80, topology +130 (search_evolutionary.py)
    finetune_extra: tuple[int, int, int] = (20, 80, 130)
    op_cap: int = 1
    ops: tuple[str, ...] = CANDIDATE_OPS
    amp: bool = True  # only on CUDA
    max_train_steps: int | None = None  # cap on steps per training epoch (tiny CPU runs)

    def __post_init__(self) -> None:
        bad = [op for op in self.ops if op not in CANDIDATE_OPS]
        if bad:
            raise ValueError(f"unknown candidate ops {bad}; allowed: {', '.join(CANDIDATE_OPS)}")
        if not 1 <= self.op_cap <= len(self.ops):
            raise ValueError(f"--op_cap must be in 1..{len(self.ops)}, got {self.op_cap}")
        for name in ("epochs_per_step", "batch_size", "layers", "init_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}")
        if self.finetune_steps < 0 or min(self.finetune_extra) < 0 or len(self.finetune_extra) != 3:
            raise ValueError("--finetune_steps and the three --finetune_extra values must be >= 0")


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
    """PertNAS ``_init_switches``: per edge ``op_cap`` random op indices (sorted) plus 'none' (-1)."""
    return [sorted(rng.sample(range(n_ops), op_cap)) + [-1] for _ in range(N_EDGES)]


def coarse_select(valuation: np.ndarray, keep: int = 2) -> list[list[int]]:
    """PertNAS ``coarse_grained_op_select``: the ``keep`` ops with the lowest (most harmful) scores + 'none'."""
    return [sorted(np.argsort(row, kind="stable")[:keep].tolist()) + [-1] for row in valuation]


def fine_select(scores: Sequence[float], ops: Sequence[int]) -> list[int]:
    """PertNAS ``fine_grained_op_select``: the one op whose removal lowers accuracy most, plus 'none'."""
    return [int(ops[int(np.argsort(np.asarray(scores), kind="stable")[0])]), -1]


def node_select(scores: dict[int, float], node: int) -> list[int]:
    """PertNAS ``discretize_node``: the two input edges of ``node`` whose removal hurts most."""
    edges = list(node_edges(node))
    vals = np.asarray([scores[e] for e in edges])
    return sorted(edges[i] for i in np.argsort(vals, kind="stable")[:2])


def switch_names(switches: Sequence[Sequence[int]], ops: Sequence[str]) -> list[list[str]]:
    """Op indices (-1 = 'none') to op names for the network."""
    return [[("none" if i < 0 else ops[i]) for i in sw] for sw in switches]


def to_genotype(switches: Sequence[Sequence[int]], ops: Sequence[str]) -> Genotype:
    """PertNAS ``topology_to_genotype``: kept edges per node; the reduction cell is the normal cell."""
    nodes = []
    for node in range(N_NODES):
        pairs = [(ops[switches[e][0]], edge_inputs(e)[1]) for e in node_edges(node) if switches[e][0] >= 0]
        nodes.append(pairs)
    return make_genotype(nodes, nodes)


# ----------------------------------------------------------------------------- training pieces


def _amp_dtype(device: torch.device, cfg: PertNASConfig) -> torch.dtype | None:
    # PertNAS trains under torch.cuda.amp.autocast (float16 + GradScaler); on CPU we stay in float32.
    return torch.float16 if cfg.amp and device.type == "cuda" else None


def _batches(loader: Iterable, epoch: int, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One pass of ``loader`` on ``device`` with flat int64 labels (FFCV yields [B, 1] labels)."""
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)  # TensorLoader: draws depend on (seed, epoch) only, so resumes match
    for x, y in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True).long().view(-1)


def _cycled(loader: Iterable, epoch_key: int, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Passes epoch_key, epoch_key + 1, ... one after another, until a pass yields nothing."""
    for rounds in itertools.count():
        any_batch = False
        for batch in _batches(loader, epoch_key + rounds, device):
            any_batch = True
            yield batch
        if not any_batch:
            return


def train_steps(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                *, device: torch.device, amp: torch.dtype | None, max_steps: int | None, epoch_key: int) -> dict:
    """One pass over ``loader``, or exactly ``max_steps`` steps cycling epochs: PertNAS ``train``, run by the
    toolkit's one training loop (no gradient clipping, as PertNAS)."""
    batches = (_batches(loader, epoch_key, device) if max_steps is None
               else itertools.islice(_cycled(loader, epoch_key, device), max_steps))
    return train_epoch(model, batches, optimizer, grad_clip=0.0, amp=amp,
                       scaler=scaler if scaler.is_enabled() else None)


def evaluate(model: nn.Module, loader: Iterable, *, device: torch.device, amp: torch.dtype | None) -> dict:
    """Validation loss and top-1 accuracy (percent): PertNAS ``infer``, via nas.train.evaluate."""
    return evaluate_loader(model, _batches(loader, 0, device), amp=amp)


def _sgd(model: nn.Module, lr: float, cfg: PertNASConfig) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def perturb_val(model: PertNASNetwork, optimizer: torch.optim.Optimizer, data: SearchData,
                targets: Sequence[tuple[int, int]], *, finetune_steps: int, device: torch.device,
                amp: torch.dtype | None, epoch_key: int) -> tuple[float, list[float]]:
    """PertNAS ``perturb_val``: accuracy change when each (edge, op slot) is removed and fine-tuned briefly.

    Negative = removing the op hurts = the op matters. Weights and optimizer state are restored from a
    deep copy before each op and at the end.
    """
    sd = copy.deepcopy(model.state_dict())
    osd = copy.deepcopy(optimizer.state_dict())
    before = evaluate(model, data.valid, device=device, amp=amp)["acc"]
    diffs = []
    for k, (edge, slot) in enumerate(targets):
        model.set_op(edge, slot, False)
        if finetune_steps:
            model.load_state_dict(sd)
            optimizer.load_state_dict(copy.deepcopy(osd))
            scaler = torch.amp.GradScaler(device.type, enabled=amp is not None)
            train_steps(model, data.train, optimizer, scaler, device=device, amp=amp, max_steps=finetune_steps,
                        epoch_key=epoch_key + 17 * (k + 1))
        after = evaluate(model, data.valid, device=device, amp=amp)["acc"]
        model.set_op(edge, slot, True)
        diffs.append(after - before)
    model.load_state_dict(sd)
    optimizer.load_state_dict(osd)
    return before, diffs


# ----------------------------------------------------------------------------- one member


def new_member_state(member: int, seed: int, cfg: PertNASConfig) -> dict[str, Any]:
    """The starting state of population member ``member``: its seed, initial ops and edge order."""
    rng = random.Random(seed)
    switches = init_switches(rng, len(cfg.ops), cfg.op_cap)
    expand_order = list(range(N_EDGES))
    node_order = [1, 2, 3]
    if member > 0:  # member 0 keeps PertNAS' edge order 0..13; the others differ by edge order too
        rng.shuffle(expand_order)
    rng.shuffle(node_order)  # PertNAS: random.choice over the remaining nodes
    return {"member": member, "seed": seed, "phase": "expand", "step": 0, "pos": 0, "switches": switches,
            "store": None, "expand_order": expand_order, "fine_order": list(FINE_ORDER), "node_order": node_order,
            "valuation": np.zeros((N_EDGES, len(cfg.ops))).tolist(), "scores": [], "history": [],
            "ops": list(cfg.ops)}


def _train_fresh(state: dict, cfg: PertNASConfig, data: SearchData, device: torch.device, lr: float,
                 writer=None) -> tuple[PertNASNetwork, torch.optim.Optimizer, dict]:
    """Build a network from the current switches and train it ``epochs_per_step`` epochs (cosine to lr_min)."""
    seed = state["seed"] * 1000 + state["step"]
    torch.manual_seed(seed)
    model = PertNASNetwork(switch_names(state["switches"], cfg.ops), C=cfg.init_channels, n_classes=data.n_classes,
                           layers=cfg.layers, in_channels=data.in_channels).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    amp = _amp_dtype(device, cfg)
    opt = _sgd(model, lr, cfg)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, float(cfg.epochs_per_step), eta_min=cfg.lr_min)
    scaler = torch.amp.GradScaler(device.type, enabled=amp is not None)
    rec: dict[str, Any] = {}
    for ep in range(cfg.epochs_per_step):
        tr = train_steps(model, data.train, opt, scaler, device=device, amp=amp, max_steps=cfg.max_train_steps,
                         epoch_key=seed * 100 + ep)
        sched.step()
        rec = {"train_loss": tr["loss"], "train_acc": tr["acc"], "train_seconds": tr["seconds"]}
    va = evaluate(model, data.valid, device=device, amp=amp)
    rec.update(valid_loss=va["loss"], valid_acc=va["acc"], step=state["step"], phase=state["phase"])
    if writer is not None:
        for k in ("train_loss", "train_acc", "valid_loss", "valid_acc"):
            writer.add_scalar(f"step/{k}", rec[k], state["step"])
    return model, opt, rec


def run_step(state: dict, cfg: PertNASConfig, data: SearchData, device: torch.device, writer=None) -> dict:
    """Make one decision of a member (see module docstring) and return its new state."""
    state = copy.deepcopy(state)
    amp = _amp_dtype(device, cfg)
    phase, pos = state["phase"], state["pos"]
    ft = cfg.finetune_steps
    key = state["seed"] * 100003 + state["step"] * 101
    sw = state["switches"]
    if phase == "expand":
        edge = state["expand_order"][pos]
        if state["store"] is not None:  # PertNAS update_switches: the previous edge gets its own ops back
            sw[state["store"]["edge"]] = state["store"]["ops"]
        state["store"] = {"edge": edge, "ops": sw[edge]}
        sw[edge] = list(range(len(cfg.ops))) + [-1]
        model, opt, rec = _train_fresh(state, cfg, data, device, cfg.lr / 2.5, writer)
        slots = list(range(len(cfg.ops)))
        before, diffs = perturb_val(model, opt, data, [(edge, s) for s in slots],
                                    finetune_steps=ft + cfg.finetune_extra[0], device=device, amp=amp, epoch_key=key)
        for s, d in zip(slots, diffs):
            state["valuation"][edge][s] = d
        state["scores"].append({"phase": phase, "step": state["step"], "edge": edge, "acc_before": before,
                                "ops": [cfg.ops[s] for s in slots], "diffs": diffs})
        state["pos"] += 1
        if state["pos"] == N_EDGES:
            state.update(phase="fine", pos=0, store=None)
            state["switches"] = coarse_select(np.asarray(state["valuation"]))
    elif phase == "fine":
        edge = state["fine_order"][pos]
        # the first training after coarse selection runs at lr/3 (PertNAS _greedy_select), later ones at lr/2.5
        model, opt, rec = _train_fresh(state, cfg, data, device, cfg.lr / (3.0 if pos == 0 else 2.5), writer)
        real = [i for i in sw[edge] if i >= 0]
        before, diffs = perturb_val(model, opt, data, [(edge, s) for s in range(len(real))],
                                    finetune_steps=ft + cfg.finetune_extra[1], device=device, amp=amp, epoch_key=key)
        sw[edge] = fine_select(diffs, real)
        state["scores"].append({"phase": phase, "step": state["step"], "edge": edge, "acc_before": before,
                                "ops": [cfg.ops[i] for i in real], "diffs": diffs,
                                "kept": cfg.ops[sw[edge][0]]})
        state["pos"] += 1
        if state["pos"] == N_EDGES:
            state["switches"] = [[i for i in s if i >= 0] for s in sw]  # drop 'none' (switches[:-1])
            state.update(phase="topology", pos=0)
    elif phase == "topology":
        node = state["node_order"][pos]
        model, _, rec = _train_fresh(state, cfg, data, device, cfg.lr / 2.5, writer)
        # PertNAS perturbs here with a fresh optimizer at lr/2.5; only this node's edges decide, so only
        # they are scored (the original scores all 14 edges and reads this node's rows).
        opt = _sgd(model, cfg.lr / 2.5, cfg)
        edges = list(node_edges(node))
        before, diffs = perturb_val(model, opt, data, [(e, 0) for e in edges],
                                    finetune_steps=ft + cfg.finetune_extra[2], device=device, amp=amp, epoch_key=key)
        keep = node_select(dict(zip(edges, diffs)), node)
        for e in edges:
            if e not in keep:
                sw[e] = [-1]
        state["scores"].append({"phase": phase, "step": state["step"], "node": node, "acc_before": before,
                                "edges": edges, "ops": [cfg.ops[state["switches"][e][0]] for e in edges],
                                "diffs": diffs, "kept_edges": keep})
        state["pos"] += 1
        if state["pos"] == len(state["node_order"]):
            state.update(phase="final", pos=0)
    elif phase == "final":
        _, _, rec = _train_fresh(state, cfg, data, device, cfg.lr / 2.5, writer)
        state["valid_acc"] = rec["valid_acc"]
        state["genotype"] = format_genotype(to_genotype(sw, cfg.ops))
        state["phase"] = "done"
    else:
        raise ValueError(f"member state has unknown phase {phase!r}")
    rec["decision"] = phase
    state["history"].append(rec)
    state["step"] += 1
    return state


def n_steps(state: dict) -> int:
    """Total decisions of a member: 14 expand + 14 fine + 3 topology + 1 final."""
    return 2 * N_EDGES + len(state["node_order"]) + 1


def search_member(member: int, seed: int, cfg: PertNASConfig, data: SearchData, device: torch.device,
                  member_dir: Path, *, writer=None, stop_after: int | None = None, on_step=None) -> dict | None:
    """Run (or resume) one member to the end; returns its state when done, None if stopped early."""
    state_path = member_dir / "state.json"
    if state_path.exists():
        state = read_json(state_path)
        if state.get("ops") != list(cfg.ops):
            raise ValueError(f"{state_path}: saved with ops {state.get('ops')}, not {list(cfg.ops)}")
        log.info("member %d: resuming at step %d (%s)", member, state["step"], state["phase"])
    else:
        state = new_member_state(member, seed, cfg)
        atomic_write_json(state_path, state)
    done_now = 0
    while state["phase"] != "done":
        if stop_after is not None and done_now >= stop_after:
            return None
        t0 = time.time()
        state = run_step(state, cfg, data, device, writer)
        atomic_write_json(state_path, state)
        done_now += 1
        last = state["scores"][-1] if state["scores"] and state["phase"] != "done" else None
        log.info("member %d step %d/%d %s: valid acc %.2f%% (%.1fs)%s", member, state["step"], n_steps(state),
                 state["history"][-1]["decision"], state["history"][-1]["valid_acc"], time.time() - t0,
                 f" diffs {np.round(last['diffs'], 2).tolist()}" if last else "")
        if on_step is not None:
            on_step(state)
    return state


def member_result(state: dict, cfg: PertNASConfig) -> dict[str, Any]:
    """The per-member results record: genotype (normal = reduce), accuracy, every perturbation score."""
    return {"member": state["member"], "seed": state["seed"], "genotype": state["genotype"],
            "valid_acc": state["valid_acc"], "expand_order": state["expand_order"],
            "node_order": state["node_order"], "ops": list(cfg.ops), "valuation_matrix": state["valuation"],
            "final_switches": state["switches"], "perturbation_scores": state["scores"],
            "history": state["history"], "search_config": asdict(cfg)}


# ----------------------------------------------------------------------------- NAS-Bench-301


def nb301_score(genotype: Genotype, models_dir: str | Path | None) -> tuple[float | None, str]:
    """Predicted CIFAR-10 accuracy from the NAS-Bench-301 XGB surrogate, or None and the reason why not."""
    try:
        import nasbench301 as nb  # optional: pip install nasbench301 (github.com/automl/nasbench301)
    except ImportError:
        return None, "nasbench301 is not installed"
    if models_dir is None:
        return None, "no --nb301_models folder given (the nb_models_1.0 download, holding xgb_v1.0)"
    path = Path(models_dir).expanduser()
    cand = [path / "xgb_v1.0", path / "xgb_v0.9", path]
    ens = next((p for p in cand if (p / "model_config.json").exists() or (p / "surrogate_model_0.model").exists()),
               None)
    if ens is None:
        ens = next((p for p in cand if p.is_dir() and p.name.startswith("xgb")), None)
    if ens is None:
        return None, f"no xgb_v1.0 surrogate folder under {path}"
    from collections import namedtuple

    # nasbench301 reads a DARTS-style namedtuple with flat edge lists
    NBGenotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")
    flat = [tuple(e) for node in genotype.normal for e in node]
    flat_r = [tuple(e) for node in genotype.reduce for e in node]
    g = NBGenotype(flat, list(genotype.normal_concat), flat_r, list(genotype.reduce_concat))
    model = nb.load_ensemble(str(ens))
    return float(model.predict(config=g, representation="genotype", with_noise=False)), str(ens)
