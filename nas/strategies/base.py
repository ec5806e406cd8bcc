"""The ask/tell interface of every strategy, and random search."""

from __future__ import annotations

import random
from typing import Any

from nas.checkpoint import python_rng_from_list, python_rng_to_list


class Strategy:
    """Ask/tell interface: ``propose(n)`` encoded candidates, then ``tell`` their scores."""

    name = "base"

    def __init__(self, encoding: Any, seed: int):
        self.enc = encoding
        self.rng = random.Random(seed)

    def propose(self, n: int, n_done: int) -> list[list[int]]:
        raise NotImplementedError

    def tell(self, vecs: list[list[int]], values: list[float]) -> list[dict]:
        """Update from a finished batch; returns per-candidate extras to log (e.g. baseline)."""
        return [{} for _ in vecs]

    def state_dict(self) -> dict:
        return {"rng": python_rng_to_list(self.rng)}

    def load_state_dict(self, state: dict) -> None:
        self.rng = python_rng_from_list(state["rng"])


class RandomSearch(Strategy):
    """Uniform samples from the encoding (Li & Talwalkar 2019 baseline)."""

    name = "random"

    def propose(self, n: int, n_done: int) -> list[list[int]]:
        return [self.enc.encode(self.enc.sample(self.rng)) for _ in range(n)]
