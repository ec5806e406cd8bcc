"""Launch-free steps on CUDA: a step function captured once as a ``torch.cuda.CUDAGraph`` and replayed.

A BPE1 network (8 channels, 16x16 images) makes ~1,400 tiny kernels per training step; launched one by one
from Python the GPU idles most of the time. :class:`GraphedStep` runs the *same* step function the CPU
runs: eagerly for its first ``warmup`` calls (on a side stream, as PyTorch's whole-network capture
recipe asks: lazy cuDNN/cuBLAS set-up and the optimizer's momentum buffers must exist before capture),
then captures one call on static input buffers and from there on copies each batch into those buffers
and replays the graph: one launch per step. A batch of another shape (the last, partial batch of an
epoch) runs eagerly through the same function, so every image is still trained on and counted.

What the step reads or writes across calls (weights, optimizer state, BatchNorm statistics, the
device-side loss/accuracy accumulators) must live at fixed addresses: updated in place, never
re-allocated. Python floats the step uses (learning rate, drop-path probability) are baked into the
graph; the caller drops the graph (:meth:`GraphedStep.reset`) when they change. Random numbers drawn
inside the graph (DropPath's Bernoulli mask) come from CUDA's default generator, whose Philox offset
the graph advances on every replay, so each replay draws a fresh mask.
"""

from __future__ import annotations

from typing import Callable

import torch

from nas.errors import ConfigError

CUDA_GRAPH_CHOICES = ("auto", "on", "off")


def use_cuda_graph(mode: str, device: torch.device, precision: str = "32") -> bool:
    """Whether ``--cuda_graph mode`` captures on ``device`` at ``precision`` (ConfigError when it cannot).

    ``auto``: on for CUDA at fp32 and bf16. fp16 (``precision "16"``) trains eagerly: its GradScaler adapts
    the loss scale on the host's schedule (skip-and-shrink after an overflow), which a static graph would
    freeze; eager fp16 has no per-step host sync either (the fused SGD reads ``found_inf`` on the device).
    """
    if mode not in CUDA_GRAPH_CHOICES:
        raise ConfigError(f"unknown --cuda_graph {mode!r}; allowed: {', '.join(CUDA_GRAPH_CHOICES)}")
    if mode == "off":
        return False
    cuda = torch.device(device).type == "cuda"
    if mode == "on":
        if not cuda:
            raise ConfigError(f"--cuda_graph on needs a CUDA device, got {device} (use auto or off)")
        if str(precision) == "16":
            raise ConfigError("--cuda_graph on cannot capture --precision 16 (the GradScaler's dynamic loss "
                              "scale runs eagerly); use --cuda_graph auto/off or --precision bf16")
        return True
    return cuda and str(precision) != "16"


class GraphedStep:
    """``step(*tensors)`` eagerly, or replayed from a CUDA graph once ``warmup`` eager calls have run.

    ``fn`` must return nothing that the caller keeps (results go to in-place device accumulators).
    With ``enabled=False`` (the CPU, or ``--cuda_graph off``) every call is simply ``fn(*tensors)``.
    """

    def __init__(self, fn: Callable[..., None], *, enabled: bool, warmup: int = 1):
        self.fn = fn
        self.enabled = enabled
        self.warmup = warmup
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: tuple[torch.Tensor, ...] = ()
        self.n_eager = 0  # eager calls since the last reset (warmup and odd-shaped batches)
        self.n_replays = 0
        self.n_captures = 0

    def reset(self) -> None:
        """Drop the graph (and its memory pool); the next calls warm up and capture again."""
        self.graph = None
        self.static = ()
        self.n_eager = 0

    def _fits(self, tensors: tuple[torch.Tensor, ...]) -> bool:
        return len(tensors) == len(self.static) and all(
            t.shape == s.shape and t.dtype == s.dtype and t.stride() == s.stride()
            for t, s in zip(tensors, self.static))

    def __call__(self, *tensors: torch.Tensor) -> None:
        if not self.enabled:
            self.fn(*tensors)
            return
        if self.graph is not None:
            if self._fits(tensors):
                for s, t in zip(self.static, tensors):
                    s.copy_(t, non_blocking=True)
                self.graph.replay()
                self.n_replays += 1
            else:  # the last partial batch: same function, eagerly
                self.fn(*tensors)
            return
        if self.n_eager < self.warmup:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.fn(*tensors)
            torch.cuda.current_stream().wait_stream(side)
            self.n_eager += 1
            return
        # static input buffers keep the batch's layout (channels_last stays channels_last)
        self.static = tuple(torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device)
                            for t in tensors)
        for s, t in zip(self.static, tensors):
            s.copy_(t)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.fn(*self.static)
        self.graph = graph
        self.n_captures += 1
        graph.replay()  # the capture only recorded this batch's step: run it
        self.n_replays += 1
