"""BPE budgets are exactly the paper's; flags override presets; unknown names list the choices."""

from __future__ import annotations

import argparse

import pytest

import param_setting as ps


def test_bpe_presets_match_paper():
    assert (ps.BPE1.epochs, ps.BPE1.batch_size, ps.BPE1.lr, ps.BPE1.layers, ps.BPE1.init_channels,
            ps.BPE1.image_size, ps.BPE1.cutout_length) == (10, 128, 0.03, 6, 8, 16, 0)
    assert (ps.BPE2.epochs, ps.BPE2.layers, ps.BPE2.init_channels) == (30, 16, 16)
    assert (ps.BPE2.batch_size, ps.BPE2.lr, ps.BPE2.image_size, ps.BPE2.cutout_length) == (128, 0.03, 16, 0)
    d = ps.DARTS_EVAL
    assert (d.epochs, d.layers, d.init_channels, d.batch_size, d.lr, d.cutout_length, d.aux_weight,
            d.drop_path_prob) == (600, 20, 36, 96, 0.025, 16, 0.4, 0.2)


def test_flags_override_preset():
    p = argparse.ArgumentParser()
    ps.add_budget_args(p)
    b = ps.budget_from_args(p.parse_args(["--param", "bpe2", "--epochs", "2", "--w_lr", "0.1"]))
    assert (b.epochs, b.lr, b.layers) == (2, 0.1, 16)


def test_unknown_param_lists_allowed():
    with pytest.raises(ValueError, match="allowed: BPE1, BPE2, DARTS"):
        ps.get_budget("BPE3")
