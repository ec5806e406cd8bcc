"""Child seeds derived from a run's seed: one helper instead of ad hoc arithmetic.

``child_seed(seed, "eval", 12)`` hashes the parent seed and the keys through numpy's ``SeedSequence``
(well-mixed, independent streams for different keys; the same keys always give the same seed).
"""

from __future__ import annotations

import zlib

import numpy as np


def _key_int(key: int | str) -> int:
    if isinstance(key, (bool, np.bool_)):
        return int(key)
    if isinstance(key, (int, np.integer)):
        if key < 0:
            raise ValueError(f"seed keys must be >= 0, got {key}")
        return int(key)
    return zlib.crc32(str(key).encode("utf-8"))


def child_seed(seed: int, *keys: int | str) -> int:
    """A 31-bit seed for the child named by ``keys`` of a run seeded with ``seed``."""
    entropy = [_key_int(seed if seed >= 0 else 2**32 + seed)]
    ss = np.random.SeedSequence(entropy, spawn_key=tuple(_key_int(k) for k in keys))
    return int(ss.generate_state(1, dtype=np.uint32)[0] & 0x7FFFFFFF)
