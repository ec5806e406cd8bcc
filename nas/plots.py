"""Every figure the toolkit draws (matplotlib, Agg backend): search curves, estimate scatters, knob importance.

matplotlib is imported inside each function: it is an optional-weight dependency the core never needs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from nas.ranking import finite_or_worst, kendall_tau, spearman


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display); matplotlib is imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path, dpi: int = 120) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    fig.clf()
    pyplot().close(fig)


def _value_scale(values: Sequence[float]) -> tuple[str, dict, float | None]:
    """(scale, its arguments, lower y limit): linear; log for positive values over 2+ decades (synflow); symlog
    when such values include exact zeros (a cell whose paths are all cut) or negatives (grasp), its linear
    band at the 10th percentile of |value|, starting at 0 for values that cannot be negative."""
    vals = [v for v in values if math.isfinite(v)]
    mags = sorted(abs(v) for v in vals if v != 0)
    if len(mags) < 2 or mags[-1] / mags[0] <= 1e2:
        return "linear", {}, None
    if all(v > 0 for v in vals):
        return "log", {}, None
    return "symlog", {"linthresh": mags[len(mags) // 10]}, 0.0 if all(v >= 0 for v in vals) else None


def search_curve(values: Sequence[float], png: str | Path, *, title: str, value_label: str = "validation accuracy (%)",
                 baseline: Sequence[float] | None = None, baseline_scale: float = 1.0) -> None:
    """Each evaluation's value as a dot, the best so far as a step line, and (RL) the reward baseline."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
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
    plt = pyplot()
    n = len(panels)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.0 * rows), squeeze=False)
    for ax, (name, est, tru) in zip(axes.flat, panels):
        finite = [(e, t) for e, t in zip(est, tru) if math.isfinite(e)]
        ranked, _ = finite_or_worst(np.asarray(est, dtype=float))  # as the criteria table ranks them
        rho, tau = spearman(ranked, tru), kendall_tau(ranked, tru)
        ax.scatter([t for _, t in finite], [e for e, _ in finite], s=6, alpha=0.6)
        dropped = f"\n{len(est) - len(finite)} non-finite estimate(s) ranked last, not drawn" \
            if len(finite) < len(est) else ""
        ax.set_title(f"{name}\nSpearman rho {rho:.3f}, Kendall tau {tau:.3f}{dropped}", fontsize=8)
        ax.set_xlabel(f"{truth_name} (ground truth)", fontsize=7)
        pad = 0.03 * ((max(tru) - min(tru)) or 1.0)
        ax.set_xlim(min(tru) - pad, max(tru) + pad)  # every panel on the truth's whole range, even with points left out
        scale, kw, bottom = _value_scale([e for e, _ in finite])
        ax.set_yscale(scale, **kw)
        if bottom is not None:
            ax.set_ylim(bottom=bottom)
        ax.set_ylabel(name + ("" if scale == "linear" else f" ({scale} scale)"), fontsize=7)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    _save(fig, path, dpi=110)


def importance_bars(importance: dict[str, float], path: str | Path, *, title: str,
                    xlabel: str = "fANOVA importance for Spearman rho (sum = 1)") -> None:
    """Horizontal bars of knob importances, largest on top."""
    plt = pyplot()
    items = sorted(importance.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.barh([k for k, _ in items], [v for _, v in items], color="#4C72B0")
    for i, (_, v) in enumerate(items):
        ax.text(v, i, f" {v:.3f}", va="center", fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)
