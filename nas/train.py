"""The one training loop: ``train_epoch`` and ``evaluate`` serve augment, every budgeted estimator and search.

SGD with momentum, cosine schedule, gradient clipping (DARTS / BPE protocol). On CUDA: autocast (bf16,
or fp16 with loss scaling when the budget asks for 16-bit), channels_last, and statistics kept on the
device so that no step waits on the host.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
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
from nas.cudagraph import GraphedStep, use_cuda_graph
from nas.data import TensorLoader
from nas.errors import ConfigError, NASError
from nas.progress import progress

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


class _DeviceStats:
    """Loss sum and correct count kept on the device by a step, read with one host sync."""

    def _init_stats(self, device: torch.device) -> None:
        self.device = device
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.runner(x, y)

    def take_stats(self, n: int) -> tuple[float, float]:
        """Mean loss and accuracy (%) over ``n`` images since the last call: one host sync, then zeroed."""
        loss, correct = self.loss_sum.item(), self.correct.item()
        self.loss_sum.zero_()
        self.correct.zero_()
        return loss / n, 100.0 * correct / n


class TrainStep(_DeviceStats):
    """The one training step: forward, loss (+ auxiliary), backward, clipping, optimizer update.

    Loss and accuracy accumulate on the device (no per-step host sync). With ``cuda_graph`` the step is
    captured once per :meth:`reset` and replayed (nas.cudagraph.GraphedStep); on the CPU, or off, the same
    function runs eagerly. Call ``reset`` whenever a Python float the step uses (lr, drop-path p) changes.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, aux_weight: float = 0.0,
                 grad_clip: float = 5.0, amp: torch.dtype | None = None,
                 scaler: torch.amp.GradScaler | None = None, params: list[torch.Tensor] | None = None,
                 cuda_graph: bool = False):
        self.model, self.optimizer = model, optimizer
        self.aux_weight, self.grad_clip, self.amp, self.scaler = aux_weight, grad_clip, amp, scaler
        self.params = params if params is not None else [p for p in model.parameters() if p.requires_grad]
        if cuda_graph and scaler is not None:
            raise ConfigError("a CUDA graph cannot capture the GradScaler's dynamic loss scale (precision 16)")
        self._init_stats(next(model.parameters()).device)
        self.runner = GraphedStep(self._step, enabled=cuda_graph)

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        # autocast's weight-cast cache must be off while capturing (PyTorch's CUDA-graph notes)
        with torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None,
                            cache_enabled=not self.runner.enabled):
            logits, aux = _split(self.model(x))
            loss = F.cross_entropy(logits, y)
            if aux is not None and self.aux_weight > 0:
                loss = loss + self.aux_weight * F.cross_entropy(aux, y)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.grad_clip and self.grad_clip > 0:
            # foreach clipping keeps the norm on the device (no host sync)
            nn.utils.clip_grad_norm_(self.params, self.grad_clip, foreach=True)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.loss_sum.add_(loss.detach().float() * y.size(0))
        self.correct.add_((logits.detach().argmax(1) == y).sum())

    def reset(self) -> None:
        """Drop the captured graph (the next steps warm up and capture again)."""
        self.runner.reset()


def train_epoch(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer, *, aux_weight: float = 0.0,
                grad_clip: float = 5.0, amp: torch.dtype | None = None, scaler: torch.amp.GradScaler | None = None,
                params: list[torch.Tensor] | None = None, max_steps: int | None = None,
                before_step: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
                step: TrainStep | None = None) -> dict[str, float]:
    """One pass over ``loader``: returns mean loss, accuracy (%), images and seconds.

    ``before_step(x, y)`` runs before each weight update (DARTS search: the architecture step).
    ``step`` (a :class:`TrainStep`, e.g. CUDA-graphed) replaces the eager step built from the other
    arguments.
    """
    model.train()
    step = step or TrainStep(model, optimizer, aux_weight=aux_weight, grad_clip=grad_clip, amp=amp, scaler=scaler,
                             params=params)
    n = 0
    t0 = time.perf_counter()
    total = min(len(loader), max_steps or len(loader)) if hasattr(loader, "__len__") else max_steps
    for i, (x, y) in enumerate(progress(loader, total=total, desc="steps", unit="batch")):
        if max_steps is not None and i >= max_steps:
            break
        if before_step is not None:
            before_step(x, y)
        step(x, y)
        n += y.size(0)
    if n == 0:
        raise NASError("the training loader produced no batch (dataset smaller than one batch with drop_last?)")
    loss, acc = step.take_stats(n)
    return {"loss": loss, "acc": acc, "n": n, "seconds": time.perf_counter() - t0}


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


class EvalStep(_DeviceStats):
    """Evaluation forward with loss sum and correct count kept on the device; CUDA-graphed when asked.

    The graph is captured once (weights and BatchNorm statistics are read in place) and serves every
    later evaluation; a batch of another size (the last one) runs eagerly.
    """

    def __init__(self, model: nn.Module, *, amp: torch.dtype | None = None, cuda_graph: bool = False):
        self.model, self.amp = model, amp
        self._init_stats(next(model.parameters()).device)
        self.runner = GraphedStep(self._step, enabled=cuda_graph)

    @torch.no_grad()
    def _step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None,
                            cache_enabled=not self.runner.enabled):
            logits, _ = _split(self.model(x))
        self.loss_sum.add_(F.cross_entropy(logits.float(), y, reduction="sum"))
        self.correct.add_((logits.argmax(1) == y).sum())


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, *, amp: torch.dtype | None = None,
             forward: Callable[[torch.Tensor], Any] | None = None, batch_stats: bool = False,
             update_running: bool = True, max_batches: int | None = None,
             per_batch: list[float] | None = None, step: EvalStep | None = None) -> dict[str, float]:
    """Mean loss and top-1 accuracy (%) over ``loader``: the one evaluation loop.

    Eval-mode BatchNorm by default; ``batch_stats`` uses each batch's statistics (see
    :func:`bn_batch_stats`). ``forward(x)`` replaces ``model(x)`` (a supernet with masks or op weights).
    ``per_batch``, when given, receives each batch's accuracy (%) (aw_nas keeps per-batch rewards).
    ``step`` (an :class:`EvalStep`, e.g. CUDA-graphed) evaluates the plain ``model(x)`` in eval mode.
    """
    if step is not None and (forward is not None or batch_stats or per_batch is not None):
        raise ValueError("evaluate: step= serves the plain eval-mode forward only (no forward/batch_stats/per_batch)")
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
                n += y.size(0)
                if step is not None:
                    step(x, y)
                    continue
                with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                    logits, _ = _split(forward(x) if forward is not None else model(x))
                loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
                c = (logits.argmax(1) == y).sum()
                correct += c
                if per_batch is not None:
                    batch_correct.append((c, y.size(0)))
    finally:
        model.train(was_training)
    if n == 0:
        raise NASError("the validation loader produced no batch")
    if step is not None:  # the step's own accumulators, read and zeroed once
        loss, acc = step.take_stats(n)
        return {"loss": loss, "acc": acc, "n": n}
    if per_batch is not None:  # one host transfer for all batches
        counts = torch.stack([c for c, _ in batch_correct]).tolist()
        per_batch.extend(100.0 * c / b for c, (_, b) in zip(counts, batch_correct))
    return {"loss": loss_sum.item() / n, "acc": 100.0 * correct.item() / n, "n": n}


def make_optimizer(model_or_params, budget) -> torch.optim.SGD:
    """SGD with the budget's lr, momentum and weight decay: fused on CUDA (one kernel for every tensor, and
    it reads GradScaler's ``found_inf`` on the device), foreach elsewhere (one update over all tensors
    instead of a Python loop per parameter; the CPU default is off)."""
    params = list(model_or_params.parameters() if isinstance(model_or_params, nn.Module) else model_or_params)
    kw = dict(lr=budget.lr, momentum=budget.momentum, weight_decay=budget.weight_decay)
    if params and params[0].device.type == "cuda":
        try:
            return torch.optim.SGD(params, fused=True, **kw)
        except (TypeError, RuntimeError):  # a PyTorch without fused SGD for this device
            pass
    return torch.optim.SGD(params, foreach=True, **kw)


def configure_precision(device: torch.device, precision: str | int = "32") -> dict[str, Any]:
    """Set the process's matmul/convolution precision for a budget; returns what the record keeps.

    fp32 ("32") on CUDA lets cuBLAS and cuDNN use TF32 tensor cores (10-bit mantissa products, fp32
    accumulation), as PyTorch allows (``allow_tf32``); the BPE paper's GPUs (no TF32) computed full fp32
    products: ``NAS_NO_TF32=1`` restores that. bf16/fp16 run under autocast (see :func:`autocast_dtype`).
    """
    precision = str(precision)
    tf32 = torch.device(device).type == "cuda" and precision == "32" and not os.environ.get("NAS_NO_TF32")
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    return {"precision": precision, "tf32": tf32}


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
                       progress_every: int = 1, cuda_graph: str = "auto") -> dict[str, Any]:
    """Train ``arch`` from scratch under ``budget``; resumable per epoch when ``workdir`` is given.

    Returns the record augment.py writes: arch text, final and best validation accuracy (%), the
    budget's reward (``best`` as BPE, or ``last``) and its value, per-epoch history, parameters, FLOPs
    (multiply-adds per image), precision, TF32, CUDA graph and seconds.

    ``cuda_graph`` (auto, on, off; nas.cudagraph): on CUDA each epoch's training step is captured once
    (after one eager warm-up step) and replayed, and evaluation likewise; the last partial batch of
    each epoch runs eagerly, so every image is used as on the CPU. The graph is re-captured every epoch
    because the learning rate and the drop-path probability are baked into it.
    """
    logger = logger or log
    device = torch.device(device)
    graphed = use_cuda_graph(cuda_graph, device, budget.precision)
    prec = configure_precision(device, budget.precision)
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
            if scaler is not None and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            history, start_epoch, elapsed = state["history"], int(state["epoch"]), float(state["seconds"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise NASError(f"{ckpt}: checkpoint does not fit this architecture or budget ({type(exc).__name__}: "
                           f"{exc}); move it away to restart this architecture") from None
        logger.info("%sresuming at epoch %d/%d", tag, start_epoch + 1, budget.epochs)
    step_fn = torch.compile(model) if compile_model else model
    train_step = TrainStep(step_fn, optimizer, aux_weight=budget.aux_weight, grad_clip=budget.grad_clip, amp=amp,
                           scaler=scaler, cuda_graph=graphed)
    eval_step = EvalStep(step_fn, amp=amp, cuda_graph=graphed)
    t_start = time.perf_counter()
    for epoch in range(start_epoch, budget.epochs):
        if hasattr(model, "set_drop_path"):  # DARTS: drop path grows linearly over training
            model.set_drop_path(budget.drop_path_prob * epoch / budget.epochs)
        train_loader.set_epoch(epoch)
        lr = epoch_lr(budget, epoch)
        for g in optimizer.param_groups:
            g["lr"] = lr
        train_step.reset()  # lr and drop-path p are baked into a graph: capture this epoch's
        tr = train_epoch(step_fn, train_loader, optimizer, step=train_step)
        va = evaluate(step_fn, valid_loader, step=eval_step)
        rec = {"epoch": epoch + 1, "lr": lr, "train_loss": tr["loss"], "train_acc": tr["acc"],
               "valid_loss": va["loss"], "valid_acc": va["acc"], "train_images_per_s": tr["n"] / tr["seconds"]}
        history.append(rec)
        if ckpt is not None:  # saved before the epoch is reported: a logged epoch is never trained again
            save_checkpoint(ckpt, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "rng": get_rng_state(), "history": history,
                                   "scaler": scaler.state_dict() if scaler is not None else {},
                                   "epoch": epoch + 1, "seconds": elapsed + time.perf_counter() - t_start})
        if writer is not None:
            for k in ("train_loss", "train_acc", "valid_loss", "valid_acc", "lr"):
                writer.add_scalar(f"{tb_prefix}/{k}", rec[k], epoch + 1)
        if (epoch + 1) % progress_every == 0 or epoch + 1 == budget.epochs:
            logger.info("%sepoch %d/%d lr %.4f train loss %.3f acc %.2f%% | valid loss %.3f acc %.2f%% | %.0f img/s",
                        tag, epoch + 1, budget.epochs, lr, tr["loss"], tr["acc"], va["loss"], va["acc"],
                        rec["train_images_per_s"])
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
        **prec,
        "cuda_graph": graphed,
        "device": str(device),
        "seconds": round(seconds, 3),
    }
