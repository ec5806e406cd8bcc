"""torch.distributed for search: one candidate per rank, results gathered, rank 0 alone writes.

``init_distributed`` reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (set by torchrun) and falls back to a
single process when they are absent. gloo on CPU, NCCL on CUDA with each rank on its own GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from nas.device import resolve_device


@dataclass
class DistContext:
    """Who this process is in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistContext:
    """Join the torchrun job described by the environment, or return a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=str(resolve_device(device)))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    dev = resolve_device(device, local_rank=local)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)  # each rank its own GPU
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(rank=rank, world_size=world, local_rank=local, backend=backend, device=str(dev))


def broadcast_object(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    """``obj`` from rank ``src`` on every rank (identity when single-process)."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj`` in rank order (``[obj]`` when single-process)."""
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    """Wait for every rank."""
    if ctx.enabled:
        dist.barrier()


def cleanup(ctx: DistContext, *, timeout_s: float = 120.0, failed: bool = False) -> None:
    """Leave the process group together (safe to call when none was joined).

    A gloo rank that destroys the group while another still works (rank 0 writing results) can abort
    at exit ('terminate called without an active exception'), so ranks first meet at a barrier. It is
    bounded: when a peer has died, the survivor gives up after ``timeout_s`` instead of hanging. A rank
    leaving on an error (``failed``) does not wait: its error line comes at once, torchrun stops the rest.
    """
    if not (ctx.enabled and dist.is_initialized()):
        return
    if failed:
        dist.destroy_process_group()
        return
    if ctx.backend == "gloo":
        try:
            dist.monitored_barrier(timeout=timedelta(seconds=timeout_s))
        except RuntimeError:
            pass  # a peer is gone: leave anyway
    else:
        dist.barrier()
    dist.destroy_process_group()
