"""Atomic torch checkpoints: a kill leaves the old file or the new one, never half of one.

``save_checkpoint`` writes to a temporary file in the same folder, fsyncs it and ``os.replace``s it
over the target (an atomic rename on POSIX). ``load_checkpoint`` reads with ``weights_only=True``
(our checkpoints hold only tensors, numbers, strings, lists and dicts) and turns any failure into
one ``NASError('... corrupt checkpoint ...')``. RNG helpers capture and restore python/numpy/torch state
so that a resumed run draws the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.errors import NASError
from nas.io import atomic_write_bytes


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` with ``torch.save`` to ``path`` atomically (tmp file + ``os.replace``)."""
    # serialise to memory first so a failing torch.save never leaves a truncated file behind
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint``; any failure is one clear ``NASError``."""
    path = Path(path)
    if not path.is_file():
        raise NASError(f"{path}: no such checkpoint")
    try:
        # weights_only: never run pickled code from a file on disk (DEVELOPERS.md: never unpickle user text).
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any decode failure means the same thing to the user
        raise NASError(f"{path}: corrupt checkpoint ({type(exc).__name__}); move it away to start over") from None
    if not isinstance(state, dict):
        raise NASError(f"{path}: corrupt checkpoint (expected a dict, got {type(state).__name__})")
    return state


def get_rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and, if present, CUDA) RNG states in a weights_only-loadable form."""
    py = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        # Python's state is (version, tuple of 625 ints, gauss_next): store as plain lists.
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
                  int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``get_rng_state`` captured."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def python_rng_to_list(rng: random.Random) -> list[Any]:
    """A ``random.Random`` instance's state as plain lists (weights_only-loadable)."""
    s = rng.getstate()
    return [s[0], list(s[1]), s[2]]


def python_rng_from_list(state: list[Any]) -> random.Random:
    """Rebuild a ``random.Random`` from ``python_rng_to_list`` output."""
    rng = random.Random()
    rng.setstate((state[0], tuple(state[1]), state[2]))
    return rng


def ckpt_name(epoch: int | None) -> str:
    """A run folder's latest checkpoint (``checkpoint.pt``) or the one after ``epoch`` epochs."""
    return "checkpoint.pt" if epoch is None else f"checkpoint_{epoch}.pt"


def find_checkpoint(run_dir: Path, epoch: int | None) -> Path:
    """The latest checkpoint of a run, or the one after ``epoch`` epochs; NASError if missing."""
    p = run_dir / ckpt_name(epoch)
    if epoch is not None and not p.is_file():
        latest = run_dir / ckpt_name(None)
        if latest.is_file() and load_checkpoint(latest).get("epoch") == epoch:
            p = latest
    if not p.is_file():
        have = sorted(q.name for q in run_dir.glob("checkpoint*.pt"))
        raise NASError(f"{p}: no such checkpoint; {run_dir} has: {', '.join(have) or 'none'}")
    return p
