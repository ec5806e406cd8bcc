"""Perturbation-based architecture selection (DARTS-PT, Wang et al., ICLR 2021, Alg. 1).

For one edge at a time (random or fixed order) every candidate op is masked out in turn (its weight set
to 0, the others not renormalised: ``sota/cnn/projection.py`` 15-59) and the supernet's accuracy (or
loss) measured; the op whose removal hurts most is kept and the edge fixed to it. In the DARTS spaces the
ops of all 14 edges of both cells are decided first, then each of nodes 1-3 keeps the two inputs whose
removal hurts most (edges dropped greedily, projection.py 62-104). Between decisions the supernet is
fine-tuned ``proj_intv`` epochs: a fresh SGD at a constant lr/10 (DARTS-PT builds a cosine scheduler for
it but never steps it), the alphas still updated by the architect.

Scoring as DARTS-PT (``--proj_eval dartspt``, the default): the alpha half of the training split with
the training augmentation at the search batch size (its ``proj_queue = valid_queue``), the whole half per
score, BatchNorm in train mode (``infer(..., _eval=False)``: batch statistics, running statistics moving
as a side effect). ``--proj_eval clean`` scores on the unaugmented half at batch 256 with batch statistics
that leave the running ones alone (less noisy, this toolkit's earlier behaviour).

Schedules follow DARTS-PT: NB201 tunes ``proj_intv * 5`` epochs, deciding at epochs 0, intv, ... and the
last one; the DARTS spaces tune ``proj_intv * 16 + 1`` epochs.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.tensorboard import SummaryWriter

from nas.benchmarks import BenchmarkReport
from nas.checkpoint import (
    get_rng_state,
    load_checkpoint,
    python_rng_from_list,
    python_rng_to_list,
    save_checkpoint,
    set_rng_state,
)
from nas.errors import ConfigError, NASError
from nas.io import atomic_write_json, run_metadata
from nas.progress import bar
from nas.rundir import RunLock
from nas.seeds import child_seed
from nas.supernet.architect import Architect
from nas.supernet.sdarts import make_perturbation
from nas.supernet.search import build_search_model, load_search, load_search_data, make_loaders, search_epoch
from nas.train import evaluate

log = logging.getLogger(__name__)

EDGE_DECISIONS = ("random", "fixed")
CRITS = ("acc", "loss")
PROJ_EVALS = ("dartspt", "clean")


@dataclasses.dataclass(frozen=True)
class ProjectionConfig:
    """Settings of one projection run (recorded in projection.json, checked on resume)."""

    resume_epoch: int | None = None
    edge_decision: str = "random"
    crit_normal: str = "acc"  # NB201 uses crit_normal for its single cell type
    crit_reduce: str = "acc"
    crit_edge: str | None = None  # None: each cell type's own criterion (DARTS-PT never reads proj_crit_edge)
    proj_intv: int = 5
    seed: int = 2
    proj_eval: str = "dartspt"

    def check(self) -> None:
        if self.edge_decision not in EDGE_DECISIONS:
            raise ConfigError(f"unknown --edge_decision {self.edge_decision!r}; allowed: {', '.join(EDGE_DECISIONS)}")
        for name in ("crit_normal", "crit_reduce", "crit_edge"):
            v = getattr(self, name)
            if v is not None and v not in CRITS:
                raise ConfigError(f"unknown --{name} {v!r}; allowed: {', '.join(CRITS)}")
        if self.proj_intv < 0:
            raise ConfigError(f"--proj_intv must be >= 0, got {self.proj_intv}")
        if self.proj_eval not in PROJ_EVALS:
            raise ConfigError(f"unknown --proj_eval {self.proj_eval!r}; allowed: {', '.join(PROJ_EVALS)}")


def _worse(crit: str) -> Callable[[dict, dict], bool]:
    """``worse(a, b)``: is perturbation ``a`` more harmful than ``b`` under ``crit``."""
    if crit == "acc":
        return lambda a, b: a["acc"] < b["acc"]
    return lambda a, b: a["loss"] > b["loss"]


def decide_op(model, ct: str, edge: int, evaluate_masks: Callable, crit: str) -> tuple[int, list[dict]]:
    """Mask each op of ``edge`` in turn; return the op whose removal hurts most (ties: the first) and all scores."""
    worse = _worse(crit)
    scores, best = [], None
    for k, name in enumerate(model.edge_ops[ct][edge]):
        masks = model.full_masks()
        masks[ct][edge, k] = False
        s = evaluate_masks(masks)
        scores.append({"op": name, "acc": s["acc"], "loss": s["loss"]})
        if best is None or worse(s, scores[best]):
            best = k
    return best, scores


def decide_node_inputs(model, ct: str, node: int, evaluate_masks: Callable, crit: str
                       ) -> tuple[list[int], list[dict]]:
    """Drop, one at a time, the input edge whose removal hurts least (ties: the later) until two remain."""
    worse = _worse(crit)
    eids = list(model.node_edges[node])
    rounds = []
    while len(eids) > 2:
        scores, drop = [], None
        for e in eids:
            masks = model.full_masks()
            masks[ct][e, :] = False
            s = evaluate_masks(masks)
            scores.append({"edge": e, "input": model.node_edges[node].index(e), "acc": s["acc"], "loss": s["loss"]})
            if drop is None or not worse(s, scores[drop]):
                drop = len(scores) - 1
        rounds.append({"scores": scores, "dropped": scores[drop]["edge"]})
        eids.remove(scores[drop]["edge"])
    return eids, rounds


def plan(model, proj_intv: int) -> tuple[int, list[int]]:
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


class Projection:
    """One projection of a search run: its supernet, loaders, decisions, and a resumable schedule."""

    def __init__(self, search_dir: Path, pcfg: ProjectionConfig, *, device: torch.device, data, report,
                 out_name: str, logger: logging.Logger, data_overrides: dict[str, Any] | None = None):
        self.search_dir, self.pcfg, self.logger, self.report = search_dir, pcfg, logger, report
        cfg, self.state = load_search(search_dir, epoch=pcfg.resume_epoch, device=device)
        if data_overrides:
            cfg = dataclasses.replace(cfg, **{k: v for k, v in data_overrides.items() if v is not None})
        self.cfg = cfg
        data = data if data is not None else load_search_data(cfg)
        self.model = model = build_search_model(cfg, data.n_classes, data.in_channels, device)
        model.load_state_dict(self.state["model"])
        self.argmax_arch = str(model.genotype(rank_by=cfg.genotype_rank))
        self.architect = Architect(model, method=cfg.method, lr=cfg.alpha_lr, weight_decay=cfg.alpha_weight_decay)
        self.architect.optimizer.load_state_dict(self.state["alpha_optim"])
        # DARTS-PT reset_optimizer: a fresh SGD at lr / 10, kept constant while tuning
        self.w_optim = torch.optim.SGD(model.weights(), lr=cfg.lr / 10, momentum=cfg.momentum,
                                       weight_decay=cfg.weight_decay)
        # SDARTS fine-tuning: constant eps (DARTS-PT passes args.epsilon_alpha), projected rows stay one-hot
        self.perturb = make_perturbation(cfg.method, model, cfg.epsilon_alpha)
        self.tune_epochs, self.points = plan(model, pcfg.proj_intv)
        self.loaders = make_loaders(data, batch_size=cfg.batch_size, device=device,
                                    seed=child_seed(cfg.seed, "projection"), cutout=cfg.cutout_length)
        self.rng = random.Random(pcfg.seed)
        self.decisions: list[dict] = []
        self.history: list[dict] = []
        self.n_scores = 0
        self.start_epoch = 0
        self.ckpt_path = search_dir / f"{out_name}_checkpoint.pt"
        self.crit = {"normal": pcfg.crit_normal, "reduce": pcfg.crit_reduce, "cell": pcfg.crit_normal}
        self.writer: SummaryWriter | None = None  # set by run_projection: decisions and tuning go to tensorboard
        self.pbar = None

    def n_decisions(self) -> int:
        """Decisions a whole projection makes: an op per edge, and (DARTS spaces) the inputs of nodes 1-3."""
        m = self.model
        nodes = len(m.node_edges) - 1 if m.kind == "darts" else 0
        return (m.n_edges + nodes) * len(m.cell_types)

    def _made(self, d: dict) -> None:
        """A decision was appended: tick the bar, log it to tensorboard (step = decision number, from 1)."""
        if self.pbar is not None:
            self.pbar.update()
        if self.writer is not None:
            step = len(self.decisions)
            if d["kind"] == "op":
                accs = [s["acc"] for s in d["scores"]]
                text = f"{d['cell']} edge {d['edge']} -> **{d['chosen']}** (accuracy with each op masked: " + \
                    ", ".join(f"{s['op']} {s['acc']:.2f}%" for s in d["scores"]) + f"; tuning epoch {d['epoch']})"
                self.writer.add_scalar("projection/masked_acc_spread", max(accs) - min(accs), step)
            else:
                text = f"{d['cell']} node {d['node']} keeps edges {d['kept_edges']} (tuning epoch {d['epoch']})"
            self.writer.add_text("projection/decisions", text, step)

    # -- scoring -------------------------------------------------------------------------------
    def score(self, masks) -> dict[str, float]:
        """Accuracy and loss of the supernet with ``masks`` (see the module doc for the two modes)."""
        self.n_scores += 1
        if self.pcfg.proj_eval == "dartspt":
            loader = self.loaders.valid
            loader.set_epoch(child_seed(self.pcfg.seed, "score", self.n_scores))  # a fresh shuffle per score
            return evaluate(self.model, loader, forward=lambda x: self.model(x, masks), batch_stats=True)
        return evaluate(self.model, self.loaders.valid_eval, forward=lambda x: self.model(x, masks),
                        batch_stats=True, update_running=False)

    # -- decisions -----------------------------------------------------------------------------
    def pick(self, options: list[int]) -> int:
        return self.rng.choice(options) if self.pcfg.edge_decision == "random" else options[0]

    def done_nodes(self, ct: str) -> set[int]:
        return {d["node"] for d in self.decisions if d["kind"] == "edge" and d["cell"] == ct}

    def remaining(self) -> bool:
        m = self.model
        if any(m.undecided_edges(ct) for ct in m.cell_types):
            return True
        return m.kind == "darts" and any(len(self.done_nodes(ct)) < len(m.node_edges) - 1 for ct in m.cell_types)

    def decide(self, epoch: int, last: bool) -> None:
        """One decision point: an op per cell type, or (DARTS, ops all fixed) a node's inputs per cell type."""
        m = self.model
        while True:
            for ct in m.cell_types:
                undecided = m.undecided_edges(ct)
                if undecided:
                    e = self.pick(undecided)
                    k, scores = decide_op(m, ct, e, self.score, self.crit[ct])
                    m.project_op(ct, e, k)
                    self.decisions.append({"epoch": epoch, "cell": ct, "kind": "op", "edge": e,
                                           "chosen": m.edge_ops[ct][e][k], "scores": scores})
                    self._made(self.decisions[-1])
                    self.logger.info("decide %s edge %d -> %s | %s", ct, e, m.edge_ops[ct][e][k],
                                     " ".join(f"{s['op']}:{s['acc']:.2f}%/{s['loss']:.3f}" for s in scores))
                elif m.kind == "darts":
                    open_nodes = [n for n in range(1, len(m.node_edges)) if n not in self.done_nodes(ct)]
                    if open_nodes:
                        n = self.pick(open_nodes)
                        keep, rounds = decide_node_inputs(m, ct, n, self.score, self.pcfg.crit_edge or self.crit[ct])
                        m.project_edges(ct, [e for e in m.node_edges[n] if e not in keep])
                        self.decisions.append({"epoch": epoch, "cell": ct, "kind": "edge", "node": n,
                                               "kept_edges": keep, "rounds": rounds})
                        self._made(self.decisions[-1])
                        self.logger.info("decide %s node %d inputs -> %s", ct, n,
                                         [m.node_edges[n].index(e) for e in keep])
            if not last or not self.remaining():
                return

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, epoch: int) -> None:
        save_checkpoint(self.ckpt_path, {
            "epoch": epoch, "pcfg": dataclasses.asdict(self.pcfg), "model": self.model.state_dict(),
            "w_optim": self.w_optim.state_dict(), "alpha_optim": self.architect.optimizer.state_dict(),
            "rng": get_rng_state(), "py_rng": python_rng_to_list(self.rng), "decisions": self.decisions,
            "history": self.history, "argmax_genotype": self.argmax_arch, "n_scores": self.n_scores})

    def resume(self, device: torch.device) -> None:
        ck = load_checkpoint(self.ckpt_path, map_location=device)
        if ck.get("pcfg") != dataclasses.asdict(self.pcfg):
            raise ConfigError(f"{self.ckpt_path} was made with other settings {ck.get('pcfg')}; use --overwrite")
        try:
            self.model.load_state_dict(ck["model"])
            self.w_optim.load_state_dict(ck["w_optim"])
            self.architect.optimizer.load_state_dict(ck["alpha_optim"])
            set_rng_state(ck["rng"])
            self.rng = python_rng_from_list(ck["py_rng"])
            self.decisions, self.history, self.start_epoch = ck["decisions"], ck["history"], int(ck["epoch"])
            self.argmax_arch, self.n_scores = ck["argmax_genotype"], int(ck.get("n_scores", 0))
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise NASError(f"{self.ckpt_path}: checkpoint does not fit ({type(exc).__name__}: {exc}); "
                           "use --overwrite") from None
        self.logger.info("resuming projection at tuning epoch %d (%d decisions made)", self.start_epoch,
                         len(self.decisions))

    # -- the schedule --------------------------------------------------------------------------
    def run(self, on_epoch: Callable[[int], None] | None = None) -> None:
        if self.start_epoch == 0 and not self.decisions:
            base = evaluate(self.model, self.loaders.valid_eval)
            self.logger.info("projection of %s (epoch %d, %s): supernet valid %.2f%%; argmax %s", self.search_dir,
                             self.state["epoch"], self.cfg.method, base["acc"], self.argmax_arch)
            if self.state["epoch"] < self.cfg.epochs:  # e.g. the latest checkpoint of a search still running
                self.logger.warning("the supernet was searched %d of its %d epochs", self.state["epoch"],
                                    self.cfg.epochs)
        cfg, lr = self.cfg, self.cfg.lr / 10
        for epoch in range(self.start_epoch, max(self.tune_epochs, 1)):
            if epoch in self.points or self.tune_epochs == 0:
                self.decide(epoch, last=(epoch == self.points[-1]))
            if self.tune_epochs > 0:
                tr = search_epoch(self.model, self.architect, self.w_optim, self.loaders.train, self.loaders.valid,
                                  epoch=child_seed(cfg.seed, "tune", epoch), lr=lr, grad_clip=cfg.grad_clip,
                                  perturb=self.perturb)
                va = evaluate(self.model, self.loaders.valid_eval)
                self.history.append({"epoch": epoch, "lr": lr, "train_loss": tr["loss"], "train_acc": tr["acc"],
                                     "valid_loss": va["loss"], "valid_acc": va["acc"],
                                     "seconds": round(tr["seconds"], 2)})
                self.logger.info("tune %d/%d train %.3f/%.2f%% valid %.3f/%.2f%% %.1f img/s", epoch + 1,
                                 self.tune_epochs, tr["loss"], tr["acc"], va["loss"], va["acc"], tr["images_per_s"])
                if self.writer is not None:  # tuning epochs counted from 1, as the search's
                    for k in ("train_loss", "train_acc", "valid_loss", "valid_acc"):
                        self.writer.add_scalar(f"projection/tune_{k}", self.history[-1][k], epoch + 1)
            self.save(epoch + 1)
            if on_epoch is not None:
                on_epoch(epoch)
        if self.remaining():  # e.g. proj_intv=1 on NB201 leaves fewer decision points than edges
            self.decide(max(self.tune_epochs - 1, 0), last=True)

    def record(self, started: float) -> dict[str, Any]:
        arch = str(self.model.genotype(rank_by=self.cfg.genotype_rank))
        return {"genotype": arch, "argmax_genotype": self.argmax_arch, "space": self.cfg.space,
                "method": self.cfg.method, "search_epoch": self.state["epoch"], **self.report.fields(arch),
                **{f"argmax_{k}": v for k, v in self.report.fields(self.argmax_arch).items()},
                "benchmarks": self.report.describe(), "decisions": self.decisions, "history": self.history,
                "projection_config": dataclasses.asdict(self.pcfg),
                "run_metadata": run_metadata(dataclasses.asdict(self.cfg), seed=self.pcfg.seed, started=started)}


def run_projection(search_dir: str | Path, pcfg: ProjectionConfig, *, device: torch.device, data=None,
                   report: BenchmarkReport | None = None, out_name: str = "projection", overwrite: bool = False,
                   data_overrides: dict[str, Any] | None = None, logger: logging.Logger | None = None,
                   on_epoch: Callable[[int], None] | None = None, tensorboard: bool = False) -> dict:
    """Project the supernet saved in ``search_dir``; writes <search_dir>/<out_name>.json and checkpoints
    (with ``tensorboard``, the decisions and tuning curves in <search_dir>/tb/<out_name>/).

    Holds the search folder's lock while it runs: a search still writing there, or a second projection,
    is refused.
    """
    pcfg.check()
    logger = logger or log
    started = time.time()
    search_dir = Path(search_dir)
    if not search_dir.is_dir():
        raise NASError(f"{search_dir}: no such search directory")
    with RunLock(search_dir.parent / f".{search_dir.name}.lock", f"search run {search_dir}"):
        out_json = search_dir / f"{out_name}.json"
        proj = Projection(search_dir, pcfg, device=device, data=data, report=report or BenchmarkReport(),
                          out_name=out_name, logger=logger, data_overrides=data_overrides)
        if overwrite:
            proj.ckpt_path.unlink(missing_ok=True)
        elif out_json.is_file() and not proj.ckpt_path.is_file():
            raise ConfigError(f"{out_json} exists; use --overwrite or another --tag")
        if proj.ckpt_path.is_file():
            proj.resume(device)
        if tensorboard:
            proj.writer = SummaryWriter(str(search_dir / "tb" / out_name))
        proj.pbar = bar(total=proj.n_decisions(), initial=len(proj.decisions), desc=f"project {search_dir.name}",
                        unit="decision")
        try:
            proj.run(on_epoch)
        finally:
            for closer in (proj.pbar, proj.writer):
                if closer is not None:
                    closer.close()
        rec = proj.record(started)
        atomic_write_json(out_json, rec)
    logger.info("projected genotype = %s", rec["genotype"])
    if proj.report:
        logger.info("projected%s | argmax%s", proj.report.text(rec["genotype"]),
                    proj.report.text(rec["argmax_genotype"]))
    return rec
