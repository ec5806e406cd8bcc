"""Perturbation-based architecture selection (DARTS-PT, Wang et al., ICLR 2021, Alg. 1).

For one edge at a time (random or fixed order) every candidate op is masked out in turn and the
supernet's validation accuracy (or loss) measured; the op whose removal hurts most is kept and the
edge fixed to it. Between decisions the supernet is fine-tuned ``proj_intv`` epochs (weights with SGD
at a tenth of the search lr, alphas still with the architect: ``nasbench201/projection.py``,
``sota/cnn/projection.py``). In the DARTS spaces the ops of all 14 edges of both cells are decided
first, then each node keeps the two inputs whose removal hurts most (whole edges masked).

Schedules follow DARTS-PT: NB201 tunes ``proj_intv * 5`` epochs, deciding at epochs 0, intv, ... and
at the last one; the DARTS spaces tune ``proj_intv * 16 + 1`` epochs with a cosine schedule.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from pathlib import Path
from typing import Any, Callable

import torch

from nas.checkpoint import (
    get_rng_state,
    load_checkpoint,
    python_rng_from_list,
    python_rng_to_list,
    save_checkpoint,
    set_rng_state,
)
from nas.cli import UsageError
from nas.io import atomic_write_json, run_metadata
from nas.supernet_search import (
    Architect,
    BenchmarkLookup,
    SearchConfig,
    build_search_model,
    load_search,
    make_loaders,
    search_epoch,
    supernet_eval,
)

log = logging.getLogger(__name__)

EDGE_DECISIONS = ("random", "fixed")
CRITS = ("acc", "loss")


@dataclasses.dataclass(frozen=True)
class ProjectionConfig:
    """Settings of one projection run (recorded in projection.json, checked on resume)."""

    resume_epoch: int | None = None
    edge_decision: str = "random"
    crit_normal: str = "acc"  # NB201 uses crit_normal for its single cell type
    crit_reduce: str = "acc"
    crit_edge: str = "acc"
    proj_intv: int = 5
    seed: int = 2

    def check(self) -> None:
        if self.edge_decision not in EDGE_DECISIONS:
            raise UsageError(f"unknown --edge_decision {self.edge_decision!r}; allowed: {', '.join(EDGE_DECISIONS)}")
        for name in ("crit_normal", "crit_reduce", "crit_edge"):
            if getattr(self, name) not in CRITS:
                raise UsageError(f"unknown --{name} {getattr(self, name)!r}; allowed: {', '.join(CRITS)}")
        if self.proj_intv < 0:
            raise UsageError(f"--proj_intv must be >= 0, got {self.proj_intv}")


def _worse(crit: str) -> Callable[[dict, dict], bool]:
    """``worse(a, b)``: is perturbation ``a`` more harmful than ``b`` under ``crit``."""
    if crit == "acc":
        return lambda a, b: a["acc"] < b["acc"]
    return lambda a, b: a["loss"] > b["loss"]


def decide_op(model, ct: str, edge: int, evaluate: Callable, crit: str) -> tuple[int, list[dict]]:
    """Mask each op of ``edge`` in turn; return the op whose removal hurts most and all scores."""
    worse = _worse(crit)
    scores, best = [], None
    for k, name in enumerate(model.edge_ops[ct][edge]):
        masks = model.full_masks()
        masks[ct][edge, k] = False
        s = evaluate(masks)
        scores.append({"op": name, "acc": s["acc"], "loss": s["loss"]})
        if best is None or worse(s, scores[best]):
            best = k
    return best, scores


def decide_node_inputs(model, ct: str, node: int, evaluate: Callable, crit: str) -> tuple[list[int], list[dict]]:
    """Drop, one at a time, the input edge whose removal hurts least until two remain (DARTS-PT project_edge)."""
    worse = _worse(crit)
    eids = list(model.node_edges[node])
    rounds = []
    while len(eids) > 2:
        scores, drop = [], None
        for e in eids:
            masks = model.full_masks()
            masks[ct][e, :] = False
            s = evaluate(masks)
            scores.append({"edge": e, "input": model.node_edges[node].index(e), "acc": s["acc"], "loss": s["loss"]})
            if drop is None or not worse(s, scores[drop]):
                drop = len(scores) - 1
        rounds.append({"scores": scores, "dropped": scores[drop]["edge"]})
        eids.remove(scores[drop]["edge"])
    return eids, rounds


def _plan(model, proj_intv: int) -> tuple[int, list[int]]:
    """(tune epochs, epochs at whose start a decision is made), as DARTS-PT's loops."""
    if model.kind == "nb201":
        n_points, tune = model.n_edges, proj_intv * (model.n_edges - 1)
    else:
        n_points = model.n_edges + len(model.node_edges) - 1  # node 0 has only its two inputs
        tune = proj_intv * (n_points - 1) + 1
    if proj_intv == 0:
        return 0, [0]
    points = [e for e in range(tune) if e % proj_intv == 0 or e == tune - 1]
    return tune, points[:n_points]


def run_projection(search_dir: str | Path, pcfg: ProjectionConfig, *, device: torch.device, data=None,
                   benchmark: str | None = None, metric: str = "cifar10_test_acc", out_name: str = "projection",
                   overwrite: bool = False, data_overrides: dict[str, Any] | None = None,
                   logger: logging.Logger | None = None, on_epoch: Callable[[int], None] | None = None) -> dict:
    """Project the supernet saved in ``search_dir``; writes <search_dir>/<out_name>.json and checkpoints."""
    pcfg.check()
    logger = logger or log
    started = time.time()
    search_dir = Path(search_dir)
    cfg, state = load_search(search_dir, epoch=pcfg.resume_epoch, device=device)
    if data_overrides:
        cfg = dataclasses.replace(cfg, **{k: v for k, v in data_overrides.items() if v is not None})
    lookup = BenchmarkLookup(benchmark, metric, cfg.space)
    out_json = search_dir / f"{out_name}.json"
    ckpt_path = search_dir / f"{out_name}_checkpoint.pt"
    if out_json.is_file() and not overwrite and not ckpt_path.is_file():
        raise UsageError(f"{out_json} exists; use --overwrite or another --tag")
    if overwrite and ckpt_path.is_file():
        ckpt_path.unlink()

    if data is None:
        from nas.data import load_dataset

        data = load_dataset(cfg.dataset, cfg.data_path, image_size=cfg.image_size, valid=cfg.train_portion,
                            limit_train=cfg.limit_train, limit_valid=cfg.limit_valid)
    model = build_search_model(cfg, data.n_classes, data.in_channels, device)
    model.load_state_dict(state["model"])
    argmax_arch = str(model.genotype())
    architect = Architect(model, method=cfg.method, lr=cfg.alpha_lr, weight_decay=cfg.alpha_weight_decay)
    architect.optimizer.load_state_dict(state["alpha_optim"])
    # DARTS-PT: fresh SGD at lr / 10 for the tuning phase (reset_optimizer)
    w_optim = torch.optim.SGD(model.weights(), lr=cfg.lr / 10, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    tune_epochs, points = _plan(model, pcfg.proj_intv)
    scheduler = None
    if model.kind == "darts" and tune_epochs > 0:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(w_optim, float(tune_epochs), eta_min=cfg.lr_min)
    train_loader, valid_loader, valid_eval = make_loaders(data, batch_size=cfg.batch_size, device=device,
                                                          seed=cfg.seed + 7919, cutout=cfg.cutout_length)
    rng = random.Random(pcfg.seed)
    decisions: list[dict] = []
    history: list[dict] = []
    start_epoch = 0
    if ckpt_path.is_file():
        ck = load_checkpoint(ckpt_path, map_location=device)
        if ck["pcfg"] != dataclasses.asdict(pcfg):
            raise UsageError(f"{ckpt_path} was made with other settings {ck['pcfg']}; use --overwrite")
        model.load_state_dict(ck["model"])
        w_optim.load_state_dict(ck["w_optim"])
        architect.optimizer.load_state_dict(ck["alpha_optim"])
        if scheduler is not None:
            scheduler.load_state_dict(ck["scheduler"])
        set_rng_state(ck["rng"])
        rng = python_rng_from_list(ck["py_rng"])
        decisions, history, start_epoch = ck["decisions"], ck["history"], int(ck["epoch"])
        argmax_arch = ck["argmax_genotype"]
        logger.info("resuming projection at tuning epoch %d (%d decisions made)", start_epoch, len(decisions))

    crit = {"normal": pcfg.crit_normal, "reduce": pcfg.crit_reduce, "cell": pcfg.crit_normal}

    def evaluate(masks):
        return supernet_eval(model, valid_eval, masks=masks, batch_stats=True)

    def pick(options: list[int]) -> int:
        return rng.choice(options) if pcfg.edge_decision == "random" else options[0]

    def decide(epoch: int, last: bool) -> None:
        """One decision point: an op per cell type, or (DARTS, ops all fixed) a node's inputs per cell type."""
        while True:
            for ct in model.cell_types:
                undecided = model.undecided_edges(ct)
                if undecided:
                    e = pick(undecided)
                    k, scores = decide_op(model, ct, e, evaluate, crit[ct])
                    model.project_op(ct, e, k)
                    decisions.append({"epoch": epoch, "cell": ct, "kind": "op", "edge": e,
                                      "chosen": model.edge_ops[ct][e][k], "scores": scores})
                    logger.info("decide %s edge %d -> %s | %s", ct, e, model.edge_ops[ct][e][k],
                                " ".join(f"{s['op']}:{s['acc']:.2f}%/{s['loss']:.3f}" for s in scores))
                elif model.kind == "darts":
                    open_nodes = [n for n in range(1, len(model.node_edges)) if n not in done_nodes(ct)]
                    if open_nodes:
                        n = pick(open_nodes)
                        keep, rounds = decide_node_inputs(model, ct, n, evaluate, pcfg.crit_edge)
                        model.project_edges(ct, [e for e in model.node_edges[n] if e not in keep])
                        decisions.append({"epoch": epoch, "cell": ct, "kind": "edge", "node": n,
                                          "kept_edges": keep, "rounds": rounds})
                        logger.info("decide %s node %d inputs -> %s", ct, n,
                                    [model.node_edges[n].index(e) for e in keep])
            if not last or not remaining():
                return

    def done_nodes(ct: str) -> set[int]:
        return {d["node"] for d in decisions if d["kind"] == "edge" and d["cell"] == ct}

    def remaining() -> bool:
        if any(model.undecided_edges(ct) for ct in model.cell_types):
            return True
        return model.kind == "darts" and any(len(done_nodes(ct)) < len(model.node_edges) - 1
                                             for ct in model.cell_types)

    def save(epoch: int) -> None:
        save_checkpoint(ckpt_path, {
            "epoch": epoch, "pcfg": dataclasses.asdict(pcfg), "model": model.state_dict(),
            "w_optim": w_optim.state_dict(), "alpha_optim": architect.optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None, "rng": get_rng_state(),
            "py_rng": python_rng_to_list(rng), "decisions": decisions, "history": history,
            "argmax_genotype": argmax_arch})

    if start_epoch == 0 and not decisions:
        base = supernet_eval(model, valid_eval)
        logger.info("projection of %s (epoch %d, %s): supernet valid %.2f%%; argmax %s", search_dir,
                    state["epoch"], cfg.method, base["acc"], argmax_arch)
    for epoch in range(start_epoch, max(tune_epochs, 1)):
        if epoch in points or tune_epochs == 0:
            decide(epoch, last=(epoch == points[-1]))
        if tune_epochs > 0:
            lr = w_optim.param_groups[0]["lr"]
            tr = search_epoch(model, architect, w_optim, train_loader, valid_loader, epoch=10_000 + epoch, lr=lr,
                              grad_clip=cfg.grad_clip)
            if scheduler is not None:
                scheduler.step()
            va = supernet_eval(model, valid_eval)
            history.append({"epoch": epoch, "lr": lr, "train_loss": tr["loss"], "train_acc": tr["acc"],
                            "valid_loss": va["loss"], "valid_acc": va["acc"], "seconds": round(tr["seconds"], 2)})
            logger.info("tune %d/%d train %.3f/%.2f%% valid %.3f/%.2f%% %.1f img/s", epoch + 1, tune_epochs,
                        tr["loss"], tr["acc"], va["loss"], va["acc"], tr["images_per_s"])
        save(epoch + 1)
        if on_epoch is not None:
            on_epoch(epoch)
    if remaining():  # e.g. proj_intv=1 on NB201 leaves fewer decision points than edges
        decide(max(tune_epochs - 1, 0), last=True)
    arch = str(model.genotype())
    record = {
        "genotype": arch, "argmax_genotype": argmax_arch, "space": cfg.space, "method": cfg.method,
        "search_epoch": state["epoch"], "benchmark_metric": metric if lookup.table is not None else None,
        "benchmark": lookup(arch) if lookup.table is not None else None,
        "argmax_benchmark": lookup(argmax_arch) if lookup.table is not None else None,
        "decisions": decisions, "history": history, "projection_config": dataclasses.asdict(pcfg),
        "run_metadata": run_metadata(dataclasses.asdict(cfg), seed=pcfg.seed, started=started),
    }
    atomic_write_json(out_json, record)
    logger.info("projected genotype = %s", arch)
    if lookup.table is not None:
        logger.info("%s: projected %.2f | argmax %.2f", metric, record["benchmark"], record["argmax_benchmark"])
    return record


__all__ = ["ProjectionConfig", "run_projection", "decide_op", "decide_node_inputs", "SearchConfig"]
