"""Regularized (ageing) evolution: Real et al. 2019, as BPE's run_evolution.py 273-311 runs it."""

from __future__ import annotations

import collections
from typing import Any

from nas.errors import ConfigError
from nas.strategies.base import Strategy


class RegularizedEvolution(Strategy):
    """Ageing evolution (Real et al. 2019; BPE ``regularized_evolution``)."""

    name = "evolution"

    def __init__(self, encoding: Any, seed: int, *, pop_size: int, sample_size: int):
        super().__init__(encoding, seed)
        if pop_size < 1 or sample_size < 1:
            raise ConfigError("--pop_size and --sample_size must be >= 1")
        self.pop_size, self.sample_size = pop_size, sample_size
        self.population: collections.deque = collections.deque()  # (vec, value), oldest first

    def propose(self, n: int, n_done: int) -> list[list[int]]:
        out = []
        for i in range(n):
            if n_done + i < self.pop_size or not self.population:
                # BPE: the first pop_size evaluations are random models
                out.append(self.enc.encode(self.enc.sample(self.rng)))
                continue
            # tournament drawn with replacement (BPE: random.choice(list(population)))
            pool = list(self.population)
            sample = [pool[self.rng.randrange(len(pool))] for _ in range(self.sample_size)]
            parent = max(sample, key=lambda m: m[1])
            child = self.enc.mutate(self.enc.decode(parent[0]), self.rng)
            out.append(self.enc.encode(child))
        return out

    def tell(self, vecs: list[list[int]], values: list[float]) -> list[dict]:
        for v, val in zip(vecs, values):
            self.population.append((list(v), float(val)))
            if len(self.population) > self.pop_size:
                self.population.popleft()  # ageing: the oldest dies, not the worst
        return [{} for _ in vecs]

    def state_dict(self) -> dict:
        return {**super().state_dict(), "population": [[list(v), x] for v, x in self.population]}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.population = collections.deque((list(v), float(x)) for v, x in state["population"])
