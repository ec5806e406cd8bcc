"""Every figure the toolkit draws (matplotlib, Agg backend): search curves, estimate scatters, knob importance.

matplotlib is imported inside each function: it is an optional-weight dependency the core never needs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from scipy import stats


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path, dpi: int = 120) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    fig.clf()
    _pyplot().close(fig)


def _spans_decades(values: Sequence[float]) -> bool:
    pos = [v for v in values if v > 0 and math.isfinite(v)]
    return len(pos) == len(values) and len(pos) > 1 and max(pos) / min(pos) > 1e3


def search_curve(values: Sequence[float], png: str | Path, *, title: str, value_label: str = "validation accuracy (%)",
                 baseline: Sequence[float] | None = None, baseline_scale: float = 1.0) -> None:
    """Each evaluation's value as a dot, the best so far as a step line, and (RL) the reward baseline."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    xs = list(range(1, len(values) + 1))
    best, b = [], float("-inf")
    for v in values:
        b = max(b, v)
        best.append(b)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(xs, values, "o", ms=3, alpha=0.55, color="#4C72B0", label="evaluation")
    ax.step(xs, best, where="post", color="#C44E52", lw=1.8, label="best so far")
    if baseline is not None and any(x is not None for x in baseline):
        ax.plot(xs, [(x if x is not None else math.nan) * baseline_scale for x in baseline], color="#55A868",
                lw=1.4, label="baseline (EMA of rewards)")
    ax.set_xlabel("evaluation")
    ax.set_ylabel(value_label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, png)


def estimate_scatter(panels: Sequence[tuple[str, Sequence[float], Sequence[float]]], path: str | Path,
                     truth_name: str) -> None:
    """One estimate-vs-truth scatter per setting, with Spearman rho and Kendall tau in the title."""
    plt = _pyplot()
    n = len(panels)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.0 * rows), squeeze=False)
    for ax, (name, est, tru) in zip(axes.flat, panels):
        ax.scatter(tru, est, s=6, alpha=0.6)
        rho = stats.spearmanr(est, tru).statistic
        tau = stats.kendalltau(est, tru).statistic
        ax.set_title(f"{name}\nSpearman rho {rho:.3f}, Kendall tau {tau:.3f}", fontsize=8)
        ax.set_xlabel(truth_name, fontsize=7)
        if _spans_decades(est):
            ax.set_yscale("log")
            ax.set_ylabel(f"{name} (log scale)", fontsize=7)
        else:
            ax.set_ylabel(name, fontsize=7)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    _save(fig, path, dpi=110)


def importance_bars(importance: dict[str, float], path: str | Path, *, title: str,
                    xlabel: str = "fANOVA importance for Spearman rho (sum = 1)") -> None:
    """Horizontal bars of knob importances, largest on top."""
    plt = _pyplot()
    items = sorted(importance.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.barh([k for k, _ in items], [v for _, v in items], color="#4C72B0")
    for i, (_, v) in enumerate(items):
        ax.text(v, i, f" {v:.3f}", va="center", fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)
