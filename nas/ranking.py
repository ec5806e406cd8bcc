"""Ranking criteria of an estimator against a ground truth (aw_nas' study of performance estimators).

Definitions follow Ning et al., "Evaluating Efficient Performance Estimators of Neural Architectures"
(NeurIPS 2021), code ``walkerning/aw_nas`` ``scripts/nas_201/evaluation.py``:

- Kendall's tau (scipy's tau-b), Spearman's rho, Pearson's r ("linear" there, ``np.corrcoef``);
- P@topK: of the estimator's top ``k = int(K * N)`` architectures, the fraction whose true rank is
  within the true top ``k``; P@bottomK the same for the bottom ``k`` (``p_at_tb_k`` there);
- BR@K / WR@K: the best / worst true rank among the estimator's top ``k`` (``minmax_n_at_k``),
  as a position (1 = best architecture) and as a fraction of N (what aw_nas plots);
- KT@topK / KT@bottomK: Kendall's tau within the estimator's top / bottom ``k`` (``p_at_tb_k``);
- the one-shot average: the mean of the estimates (``"oneshot average": np.mean(x)``).

Higher estimate and higher truth both mean "better". Ties are broken by position (stable sort),
where aw_nas' ``argsort()[::-1]`` breaks them by reverse position; only tied values differ.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy import stats

# aw_nas evaluation.py: P@tbK at 0.1%, 0.5%, 1%, 5%, 10%, 50% (and 100%), BR/WR@K up to 20%
DEFAULT_KS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.05, 0.10, 0.20, 0.50)


def _arrays(est: Sequence[float], truth: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Both sequences as float arrays of the same length (>= 2), or a clear ValueError."""
    e = np.asarray(est, dtype=float).ravel()
    t = np.asarray(truth, dtype=float).ravel()
    if e.shape != t.shape:
        raise ValueError(f"estimates and truth differ in length ({e.size} vs {t.size})")
    if e.size < 2:
        raise ValueError(f"need at least 2 architectures to rank, got {e.size}")
    return e, t


def _constant(e: np.ndarray, t: np.ndarray) -> bool:
    """A constant side has no correlation (NaN), said without scipy's warning."""
    return bool(np.all(e == e[0]) or np.all(t == t[0]))


def k_label(ratio: float) -> str:
    """'5%' for 0.05: the key under which a ratio's value is stored."""
    return f"{ratio * 100:g}%"


def n_at_ratio(n: int, ratio: float) -> int:
    """How many architectures ``ratio`` of ``n`` is, as aw_nas counts them: ``int(n * ratio)``."""
    if not 0 < ratio <= 1:
        raise ValueError(f"K must be a fraction in (0, 1], got {ratio}")
    return int(n * ratio + 1e-9)  # the epsilon keeps int(100 * 0.07) == 7, not 6


def best_first(values: np.ndarray) -> np.ndarray:
    """Indices from the highest value to the lowest (stable: earlier index first among ties)."""
    return np.argsort(-values, kind="stable")


def true_ranks(truth: np.ndarray) -> np.ndarray:
    """Rank of each architecture under the truth, 0 = best."""
    ranks = np.empty(truth.size, dtype=int)
    ranks[best_first(truth)] = np.arange(truth.size)
    return ranks


def kendall_tau(est: Sequence[float], truth: Sequence[float]) -> float:
    """Kendall's tau-b between estimates and truth."""
    e, t = _arrays(est, truth)
    if _constant(e, t):
        return float("nan")
    return float(stats.kendalltau(e, t).statistic)


def spearman(est: Sequence[float], truth: Sequence[float]) -> float:
    """Spearman's rank correlation (ties get average ranks)."""
    e, t = _arrays(est, truth)
    if _constant(e, t):
        return float("nan")
    return float(stats.spearmanr(e, t).statistic)


def pearson(est: Sequence[float], truth: Sequence[float]) -> float:
    """Pearson's linear correlation ("linear" in aw_nas)."""
    e, t = _arrays(est, truth)
    if _constant(e, t):
        return float("nan")
    return float(np.corrcoef(e, t)[0, 1])


def p_at_top_k(est: Sequence[float], truth: Sequence[float], ratio: float) -> float | None:
    """Fraction of the estimator's top ``int(K*N)`` that are in the true top ``int(K*N)``; None if k < 1."""
    e, t = _arrays(est, truth)
    k = n_at_ratio(e.size, ratio)
    if k < 1:
        return None
    ranks = true_ranks(t)[best_first(e)[:k]]
    return float(np.sum(ranks < k) / k)


def p_at_bottom_k(est: Sequence[float], truth: Sequence[float], ratio: float) -> float | None:
    """Fraction of the estimator's bottom ``int(K*N)`` that are in the true bottom ``int(K*N)``."""
    e, t = _arrays(est, truth)
    n = e.size
    k = n_at_ratio(n, ratio)
    if k < 1:
        return None
    ranks = true_ranks(t)[best_first(e)[n - k:]]
    return float(np.sum(ranks >= n - k) / k)


def br_wr_at_k(est: Sequence[float], truth: Sequence[float], ratio: float) -> tuple[int, int] | None:
    """(best, worst) true position (1 = best) among the estimator's top ``int(K*N)``; None if k < 1."""
    e, t = _arrays(est, truth)
    k = n_at_ratio(e.size, ratio)
    if k < 1:
        return None
    ranks = true_ranks(t)[best_first(e)[:k]]
    return int(ranks.min()) + 1, int(ranks.max()) + 1


def kendall_at_top_bottom_k(est: Sequence[float], truth: Sequence[float], ratio: float
                            ) -> tuple[float | None, float | None] | None:
    """Kendall tau within the estimator's top and bottom ``int(K*N)`` (aw_nas ``p_at_tb_k``'s kd_at_topk /
    kd_at_bottomk: tau between estimate and truth over the set the estimator ranks highest / lowest);
    None if k < 1, a None element where the set is too small or constant to correlate."""
    e, t = _arrays(est, truth)
    n = e.size
    k = n_at_ratio(n, ratio)
    if k < 1:
        return None
    order = best_first(e)

    def tau(idx: np.ndarray) -> float | None:
        v = kendall_tau(e[idx], t[idx]) if idx.size >= 2 else math.nan
        return None if math.isnan(v) else v

    return tau(order[:k]), tau(order[n - k:])


def oneshot_average(est: Sequence[float]) -> float:
    """aw_nas' 'one-shot average': the mean of the estimates (e.g. mean one-shot accuracy)."""
    return float(np.mean(np.asarray(est, dtype=float)))


def finite_or_worst(est: np.ndarray) -> tuple[np.ndarray, int]:
    """Non-finite estimates (a failed jacob_cov) ranked last, as aw_nas' fig. 4 script does."""
    bad = ~np.isfinite(est)
    if not bad.any():
        return est, 0
    good = est[~bad]
    worst = (good.min() - 1.0) if good.size else 0.0
    est = est.copy()
    est[bad] = worst
    return est, int(bad.sum())


def evaluate_all(est: Sequence[float], truth: Sequence[float], ks: Sequence[float] = DEFAULT_KS,
                 *, setting: str = "estimate") -> dict[str, Any]:
    """Every criterion of ``est`` against ``truth``: one JSON-ready dict (K keys as '5%')."""
    e, t = _arrays(est, truth)
    if not np.all(np.isfinite(t)):
        raise ValueError(f"{setting}: the ground truth holds non-finite values")
    e, n_bad = finite_or_worst(e)
    out: dict[str, Any] = {
        "setting": setting,
        "n": int(e.size),
        "n_nonfinite_estimates": n_bad,
        "kendall_tau": kendall_tau(e, t),
        "spearman": spearman(e, t),
        "pearson": pearson(e, t),
        "oneshot_average": oneshot_average(e),
        "p_at_top_k": {}, "p_at_bottom_k": {}, "br_at_k": {}, "wr_at_k": {},
        "br_rank_at_k": {}, "wr_rank_at_k": {}, "kendall_top_k": {}, "kendall_bottom_k": {},
    }
    for ratio in ks:
        lab = k_label(ratio)
        top = p_at_top_k(e, t, ratio)
        if top is None:  # k = int(K * N) < 1: aw_nas skips such K
            continue
        out["p_at_top_k"][lab] = top
        out["p_at_bottom_k"][lab] = p_at_bottom_k(e, t, ratio)
        br, wr = br_wr_at_k(e, t, ratio)  # type: ignore[misc]
        out["br_rank_at_k"][lab], out["wr_rank_at_k"][lab] = br, wr
        out["br_at_k"][lab], out["wr_at_k"][lab] = br / e.size, wr / e.size
        out["kendall_top_k"][lab], out["kendall_bottom_k"][lab] = kendall_at_top_bottom_k(e, t, ratio)
    # NaN is not JSON: a constant estimator has no correlation
    for key in ("kendall_tau", "spearman", "pearson"):
        if not math.isfinite(out[key]):
            out[key] = None
    return out


def format_table(rows: Sequence[dict[str, Any]], *, k_show: Sequence[str] = ("5%", "10%"),
                 extra: Sequence[str] = ()) -> str:
    """A plain-text table of ``evaluate_all`` results, one line per setting."""
    def f(v: Any, w: int = 7) -> str:
        if v is None:
            return "-".rjust(w)
        if isinstance(v, float):
            return f"{v:{w}.4f}"
        return str(v).rjust(w)

    head = ["setting".ljust(24), " kendall", "spearman", " pearson"]
    for k in k_show:
        head += [f"P@top{k}".rjust(9), f"P@bot{k}".rjust(9), f"BR@{k}".rjust(7), f"WR@{k}".rjust(7)]
    head += [x.rjust(10) for x in extra]
    lines = [" ".join(head)]
    for r in rows:
        cells = [str(r["setting"])[:24].ljust(24), f(r["kendall_tau"], 8), f(r["spearman"], 8), f(r["pearson"], 8)]
        for k in k_show:
            cells += [f(r["p_at_top_k"].get(k), 9), f(r["p_at_bottom_k"].get(k), 9),
                      f(r["br_at_k"].get(k), 7), f(r["wr_at_k"].get(k), 7)]
        cells += [f(r.get(x), 10) for x in extra]
        lines.append(" ".join(cells))
    return "\n".join(lines)
