"""torch.distributed for the toolkit's jobs: many independent trainings, coordinated, rank 0 alone writes.

``init_distributed`` reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (set by torchrun) and falls back to a
single process when they are absent. The process group is always gloo: ranks exchange small Python
objects and share torchrun's key-value store (nas.workqueue), never tensors, and ranks beyond the number
of GPUs share them round-robin (``local_rank % n_gpus``), which NCCL refuses. Long waits poll the store
(:func:`store_barrier`), never a collective with gloo's 30-minute timeout.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist

from nas.device import resolve_device
from nas.errors import ConfigError, NASError

T = TypeVar("T")


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
    if dev.type == "cuda":
        torch.cuda.set_device(dev)  # this rank's GPU (shared round-robin when ranks outnumber GPUs)
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    if rank == 0:
        print(placement_line(world, int(os.environ.get("LOCAL_WORLD_SIZE", str(world))), dev), file=sys.stderr)
    return DistContext(rank=rank, world_size=world, local_rank=local, backend="gloo", device=str(dev))


def placement_line(world: int, local_world: int, dev: torch.device) -> str:
    """One line saying where the ranks of a job run (CPU ranks when this machine has no GPU)."""
    if dev.type != "cuda":
        return f"{world} ranks on CPU ({local_world} on this machine; no GPU in use)"
    n = torch.cuda.device_count()
    share = f", {-(-local_world // n)} per GPU (round-robin)" if local_world > n else ""
    return f"{world} ranks, {local_world} on this machine's {n} GPU(s){share}; gloo + the job's store"


def broadcast_object(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    """``obj`` from rank ``src`` on every rank (identity when single-process)."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def on_main(fn: Callable[[], T], ctx: DistContext) -> T:
    """``fn()`` run on rank 0 and its result on every rank; its ``NASError`` (a refusal, missing data) is
    raised on every rank, so that all stop, not just rank 0 (a short collective: every rank calls this)."""
    if not ctx.enabled:
        return fn()
    result, problem = None, None
    if ctx.is_main:
        try:
            result = fn()
        except NASError as exc:
            problem = (isinstance(exc, ConfigError), str(exc))
    problem, result = broadcast_object((problem, result), ctx)
    if problem:
        raise (ConfigError if problem[0] else NASError)(problem[1])
    return result


def job_store(ctx: DistContext) -> Any:
    """The store of the torchrun job ``ctx`` belongs to (None when single-process)."""
    if not ctx.enabled:
        return None
    return dist.distributed_c10d._get_default_store()


def store_barrier(ctx: DistContext, name: str, *, timeout_s: float | None = None, poll_s: float = 0.2) -> bool:
    """Wait until every rank has reached ``name`` by polling the job's store; no collective, so no timeout
    but ``timeout_s`` (None: as long as it takes). True when all arrived."""
    if not (ctx.enabled and dist.is_initialized()):
        return True
    store = job_store(ctx)
    key = f"nasbarrier/{name}"
    store.add(key, 1)
    t0 = time.monotonic()
    while int(store.add(key, 0)) < ctx.world_size:
        if timeout_s is not None and time.monotonic() - t0 > timeout_s:
            return False
        time.sleep(poll_s)
    return True


def cleanup(ctx: DistContext, *, timeout_s: float | None = 120.0, failed: bool = False) -> None:
    """Leave the process group together (safe to call when none was joined).

    A gloo rank that destroys the group while another still works (rank 0 writing results) can abort
    at exit ('terminate called without an active exception'), so ranks first meet at a barrier on the
    store (polling, not a gloo collective with its fixed timeout). ``timeout_s`` bounds the wait; None waits
    as long as a peer still works (hours, for a cell in training: augment, the search loop, zero_shot). A
    peer that died makes torchrun stop the job. A rank leaving on an error (``failed``) does not wait: its
    error line comes at once, torchrun stops the rest.
    """
    if not (ctx.enabled and dist.is_initialized()):
        return
    if not failed:
        store_barrier(ctx, "cleanup", timeout_s=timeout_s)
    dist.destroy_process_group()
