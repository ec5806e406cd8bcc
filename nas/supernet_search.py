"""Supernet search (DARTS first/second order, DARTS-PT's 'blank'): the architect, the epoch loop, the run.

Follows DARTS (Liu et al., ICLR 2019) as DARTS-PT (Wang et al., ICLR 2021) runs it: the training split
is cut in two (``train_portion``); each step first updates the alphas on a batch of the second half
(Adam, lr 3e-4, betas (0.5, 0.999), weight decay 1e-3: ``nasbench201/architect_ig.py``), then the
weights on a batch of the first half (SGD, cosine to ``lr_min`` 0.001, gradient clipping 5).
``blank`` keeps the alphas at their near-uniform start and only trains weights (DARTS-PT Sec. 5). ``unrolled`` is DARTS'
second-order step (BPE's ``architect.py``, pt.darts), with the finite-difference Hessian term of DARTS.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.supernets import Masks, Supernet, build_supernet
from nas.checkpoint import get_rng_state, load_checkpoint, save_checkpoint, set_rng_state
from nas.cli import NASError, UsageError
from nas.io import atomic_write_json, read_json, run_metadata
from nas.train import train_epoch

log = logging.getLogger(__name__)

METHODS = ("darts", "blank")


@dataclass(frozen=True)
class SearchConfig:
    """Everything that decides a search run (written to search.json and checked on resume)."""

    space: str = "s5"
    method: str = "darts"
    unrolled: bool = False
    dataset: str = "cifar10"
    data_path: str = "data/"
    train_portion: float = 0.5
    limit_train: int | None = None
    limit_valid: int | None = None
    epochs: int = 50
    batch_size: int = 64
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    alpha_lr: float = 3e-4
    alpha_weight_decay: float = 1e-3
    layers: int = 8
    init_channels: int = 16
    image_size: int = 32
    cutout_length: int = 0
    seed: int = 2

    def check(self) -> None:
        """ValueError naming the bad field and the allowed values."""
        if self.method not in METHODS:
            raise UsageError(f"unknown --method {self.method!r}; allowed: {', '.join(METHODS)}")
        if self.unrolled and self.method != "darts":
            raise UsageError("--unrolled applies to --method darts only")
        for name in ("epochs", "batch_size", "layers", "init_channels"):
            if getattr(self, name) <= 0:
                raise UsageError(f"--{name} must be positive, got {getattr(self, name)}")


# ============================================================================= the architect


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
        v_net.load_state_dict(model.state_dict())
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
        eps = 0.01 / torch.cat([d.reshape(-1) for d in dw]).norm().clamp_min(1e-12)
        weights = model.weights()
        with torch.no_grad():
            for p, d in zip(weights, dw):
                p.add_(d, alpha=float(eps))
        dpos = torch.autograd.grad(F.cross_entropy(model(trn_x), trn_y), model.alphas())
        with torch.no_grad():
            for p, d in zip(weights, dw):
                p.sub_(d, alpha=2.0 * float(eps))
        dneg = torch.autograd.grad(F.cross_entropy(model(trn_x), trn_y), model.alphas())
        with torch.no_grad():
            for p, d in zip(weights, dw):
                p.add_(d, alpha=float(eps))
        # DARTS divides by 2*eps; pt.darts' "(p-n) / 2.*eps" multiplies by eps/2 (operator precedence)
        return [da - xi * (p - n) / (2.0 * eps) for da, p, n in zip(dalpha, dpos, dneg)]


# ============================================================================= epoch loop


def _cycle(loader, start_epoch: int) -> Iterator:
    """Endless batches of ``loader``, reshuffled per pass, deterministic in (seed, start_epoch)."""
    for k in itertools.count():
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(start_epoch * 1000 + k)
        yield from loader


def search_epoch(model: Supernet, architect: Architect, w_optim: torch.optim.Optimizer, train_loader: Iterable,
                 valid_loader: Iterable, *, epoch: int, lr: float, grad_clip: float = 5.0,
                 max_steps: int | None = None) -> dict[str, float]:
    """One epoch: per step an alpha update on a valid batch, then a weight update on a train batch."""
    if hasattr(train_loader, "set_epoch"):
        train_loader.set_epoch(epoch)
    valid_iter = _cycle(valid_loader, epoch + 1)

    def arch_step(x: torch.Tensor, y: torch.Tensor) -> None:
        vx, vy = next(valid_iter)
        architect.step(x, y, vx, vy, lr=lr, w_optim=w_optim)

    # the weight step is the toolkit's one training loop, with the alpha update hooked in before it
    stats = train_epoch(model, train_loader, w_optim, grad_clip=grad_clip, params=model.weights(),
                        max_steps=max_steps, before_step=arch_step)
    stats["images_per_s"] = stats["n"] / max(stats["seconds"], 1e-9)
    return stats


@torch.no_grad()
def supernet_eval(model: Supernet, loader: Iterable, *, masks: Masks | None = None,
                  weights: dict[str, torch.Tensor] | None = None, batch_stats: bool = False) -> dict[str, float]:
    """Loss and accuracy (%) of the supernet under ``masks`` (and explicit op ``weights``, for one-shot scoring).

    ``batch_stats``: BatchNorm uses each batch's statistics, as DARTS-PT's projection does
    (``infer(..., eval=False)``), but here without moving the running statistics (momentum 0).
    """
    was_training = model.training
    saved: list[tuple[nn.modules.batchnorm._BatchNorm, float | None]] = []
    if batch_stats:
        model.train()
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                saved.append((m, m.momentum))
                m.momentum = 0.0
    else:
        model.eval()
    try:
        device = model.weights()[0].device
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        n = 0
        for x, y in loader:
            logits = model(x, masks, weights)
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
            n += y.size(0)
    finally:
        for m, mom in saved:
            m.momentum = mom
        model.train(was_training)
    if n == 0:
        raise NASError("the validation loader produced no batch")
    return {"loss": loss_sum.item() / n, "acc": 100.0 * correct.item() / n, "n": n}


# ============================================================================= run helpers


def alphas_dict(model: Supernet) -> dict[str, list[list[float]]]:
    """Alphas per cell type as nested lists (for JSON)."""
    return {ct: [[round(v, 6) for v in row] for row in model.alpha(ct).detach().cpu().tolist()]
            for ct in model.cell_types}


def arch_text(model: Supernet) -> str:
    """The argmax architecture as text: an NB201 arch string or Genotype text."""
    return str(model.genotype())


def make_loaders(data, *, batch_size: int, device: torch.device, seed: int, cutout: int = 0,
                 channels_last: bool = False) -> tuple[Any, Any, Any]:
    """Weight half (augmented), alpha half (augmented) and the alpha half unaugmented for evaluation."""
    from nas.data import TensorLoader

    common = dict(mean=data.mean, std=data.std, device=device, channels_last=channels_last)
    train = TensorLoader(data.train_x, data.train_y, batch_size=batch_size, shuffle=True, augment=True,
                         cutout=cutout, seed=seed, **common)
    valid = TensorLoader(data.valid_x, data.valid_y, batch_size=batch_size, shuffle=True, augment=True,
                         cutout=cutout, seed=seed + 1, **common)
    valid_eval = TensorLoader(data.valid_x, data.valid_y, batch_size=max(batch_size, 256), shuffle=False,
                              augment=False, **common)
    return train, valid, valid_eval


def build_search_model(cfg: SearchConfig, n_classes: int, in_channels: int, device: torch.device) -> Supernet:
    """The supernet of ``cfg`` with DARTS' alpha initialisation, 1e-3 * randn, for 'blank' too: DARTS-PT's
    blank supernet keeps those near-uniform alphas fixed, so its argmax cell is a random cell, not all 'none'."""
    torch.manual_seed(cfg.seed)
    model = build_supernet(cfg.space, C=cfg.init_channels, layers=cfg.layers, n_classes=n_classes,
                           in_channels=in_channels)
    with torch.no_grad():
        for a in model.alphas():
            a.normal_(0.0, 1e-3)
    return model.to(device)


class BenchmarkLookup:
    """Table accuracy of NB201 cells (nas.benchmarks.NB201Table), or nothing when no table is given."""

    def __init__(self, path: str | None, metric: str, space: str):
        self.table = None
        self.metric = metric
        if path:
            if space != "nb201":
                raise UsageError("--benchmark is a NAS-Bench-201 table: use it with --space nb201")
            from nas.benchmarks import NB201Table

            self.table = NB201Table(path)
            self.table.check_column(metric)

    def __call__(self, arch: str) -> float | None:
        return None if self.table is None else self.table.query(arch, self.metric)


# ============================================================================= the search run


def _ckpt_name(epoch: int | None) -> str:
    return "checkpoint.pt" if epoch is None else f"checkpoint_{epoch}.pt"


def find_checkpoint(run_dir: Path, epoch: int | None) -> Path:
    """The latest checkpoint of a run, or the one after ``epoch`` epochs; NASError if missing."""
    if epoch is None:
        p = run_dir / _ckpt_name(None)
    else:
        p = run_dir / _ckpt_name(epoch)
        if not p.is_file():
            latest = run_dir / _ckpt_name(None)
            if latest.is_file() and load_checkpoint(latest).get("epoch") == epoch:
                p = latest
    if not p.is_file():
        have = sorted(q.name for q in run_dir.glob("checkpoint*.pt"))
        raise NASError(f"{p}: no such checkpoint; {run_dir} has: {', '.join(have) or 'none'}")
    return p


def run_search(cfg: SearchConfig, run_dir: str | Path, *, device: torch.device, data=None,
               resume_epoch: int | None = None, overwrite: bool = False, ckpt_interval: int = 0,
               benchmark: str | None = None, metric: str = "cifar10_test_acc", logger: logging.Logger | None = None,
               tensorboard: bool = True, channels_last: bool = False, max_steps: int | None = None,
               on_epoch: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Search (or continue searching) into ``run_dir``; returns the search.json record.

    A run directory with a checkpoint is continued (the config must match); one with other files is
    refused unless ``overwrite``. Every epoch writes ``checkpoint.pt`` (and ``checkpoint_<e>.pt``
    every ``ckpt_interval`` epochs) and rewrites ``search.json``.
    """
    cfg.check()
    logger = logger or log
    started = time.time()
    run_dir = Path(run_dir)
    lookup = BenchmarkLookup(benchmark, metric, cfg.space)
    latest = run_dir / _ckpt_name(None)
    state = None
    if resume_epoch is not None or latest.is_file():
        if overwrite and resume_epoch is None:
            state = None
        else:
            state = load_checkpoint(find_checkpoint(run_dir, resume_epoch))
            saved_cfg = state.get("config", {})
            diff = {k: (saved_cfg.get(k), v) for k, v in dataclasses.asdict(cfg).items()
                    if k not in ("epochs", "data_path") and saved_cfg.get(k) != v}
            if diff:
                raise UsageError(f"{run_dir} was searched with other settings {diff} (saved, given); "
                                 "use another --name or --overwrite")
    elif run_dir.exists() and any(q.suffix != ".log" for q in run_dir.iterdir()) and not overwrite:
        raise UsageError(f"{run_dir} exists and holds no checkpoint; use another --name or --overwrite")
    run_dir.mkdir(parents=True, exist_ok=True)

    if data is None:
        from nas.data import load_dataset

        data = load_dataset(cfg.dataset, cfg.data_path, image_size=cfg.image_size, valid=cfg.train_portion,
                            limit_train=cfg.limit_train, limit_valid=cfg.limit_valid)
    model = build_search_model(cfg, data.n_classes, data.in_channels, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    w_optim = torch.optim.SGD(model.weights(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(w_optim, float(cfg.epochs), eta_min=cfg.lr_min)
    architect = Architect(model, method=cfg.method, unrolled=cfg.unrolled, lr=cfg.alpha_lr,
                          weight_decay=cfg.alpha_weight_decay, w_momentum=cfg.momentum,
                          w_weight_decay=cfg.weight_decay)
    train_loader, valid_loader, valid_eval = make_loaders(data, batch_size=cfg.batch_size, device=device,
                                                          seed=cfg.seed, cutout=cfg.cutout_length,
                                                          channels_last=channels_last)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if state is not None:
        model.load_state_dict(state["model"])
        w_optim.load_state_dict(state["w_optim"])
        architect.optimizer.load_state_dict(state["alpha_optim"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        start_epoch = int(state["epoch"])
        old = read_json(run_dir / "search.json") if (run_dir / "search.json").is_file() else {}
        history = [h for h in old.get("history", []) if h["epoch"] < start_epoch]
        logger.info("resuming %s after epoch %d", run_dir, start_epoch)
    writer = None
    if tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tb"), purge_step=start_epoch)
    n_w = sum(p.numel() for p in model.weights())
    logger.info("supernet %s (%s%s): %.3fM weights, %d train / %d alpha images, %d epochs", cfg.space, cfg.method,
                ", unrolled" if cfg.unrolled else "", n_w / 1e6, len(data.train_y), len(data.valid_y), cfg.epochs)

    record: dict[str, Any] = {}

    def write_record(done: int) -> None:
        record.clear()
        record.update({
            "genotype": arch_text(model), "space": cfg.space, "method": cfg.method, "epochs_done": done,
            "finished": done >= cfg.epochs, "benchmark_metric": metric if lookup.table is not None else None,
            "benchmark": lookup(arch_text(model)) if lookup.table is not None else None,
            "history": history, "run_metadata": run_metadata(cfg, seed=cfg.seed, started=started),
        })
        atomic_write_json(run_dir / "search.json", record)

    for epoch in range(start_epoch, cfg.epochs):
        lr = scheduler.get_last_lr()[0]
        tr = search_epoch(model, architect, w_optim, train_loader, valid_loader, epoch=epoch, lr=lr,
                          grad_clip=cfg.grad_clip, max_steps=max_steps)
        va = supernet_eval(model, valid_eval)
        scheduler.step()
        arch = arch_text(model)
        bench = lookup(arch) if lookup.table is not None else None
        entry = {"epoch": epoch, "lr": lr, "train_loss": tr["loss"], "train_acc": tr["acc"],
                 "valid_loss": va["loss"], "valid_acc": va["acc"], "seconds": round(tr["seconds"], 2),
                 "images_per_s": round(tr["images_per_s"], 1), "genotype": arch, "benchmark": bench,
                 "alphas": alphas_dict(model)}
        history.append(entry)
        logger.info("epoch %d/%d lr %.4f train %.3f/%.2f%% valid %.3f/%.2f%% %.1f img/s%s | %s", epoch + 1,
                    cfg.epochs, lr, tr["loss"], tr["acc"], va["loss"], va["acc"], tr["images_per_s"],
                    f" | {metric} {bench:.2f}" if bench is not None else "", arch)
        if writer is not None:
            writer.add_scalars("loss", {"train": tr["loss"], "valid": va["loss"]}, epoch)
            writer.add_scalars("accuracy", {"train": tr["acc"], "valid": va["acc"]}, epoch)
            if bench is not None:
                writer.add_scalar(f"benchmark/{metric}", bench, epoch)
            writer.flush()
        ckpt = {"epoch": epoch + 1, "config": dataclasses.asdict(cfg), "model": model.state_dict(),
                "w_optim": w_optim.state_dict(), "alpha_optim": architect.optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": get_rng_state()}
        save_checkpoint(latest, ckpt)
        if ckpt_interval and (epoch + 1) % ckpt_interval == 0:
            save_checkpoint(run_dir / _ckpt_name(epoch + 1), ckpt)
        write_record(epoch + 1)
        if on_epoch is not None:
            on_epoch(epoch)
    if not record:
        write_record(max(start_epoch, 0))
    if writer is not None:
        writer.close()
    logger.info("genotype = %s", record["genotype"])
    return record


def load_search(run_dir: str | Path, *, epoch: int | None, device: torch.device) -> tuple[SearchConfig, dict]:
    """The config and checkpoint state of a search run (for project.py)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise NASError(f"{run_dir}: no such search directory")
    state = load_checkpoint(find_checkpoint(run_dir, epoch), map_location=device)
    fields = {f.name for f in dataclasses.fields(SearchConfig)}
    cfg = SearchConfig(**{k: v for k, v in state["config"].items() if k in fields})
    return cfg, state
