"""Strategies on a fake estimator: seeded, BPE encoding round-trip, REA ageing, parse_json extraction."""

from __future__ import annotations

import random

from nas.estimators import Score
from nas.strategies import (
    RandomSearch,
    RegularizedEvolution,
    Reinforce,
    bpe_results,
    ea_sample_cells,
    make_encoding,
    rl_choose_by_prob,
    run_search,
)


class CountOps:
    """Fake estimator: value = number of sep_conv_3x3 edges (DARTS) / nor_conv_3x3 edges (NB201)."""

    name = "fake"

    def score(self, arch):
        return Score(float(str(arch).count("sep_conv_3x3") + str(arch).count("nor_conv_3x3")), 0.0)


def test_bpe_encoding_roundtrip_and_all_edges():
    enc = make_encoding("darts", "bpe")
    assert enc.choice_sizes() == [7] * 28
    g = enc.sample(random.Random(0))
    assert [len(n) for n in g.normal] == [2, 3, 4, 5]
    assert enc.decode(enc.encode(g)) == g
    m = enc.mutate(g, random.Random(1))
    assert sum(a != b for a, b in zip(enc.encode(g), enc.encode(m))) == 1


def test_seeded_and_rea_improves():
    enc = make_encoding("nb201")
    runs = [run_search(RegularizedEvolution(enc, 7, pop_size=5, sample_size=3), enc, CountOps(), n_iters=40)
            for _ in range(2)]
    assert [h["sample"] for h in runs[0]] == [h["sample"] for h in runs[1]]
    h = runs[0]
    assert max(x["value"] for x in h[20:]) >= max(x["value"] for x in h[:5])


def test_rl_learns_and_writes_bpe_keys():
    enc = make_encoding("darts", "bpe")
    strat = Reinforce(enc, 0, lr=0.05, controller="lstm")
    hist = run_search(strat, enc, CountOps(), n_iters=30, batch=3)
    res = bpe_results(hist, "rl")
    assert {"val_acc", "sample", "optim_prob", "best_genotype"} <= set(res)
    assert len(res["optim_prob"][0]) == 28 and abs(sum(res["optim_prob"][0][0]) - 1) < 1e-5
    run = {**res, "bpe_encoding": True, "encoding_obj": enc, "path": "x.json"}
    text = rl_choose_by_prob(run)
    from genotypes import parse_genotype
    g = parse_genotype(text.splitlines()[-1])
    assert all(len(n) == 2 for n in g.normal + g.reduce)


def test_ea_sampling_two_inputs(tmp_path):
    enc = make_encoding("darts", "bpe")
    hist = run_search(RandomSearch(enc, 1), enc, CountOps(), n_iters=4)
    run = {**bpe_results(hist, "evolution"), "bpe_encoding": True, "encoding_obj": enc, "path": "x.json"}
    cells = ea_sample_cells(run, number=10, seed=0, saveto=tmp_path / "s.txt")
    from genotypes import read_genotype_file
    gs = read_genotype_file(tmp_path / "s.txt")
    assert len(cells) == 10 and len(gs) == 10
    assert all(len(n) == 2 for g in gs for n in g.normal + g.reduce)


class Additive:
    """A fake NB201 landscape: the sum of a fixed score per (edge, op), so search can make progress."""

    name = "additive"

    def __init__(self, seed: int = 0):
        rng = random.Random(seed)
        self.w = [[rng.uniform(0, 10) for _ in range(5)] for _ in range(6)]
        self.enc = make_encoding("nb201")

    def score(self, arch):
        return Score(sum(self.w[e][o] for e, o in enumerate(self.enc.encode(arch))), 0.0)


def test_reinforce_default_learns_on_a_landscape():
    """Later rewards beat early ones: NB201's default REINFORCE (Adam, lr 0.01) moves towards good cells."""
    enc = make_encoding("nb201")
    gains = []
    for seed in range(3):
        hist = run_search(Reinforce(enc, seed), enc, Additive(seed), n_iters=200)
        vals = [h["value"] for h in hist]
        gains.append(sum(vals[-50:]) / 50 - sum(vals[:50]) / 50)
    assert min(gains) > 2.0, gains  # the landscape spans 0..60; random sampling would average 0 gain


def test_rea_beats_random_over_seeds_at_equal_budget():
    enc = make_encoding("nb201")
    best = {"rea": [], "random": []}
    for seed in range(10):
        land = Additive(100 + seed)
        rea = run_search(RegularizedEvolution(enc, seed, pop_size=10, sample_size=3), enc, land, n_iters=150)
        rnd = run_search(RandomSearch(enc, seed), enc, land, n_iters=150)
        best["rea"].append(max(h["value"] for h in rea))
        best["random"].append(max(h["value"] for h in rnd))
    assert sum(best["rea"]) > sum(best["random"])
    assert sum(a > b for a, b in zip(best["rea"], best["random"])) >= 8, best  # 10 of 10 when measured
