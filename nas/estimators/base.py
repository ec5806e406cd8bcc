"""The estimator interface every strategy calls: ``score(arch) -> Score(value, cost_seconds, extras)``.

BPE (Zheng et al., CVPR 2020) is a choice of estimator, not a search algorithm: a strategy never knows
which estimator scores its candidates (budgeted training, a benchmark table, a zero-shot proxy, a
one-shot supernet, or your own object with a ``name`` and a ``score`` method).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class Score:
    """What an estimator says about one architecture: higher ``value`` is better."""

    value: float
    cost_seconds: float
    extras: dict = field(default_factory=dict)


@runtime_checkable
class Estimator(Protocol):
    """Anything with a ``name`` and ``score(arch) -> Score``."""

    name: str

    def score(self, arch: Any) -> Score: ...


def call_score(estimator: Estimator, arch: Any, *, tag: str | None = None) -> Score:
    """``estimator.score(arch)``, passing ``tag`` (a per-evaluation work-folder name) when it accepts one."""
    try:
        accepts_tag = "tag" in inspect.signature(estimator.score).parameters
    except (TypeError, ValueError):
        accepts_tag = False
    s = estimator.score(arch, tag=tag) if accepts_tag else estimator.score(arch)
    if not isinstance(s, Score):  # a bare number is accepted from third-party estimators
        s = Score(float(s), 0.0)
    return s
