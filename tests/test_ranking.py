"""Ranking criteria on hand-made rankings whose answers are known."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from nas import ranking


def test_perfect_and_reversed_orders():
    truth = [float(i) for i in range(20)]
    perfect = ranking.evaluate_all([2 * x + 1 for x in truth], truth)
    assert perfect["kendall_tau"] == pytest.approx(1.0)
    assert perfect["spearman"] == pytest.approx(1.0)
    assert perfect["pearson"] == pytest.approx(1.0)
    # int(20 * 0.01) = 0: aw_nas skips K values that select no architecture
    assert set(perfect["p_at_top_k"]) == {"5%", "10%", "20%", "50%"}
    assert all(v == 1.0 for v in perfect["p_at_top_k"].values())
    assert all(v == 1.0 for v in perfect["p_at_bottom_k"].values())
    assert perfect["br_rank_at_k"]["20%"] == 1 and perfect["wr_rank_at_k"]["20%"] == 4
    reverse = ranking.evaluate_all([-x for x in truth], truth)
    assert reverse["kendall_tau"] == pytest.approx(-1.0)
    assert reverse["spearman"] == pytest.approx(-1.0)
    assert reverse["pearson"] == pytest.approx(-1.0)
    assert all(v == 0.0 for v in reverse["p_at_top_k"].values())
    # the estimator's top 10% (2 archs) are the truly worst two: positions 19 and 20 of 20
    assert reverse["br_rank_at_k"]["10%"] == 19 and reverse["wr_rank_at_k"]["10%"] == 20
    assert reverse["br_at_k"]["10%"] == pytest.approx(0.95) and reverse["wr_at_k"]["10%"] == pytest.approx(1.0)


def test_hand_computed_p_at_k_and_br_wr():
    # ten archs, truth best-first is a0 > a1 > ... > a9; the estimator orders them
    # a2, a0, a7, a1, a3, a4, a5, a6, a9, a8 (estimate = 10 - position in that order)
    order = [2, 0, 7, 1, 3, 4, 5, 6, 9, 8]
    truth = [10.0 - i for i in range(10)]
    est = [0.0] * 10
    for pos, arch in enumerate(order):
        est[arch] = 10.0 - pos
    # K = 20%: k = 2; estimator top 2 = {a2, a0}; true top 2 = {a0, a1} -> P = 1/2
    assert ranking.p_at_top_k(est, truth, 0.2) == 0.5
    # bottom 2: estimator {a9, a8}, true {a8, a9} -> 1
    assert ranking.p_at_bottom_k(est, truth, 0.2) == 1.0
    # K = 30%: top 3 = {a2, a0, a7} -> true positions 3, 1, 8 -> BR 1, WR 8; P = |{a2, a0}| / 3
    assert ranking.br_wr_at_k(est, truth, 0.3) == (1, 8)
    assert ranking.p_at_top_k(est, truth, 0.3) == pytest.approx(2 / 3)
    # K = 10%: only a2 -> true position 3 for both
    assert ranking.br_wr_at_k(est, truth, 0.1) == (3, 3)
    # bottom 30%: estimator {a6, a9, a8}, true bottom {a7, a8, a9} -> 2/3
    assert ranking.p_at_bottom_k(est, truth, 0.3) == pytest.approx(2 / 3)
    # Kendall: the only discordant pairs are (a2,a0), (a2,a1), (a7,a1), (a7,a3..a6), (a9,a8): 8 of 45
    assert ranking.kendall_tau(est, truth) == pytest.approx((45 - 2 * 8) / 45)
    # Spearman from rank differences d: sum d^2 over the 10 archs, rho = 1 - 6 sum d^2 / (n (n^2 - 1))
    d2 = sum((order.index(i) - i) ** 2 for i in range(10))
    assert ranking.spearman(est, truth) == pytest.approx(1 - 6 * d2 / (10 * 99))
    assert ranking.oneshot_average(est) == pytest.approx(5.5)


def _aw_nas_style(est, truth, ratio):
    """Second computation, straight from the definitions with sorted lists (no shared helpers)."""
    n = len(est)
    k = int(n * ratio + 1e-9)
    by_est = sorted(range(n), key=lambda i: -est[i])
    by_truth = sorted(range(n), key=lambda i: -truth[i])
    pos = {a: p for p, a in enumerate(by_truth)}
    top, bottom = by_est[:k], by_est[n - k:]
    p_top = len(set(top) & set(by_truth[:k])) / k
    p_bot = len(set(bottom) & set(by_truth[n - k:])) / k
    return p_top, p_bot, min(pos[a] for a in top) + 1, max(pos[a] for a in top) + 1


def test_random_rankings_match_second_computation():
    rng = random.Random(3)
    for _ in range(20):
        n = rng.randint(10, 60)
        truth = rng.sample(range(1000), n)
        est = [t + rng.gauss(0, 200) for t in truth]
        for ratio in (0.05, 0.1, 0.2, 0.5):
            if int(n * ratio) < 1:
                continue
            p_top, p_bot, br, wr = _aw_nas_style(est, truth, ratio)
            assert ranking.p_at_top_k(est, truth, ratio) == pytest.approx(p_top)
            assert ranking.p_at_bottom_k(est, truth, ratio) == pytest.approx(p_bot)
            assert ranking.br_wr_at_k(est, truth, ratio) == (br, wr)


def test_nonfinite_estimates_ranked_last_and_json_ready():
    truth = [1.0, 2.0, 3.0, 4.0]
    res = ranking.evaluate_all([float("nan"), 2.0, 3.0, 4.0], truth, ks=(0.25, 0.5))
    assert res["n_nonfinite_estimates"] == 1
    assert res["spearman"] == pytest.approx(1.0)
    json.dumps(res)  # plain types only
    const = ranking.evaluate_all([1.0] * 4, truth, ks=(0.5,))
    assert const["pearson"] is None


def test_bad_inputs():
    with pytest.raises(ValueError, match="length"):
        ranking.spearman([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2"):
        ranking.kendall_tau([1], [1])
    with pytest.raises(ValueError, match="fraction"):
        ranking.p_at_top_k([1, 2], [1, 2], 5)
    with pytest.raises(ValueError, match="non-finite"):
        ranking.evaluate_all([1, 2], [1, float("inf")])


def test_format_table_lists_every_setting():
    rows = [ranking.evaluate_all([1, 2, 3, 4], [1, 2, 4, 3], setting=s) for s in ("a", "b")]
    text = ranking.format_table(rows, k_show=("50%",))
    assert len(text.splitlines()) == 3 and "P@top50%" in text


def _aw_nas_p_at_tb_k(predict_scores, true_scores, ratio):
    """aw_nas examples/research/surgery/evaluation.py 63-84 (p_at_tb_k) for one ratio, verbatim logic."""
    from scipy import stats

    predict_scores, true_scores = np.asarray(predict_scores), np.asarray(true_scores)
    num_archs = len(predict_scores)
    predict_inds = np.argsort(predict_scores)[::-1]
    true_ranks = np.zeros(num_archs)
    true_ranks[np.argsort(true_scores)] = np.arange(num_archs)[::-1]
    k = int(num_archs * ratio)
    top_inds, bottom_inds = predict_inds[:k], predict_inds[num_archs - k:]
    p_top = len(np.where(true_ranks[top_inds] < k)[0]) / float(k)
    p_bot = len(np.where(true_ranks[bottom_inds] >= num_archs - k)[0]) / float(k)
    kd_top = stats.kendalltau(predict_scores[top_inds], true_scores[top_inds]).correlation
    kd_bot = stats.kendalltau(predict_scores[bottom_inds], true_scores[bottom_inds]).correlation
    return p_top, p_bot, kd_top, kd_bot


def test_kendall_within_top_and_bottom_k_by_hand():
    est = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    truth = [3, 1, 2, 10, 9, 8, 7, 6, 5, 4]
    # predicted top 3 = archs 0, 1, 2 with truths 3, 1, 2: pairs (0,1) and (0,2) concordant, (1,2) discordant
    top, bottom = ranking.kendall_at_top_bottom_k(est, truth, 0.3)
    assert top == pytest.approx(1 / 3)
    assert bottom == pytest.approx(1.0)  # archs 7, 8, 9: truths 6, 5, 4 in the estimate's order
    res = ranking.evaluate_all(est, truth, ks=(0.3,))
    assert res["kendall_top_k"]["30%"] == pytest.approx(1 / 3)
    assert ranking.kendall_at_top_bottom_k(est, truth, 0.05) is None  # k = int(0.5) = 0: skipped as aw_nas


def test_top_bottom_k_criteria_match_aw_nas_code_without_ties():
    rng = np.random.default_rng(5)
    for _ in range(10):
        n = int(rng.integers(40, 200))
        truth = rng.permutation(n).astype(float)
        est = truth + rng.normal(0, n / 3, n)
        for ratio in (0.05, 0.1, 0.5, 1.0):
            p_top, p_bot, kd_top, kd_bot = _aw_nas_p_at_tb_k(est, truth, ratio)
            assert ranking.p_at_top_k(est, truth, ratio) == pytest.approx(p_top)
            assert ranking.p_at_bottom_k(est, truth, ratio) == pytest.approx(p_bot)
            assert ranking.kendall_at_top_bottom_k(est, truth, ratio) == (pytest.approx(kd_top), pytest.approx(kd_bot))
