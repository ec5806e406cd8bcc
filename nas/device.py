"""The one device resolver and the CPU thread policy."""

from __future__ import annotations

import os

import torch

from nas.errors import ConfigError, NASError


def resolve_device(name: str | torch.device = "auto", *, local_rank: int | None = None) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` under torchrun means this rank's GPU (``local_rank``).

    Ranks beyond the number of GPUs share them round-robin (several small networks per GPU).
    An unknown name is a ``ConfigError``; CUDA asked for on a machine without it is a ``NASError``.
    """
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown --device {name!r}; allowed: auto, cpu, cuda, cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise NASError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
        if dev.index is None and local_rank is not None:
            dev = torch.device("cuda", local_rank % torch.cuda.device_count())
    elif dev.type not in ("cpu", "mps"):
        raise ConfigError(f"unknown --device {name!r}; allowed: auto, cpu, cuda, cuda:N")
    return dev


def usable_cores() -> int:
    """Cores this process may run on (containers often report fewer than the machine has)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def configure_threads(threads: int | None = None, *, world_size: int = 1) -> None:
    """``threads`` torch intra-op threads, or the usable cores split between ``world_size`` processes.

    Tiny BPE networks scale badly over intra-op threads, so several processes with a share each beat
    one process with all of them (bench/bpe1_speed.py).
    """
    n = threads if threads else max(1, usable_cores() // max(1, world_size))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
