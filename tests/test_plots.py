"""Figures: axes that suit the values (log/symlog for proxies spanning decades), correlations as the table's."""

from __future__ import annotations

import math

import pytest

from nas import plots, ranking


@pytest.fixture
def figures(monkeypatch):
    saved = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, dpi=120: saved.append(fig))
    return saved


def test_estimate_scatter_scales_and_nonfinite(figures):
    truth = [10.0, 60.0, 80.0, 85.0, 90.0, 93.0]
    synflow = [0.0, 3e4, 2e6, 5e7, 4e8, 1.6e9]  # zeros and nine decades: symlog
    positive = [1e-3, 1e-1, 1.0, 10.0, 1e3, 1e4]  # log
    grasp = [-150.0, -3.0, 0.0, 20.0, 100.0, 210.0]  # signed: linear
    jacob = [float("nan"), -23.0, -15.0, -9.0, -8.5, -8.2]
    plots.estimate_scatter([("synflow", synflow, truth), ("pos", positive, truth), ("grasp", grasp, truth),
                            ("jacob_cov", jacob, truth)], "x.png", "cifar10_test_acc")
    axes = figures[0].axes
    assert [ax.get_yscale() for ax in axes[:4]] == ["symlog", "log", "linear", "linear"]
    assert "non-finite" in axes[3].get_title() and "ground truth" in axes[0].get_xlabel()
    row = ranking.evaluate_all(jacob, truth, setting="jacob_cov")  # the table's numbers, NaN ranked last
    assert f"Spearman rho {row['spearman']:.3f}" in axes[3].get_title()
    assert len(axes[3].collections[0].get_offsets()) == 5
    assert axes[3].get_xlim()[0] < 10.0  # the left-out point's truth is still on the axis


def test_search_curve_has_labels_and_best_so_far(figures):
    plots.search_curve([50.0, 70.0, 60.0, 80.0], "c.png", title="RL", value_label="cifar10_valid_acc (%)",
                       baseline=[0.5, 0.6, 0.6, 0.7], baseline_scale=100.0)
    ax = figures[0].axes[0]
    assert ax.get_xlabel() == "evaluation" and ax.get_ylabel() == "cifar10_valid_acc (%)"
    best = [line for line in ax.get_lines() if line.get_label() == "best so far"][0]
    assert list(best.get_ydata()) == [50.0, 70.0, 70.0, 80.0]
    base = [line for line in ax.get_lines() if line.get_label().startswith("baseline")][0]
    assert math.isclose(base.get_ydata()[-1], 70.0)
