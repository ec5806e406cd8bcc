"""The one training loop: ``train_epoch`` and ``evaluate`` serve augment, every budgeted estimator and search.

SGD with momentum, cosine schedule, gradient clipping (DARTS / BPE protocol). On CUDA: autocast (bf16,
or fp16 with loss scaling when the budget asks for 16-bit), channels_last, and statistics kept on the
device so that no step waits on the host.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from genotypes import format_genotype
from models.networks import build_network, count_flops, count_params
from nas.checkpoint import get_rng_state, load_checkpoint, save_checkpoint, set_rng_state
from nas.data import TensorLoader
from nas.errors import NASError

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast_dtype(device: torch.device, precision: str | int = "32") -> torch.dtype | None:
    """Autocast dtype of a budget's precision: None for "32" (fp32; CUDA may use TF32 convolutions, as
    PyTorch allows by default), float16 for "16" (BPE's --fp 16; bfloat16 on CPU, which has no fast
    half), bfloat16 for "bf16"."""
    precision = str(precision)
    if precision == "16":
        return torch.float16 if device.type == "cuda" else torch.bfloat16
    if precision == "bf16":
        return torch.bfloat16
    return None


def _split(out) -> tuple[torch.Tensor, torch.Tensor | None]:
    return (out[0], out[1]) if isinstance(out, tuple) else (out, None)


def train_epoch(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer, *, aux_weight: float = 0.0,
                grad_clip: float = 5.0, amp: torch.dtype | None = None, scaler: torch.amp.GradScaler | None = None,
                params: list[torch.Tensor] | None = None, max_steps: int | None = None,
                before_step: Callable[[torch.Tensor, torch.Tensor], None] | None = None) -> dict[str, float]:
    """One pass over ``loader``: returns mean loss, accuracy (%), images and seconds.

    ``before_step(x, y)`` runs before each weight update (DARTS search: the architecture step).
    """
    model.train()
    params = params if params is not None else [p for p in model.parameters() if p.requires_grad]
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    n = 0
    t0 = time.perf_counter()
    for step, (x, y) in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        if before_step is not None:
            before_step(x, y)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            logits, aux = _split(model(x))
            loss = F.cross_entropy(logits, y)
            if aux is not None and aux_weight > 0:
                loss = loss + aux_weight * F.cross_entropy(aux, y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if grad_clip and grad_clip > 0:
            # foreach clipping keeps the norm on the device (no host sync)
            nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        b = y.size(0)
        loss_sum += loss.detach().float() * b
        correct += (logits.detach().argmax(1) == y).sum()
        n += b
    if n == 0:
        raise NASError("the training loader produced no batch (dataset smaller than one batch with drop_last?)")
    return {"loss": loss_sum.item() / n, "acc": 100.0 * correct.item() / n, "n": n,
            "seconds": time.perf_counter() - t0}


@contextlib.contextmanager
def bn_batch_stats(model: nn.Module, *, update_running: bool = True) -> Iterator[None]:
    """BatchNorm normalises with each batch's own statistics (train mode) inside the block.

    DARTS-PT's projection (``infer(..., _eval=False)``) and aw_nas' one-shot evaluation do this; with
    ``update_running`` the running statistics move as a side effect, as in those codes (momentum 0.1).
    """
    was_training = model.training
    saved = []
    model.train()
    if not update_running:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                saved.append((m, m.momentum))
                m.momentum = 0.0
    try:
        yield
    finally:
        for m, mom in saved:
            m.momentum = mom
        model.train(was_training)


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, *, amp: torch.dtype | None = None,
             forward: Callable[[torch.Tensor], Any] | None = None, batch_stats: bool = False,
             update_running: bool = True, max_batches: int | None = None,
             per_batch: list[float] | None = None) -> dict[str, float]:
    """Mean loss and top-1 accuracy (%) over ``loader``: the one evaluation loop.

    Eval-mode BatchNorm by default; ``batch_stats`` uses each batch's statistics (see
    :func:`bn_batch_stats`). ``forward(x)`` replaces ``model(x)`` (a supernet with masks or op weights).
    ``per_batch``, when given, receives each batch's accuracy (%) (aw_nas keeps per-batch rewards).
    """
    ctx = bn_batch_stats(model, update_running=update_running) if batch_stats else contextlib.nullcontext()
    was_training = model.training
    if not batch_stats:
        model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    batch_correct = []
    n = 0
    try:
        with ctx:
            for i, (x, y) in enumerate(loader):
                if max_batches is not None and i >= max_batches:
                    break
                with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                    logits, _ = _split(forward(x) if forward is not None else model(x))
                loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
                c = (logits.argmax(1) == y).sum()
                correct += c
                if per_batch is not None:
                    batch_correct.append((c, y.size(0)))
                n += y.size(0)
    finally:
        model.train(was_training)
    if n == 0:
        raise NASError("the validation loader produced no batch")
    if per_batch is not None:  # one host transfer for all batches
        counts = torch.stack([c for c, _ in batch_correct]).tolist()
        per_batch.extend(100.0 * c / b for c, (_, b) in zip(counts, batch_correct))
    return {"loss": loss_sum.item() / n, "acc": 100.0 * correct.item() / n, "n": n}


def make_optimizer(model_or_params, budget) -> torch.optim.SGD:
    """SGD with the budget's lr, momentum and weight decay."""
    params = model_or_params.parameters() if isinstance(model_or_params, nn.Module) else model_or_params
    # foreach: one fused update over all tensors instead of a Python loop per parameter (CPU default is off)
    return torch.optim.SGD(params, lr=budget.lr, momentum=budget.momentum, weight_decay=budget.weight_decay,
                           foreach=True)


def epoch_lr(budget, epoch: int) -> float:
    """Learning rate of ``epoch`` (0-based) under the budget's cosine schedule.

    ``scheduler_step="before"`` is BPE's order (augment.py 97, 106-107; run_rl.py 280-287): PyTorch<1.1's
    ``scheduler.step()`` at the start of each epoch, so epoch e trains at the cosine value of e+1, the
    base lr is never used and the last epoch runs at ``lr_min``. ``"after"`` is the corrected order
    (epoch e trains at the value of e, starting at the base lr).
    """
    t = epoch + 1 if budget.scheduler_step == "before" else epoch
    T = max(1, budget.epochs)
    return budget.lr_min + (budget.lr - budget.lr_min) * (1 + math.cos(math.pi * t / T)) / 2


# ----------------------------------------------------------------------------- one architecture, one budget


def train_architecture(arch, *, space_kind: str, budget, data, device: torch.device, seed: int = 0,
                       workdir: str | Path | None = None, logger: logging.Logger | None = None,
                       writer=None, tag: str = "", tb_prefix: str = "train", compile_model: bool = False,
                       progress_every: int = 1) -> dict[str, Any]:
    """Train ``arch`` from scratch under ``budget``; resumable per epoch when ``workdir`` is given.

    Returns the record augment.py writes: arch text, final and best validation accuracy (%), the
    budget's reward (``best`` as BPE, or ``last``) and its value, per-epoch history, parameters, FLOPs
    (multiply-adds per image), precision and seconds.
    """
    logger = logger or log
    seed_everything(seed)
    model = build_network(arch, space_kind=space_kind, C=budget.init_channels, layers=budget.layers,
                          n_classes=data.n_classes, input_size=data.image_size, in_channels=data.in_channels,
                          auxiliary=budget.aux_weight > 0, drop_path_prob=0.0)
    params = count_params(model)
    flops = count_flops(model, (data.in_channels, data.image_size, data.image_size))
    channels_last = True  # faster on CUDA and, measured here, ~18% on CPU (oneDNN depthwise convs)
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    optimizer = make_optimizer(model, budget)
    amp = autocast_dtype(device, budget.precision)
    scaler = torch.amp.GradScaler(device.type) if amp == torch.float16 else None
    train_loader = TensorLoader(data.train_x, data.train_y, batch_size=budget.batch_size, shuffle=True, augment=True,
                                cutout=budget.cutout_length, mean=data.mean, std=data.std, device=device, seed=seed,
                                channels_last=channels_last)
    valid_loader = TensorLoader(data.valid_x, data.valid_y, batch_size=max(budget.batch_size, 256), mean=data.mean,
                                std=data.std, device=device, channels_last=channels_last)
    history: list[dict[str, float]] = []
    start_epoch, elapsed = 0, 0.0
    ckpt = Path(workdir) / "checkpoint.pt" if workdir else None
    if ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt, map_location=device)  # weights_only: a clear NASError when corrupt
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            set_rng_state(state["rng"])
            history, start_epoch, elapsed = state["history"], int(state["epoch"]), float(state["seconds"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise NASError(f"{ckpt}: checkpoint does not fit this architecture or budget ({type(exc).__name__}: "
                           f"{exc}); move it away to restart this architecture") from None
        logger.info("%sresuming at epoch %d/%d", tag, start_epoch + 1, budget.epochs)
    step_fn = torch.compile(model) if compile_model else model
    t_start = time.perf_counter()
    for epoch in range(start_epoch, budget.epochs):
        if hasattr(model, "set_drop_path"):  # DARTS: drop path grows linearly over training
            model.set_drop_path(budget.drop_path_prob * epoch / budget.epochs)
        train_loader.set_epoch(epoch)
        lr = epoch_lr(budget, epoch)
        for g in optimizer.param_groups:
            g["lr"] = lr
        tr = train_epoch(step_fn, train_loader, optimizer, aux_weight=budget.aux_weight, grad_clip=budget.grad_clip,
                         amp=amp, scaler=scaler)
        va = evaluate(step_fn, valid_loader, amp=amp)
        rec = {"epoch": epoch + 1, "lr": lr, "train_loss": tr["loss"], "train_acc": tr["acc"],
               "valid_loss": va["loss"], "valid_acc": va["acc"], "train_images_per_s": tr["n"] / tr["seconds"]}
        history.append(rec)
        if writer is not None:
            for k in ("train_loss", "train_acc", "valid_loss", "valid_acc", "lr"):
                writer.add_scalar(f"{tb_prefix}/{k}", rec[k], epoch + 1)
        if (epoch + 1) % progress_every == 0 or epoch + 1 == budget.epochs:
            logger.info("%sepoch %d/%d lr %.4f train loss %.3f acc %.2f%% | valid loss %.3f acc %.2f%% | %.0f img/s",
                        tag, epoch + 1, budget.epochs, lr, tr["loss"], tr["acc"], va["loss"], va["acc"],
                        rec["train_images_per_s"])
        if ckpt is not None:
            save_checkpoint(ckpt, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "rng": get_rng_state(), "history": history,
                                   "epoch": epoch + 1, "seconds": elapsed + time.perf_counter() - t_start})
    seconds = elapsed + time.perf_counter() - t_start
    if not history:
        raise NASError(f"no epoch was trained (epochs={budget.epochs})")
    if not math.isfinite(history[-1]["train_loss"]):
        logger.warning("%straining diverged (loss is not finite)", tag)
    text = format_genotype(arch) if space_kind == "darts" else str(arch)
    last, best = history[-1]["valid_acc"], max(h["valid_acc"] for h in history)
    return {
        "genotype": text,
        "valid_acc": last,
        "best_valid_acc": best,
        "reward": budget.reward,
        "reward_value": best if budget.reward == "best" else last,
        "history": history,
        "params": params,
        "flops": flops,
        "precision": budget.precision,
        "device": str(device),
        "seconds": round(seconds, 3),
    }
