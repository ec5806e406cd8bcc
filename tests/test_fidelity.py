"""Each default that reproduces an original, checked against the original's closed form (issue 10).

Every test here fails on the toolkit's earlier behaviour (LSTM controller with Adam and entropy, the
last epoch as reward, the scheduler stepped after each epoch, an 8-op S5, unaugmented projection
scoring at batch 256, a cosine tuning schedule, no 200-epoch truth).
"""

from __future__ import annotations

import math
import random

import pytest
import torch

import search
from nas.benchmarks import BenchmarkReport
from nas.estimators.budgeted import BudgetedTrainingEstimator
from nas.spaces import get_space
from nas.strategies import Reinforce, make_encoding
from nas.supernet.projection import Projection, ProjectionConfig, run_projection
from nas.supernet.search import SearchConfig, run_search
from nas.train import epoch_lr
from param_setting import BPE1, BPE2, DARTS_EVAL
from tests.conftest import make_image_data

CPU = torch.device("cpu")


# --------------------------------------------------------------------------- REINFORCE (BPE run_rl.py 132-160, 310-321)


def test_bpe_controller_is_the_default_and_updates_by_the_closed_form():
    enc = make_encoding("darts")  # BPE's supernet genotype: 28 variables of 7 ops
    rl = Reinforce(enc, seed=0)
    assert rl.controller_name == "bpe" and isinstance(rl.opt, torch.optim.SGD) and rl.lr == 0.1
    assert rl.entropy_weight == 0.0 and rl.reward_scale == 100.0
    theta = [torch.zeros(7) for _ in range(28)]  # zero-initialised logits
    rewards = [50.0, 60.0, 55.0, 70.0, 40.0]  # percent; BPE's reward is the fraction
    rng = random.Random(1)
    num = den = 0.0
    for r_pct in rewards:
        acts = [rng.randrange(7) for _ in range(28)]
        r = r_pct / 100
        num, den = 0.9 * num + 0.1 * r, 0.9 * den + 0.1  # EMA updated BEFORE the advantage
        adv = r - num / den
        for e, a in enumerate(acts):  # theta_e += lr * A * (onehot(a_e) - softmax(theta_e))
            p = torch.softmax(theta[e], 0)
            onehot = torch.zeros(7)
            onehot[a] = 1
            theta[e] = theta[e] + 0.1 * adv * (onehot - p)
        log = rl.tell([acts], [r_pct])[0]
        assert log["baseline"] == pytest.approx(num / den, rel=1e-12)
        got = [lg.detach()[0] for lg in rl.controller.logits]
        for e in range(28):
            assert torch.allclose(got[e], theta[e], atol=1e-6), e
    # the first step never moves the policy (its advantage is exactly 0)
    first = Reinforce(enc, seed=0)
    first.tell([[3] * 28], [80.0])
    assert all(float(lg.detach().abs().max()) == 0.0 for lg in first.controller.logits)


def test_nb201_reinforce_is_autodl_projects_policy():
    enc = make_encoding("nb201")
    rl = Reinforce(enc, seed=0)
    assert rl.controller_name == "nb201" and isinstance(rl.opt, torch.optim.Adam) and rl.lr == 0.01
    assert rl.reward_scale == 1.0 and rl.entropy_weight == 0.0
    init = torch.cat([lg.detach() for lg in rl.controller.logits])
    assert init.shape == (6, 5) and 0 < float(init.abs().max()) < 0.01  # 1e-3 * randn
    rl.tell([[1] * 6], [80.0])  # advantage 0: Adam's step counter moves, the logits do not
    assert torch.equal(torch.cat([lg.detach() for lg in rl.controller.logits]), init)
    rl.tell([[2] * 6], [90.0])
    # Adam's second step with a first zero gradient: |delta| = lr * (0.1/0.19) / sqrt(0.001/0.001999)
    delta = torch.cat([lg.detach() for lg in rl.controller.logits]) - init
    assert torch.allclose(delta.abs(), torch.full_like(delta, 0.01 * 0.7441368), rtol=1e-4)
    assert bool((delta[:, 2] > 0).all()) and bool((delta[:, [0, 1, 3, 4]] < 0).all())


def test_bpe_controller_does_not_lock_onto_noise():
    """Pure-noise rewards: BPE's policy stays near uniform (the LSTM with Adam locked on: 0.42 max-prob)."""
    enc = make_encoding("darts")
    rl = Reinforce(enc, seed=0)
    rng = random.Random(0)
    for _ in range(100):
        v = rl.propose(1, 0)
        rl.tell(v, [rng.uniform(40, 60)])
    mean_max = sum(max(p) for p in rl.probabilities()) / 28
    assert mean_max < 0.2  # uniform is 1/7 = 0.143


# ----------------------------------------------------------------------------- BPE's schedule and reward


def test_bpe_schedule_equals_bpes_lrs():
    # BPE augment.py 97, 106-107 under torch 1.0: scheduler.step() before each epoch (bpe_original.md section 3)
    bpe = [0.0292658477, 0.0271352549, 0.0238167788, 0.0196352549, 0.0150000000, 0.0103647451, 0.0061832212,
           0.0028647451, 0.0007341523, 0.0]
    assert [epoch_lr(BPE1, e) for e in range(10)] == pytest.approx(bpe, abs=1e-10)
    assert epoch_lr(BPE2, 0) == pytest.approx(0.029918, abs=1e-6) and epoch_lr(BPE2, 29) == pytest.approx(0.0)
    after = BPE1.replace(scheduler_step="after")  # the corrected order stays available
    assert epoch_lr(after, 0) == pytest.approx(0.03) and epoch_lr(after, 9) > 0
    assert BPE1.reward == BPE2.reward == "best" and DARTS_EVAL.reward == "last"


def test_bpe_reward_is_the_best_epoch(monkeypatch, tmp_path):
    data = make_image_data(n_train=24, n_valid=12)
    budget = BPE1.replace(epochs=3, layers=3, init_channels=4, image_size=8, batch_size=8)
    est = BudgetedTrainingEstimator(budget, data, CPU, seed=0, workdir=tmp_path)
    s = est.score(get_space("darts").sample(random.Random(0)), tag="eval_0000")
    hist = [h["valid_acc"] for h in torch.load(tmp_path / "eval_0000" / "checkpoint.pt", weights_only=True)["history"]]
    assert s.value == max(hist) and s.extras["best_valid_acc"] == max(hist) and s.extras["reward"] == "best"
    # the wiring: a record whose best and last differ is scored by its best
    fake = {"valid_acc": 50.0, "best_valid_acc": 60.0, "reward": "best", "reward_value": 60.0, "seconds": 1.0}
    monkeypatch.setattr("nas.estimators.budgeted.train_architecture", lambda *a, **k: fake)
    assert est.score("x", tag="eval_0001").value == 60.0


# --------------------------------------------------------------------------- spaces (DARTS-PT sota/cnn/spaces.py 80-92)


def test_s5_is_dartspts_seven_ops_and_darts_keeps_none():
    s5 = get_space("s5").supernet_ops["normal"][0]
    assert s5 == ["max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
                  "dil_conv_5x5"]
    assert get_space("darts").supernet_ops["normal"][0] == [*s5, "none"]  # pt.darts / BPE genotypes.py 9-18
    assert get_space("s5").edge_ops == get_space("darts").edge_ops  # discrete cells are the same


# ----------------------------------------------------------------------------- BPE's DARTS search (search.py 113-123)


def test_bpe_search_line_is_second_order_and_reports_the_best_epoch(tmp_path):
    args = search.build_parser().parse_args(["--name=DARTS_BPE1", "--batch_size=128", "--w_lr=0.03", "--layers=6",
                                             "--init_channels=8", "--epochs=10", "--cutout_length=0",
                                             "--image_size=16"])
    cfg = search.config_from_args(args)
    assert (cfg.protocol, cfg.unrolled, cfg.space, cfg.scheduler_step, cfg.report, cfg.genotype_rank) == \
        ("bpe", True, "darts", "before", "best", "alphas")
    assert (cfg.lr, cfg.lr_min, cfg.batch_size, cfg.layers, cfg.init_channels, cfg.epochs) == \
        (0.03, 0.001, 128, 6, 8, 10)
    # DARTS_BPE1's lrs (bpe_original.md: eta_min 0.001, stepped before each epoch)
    assert cfg.lr_at(0) == pytest.approx(0.0292903195, abs=1e-9) and cfg.lr_at(9) == pytest.approx(0.001)
    dartspt = search.config_from_args(search.build_parser().parse_args(["--method", "darts"]))
    assert (dartspt.protocol, dartspt.unrolled, dartspt.space, dartspt.report) == ("dartspt", False, "s5", "last")
    # the best-accuracy epoch's genotype is the one reported
    small = SearchConfig.for_protocol("bpe", space="nb201", epochs=3, batch_size=16, layers=1, init_channels=4,
                                      image_size=8, seed=3)
    rec = run_search(small, tmp_path / "s", device=CPU, data=make_image_data(), tensorboard=False)
    best = max(rec["history"], key=lambda h: h["valid_acc"])
    assert rec["genotype"] == best["genotype"] and rec["genotype_epoch"] == best["epoch"] + 1


# ----------------------------------------------------------------------------- DARTS-PT projection (projection.py 130)


def test_projection_scores_as_dartspt(tmp_path):
    data = make_image_data(n_train=32, n_valid=40)
    cfg = SearchConfig(space="nb201", epochs=1, batch_size=16, layers=1, init_channels=4, image_size=8, seed=3)
    run_search(cfg, tmp_path / "r", device=CPU, data=data, tensorboard=False)
    pcfg = ProjectionConfig(proj_intv=1, seed=1)
    assert pcfg.proj_eval == "dartspt" and pcfg.crit_edge is None  # DARTS-PT never reads proj_crit_edge
    proj = Projection(tmp_path / "r", pcfg, device=CPU, data=data, report=BenchmarkReport(), out_name="p",
                      logger=__import__("logging").getLogger("t"))
    seen = []
    real = proj.loaders.valid.__iter__

    def spy():
        for x, y in real():
            seen.append(x.shape[0])
            yield x, y

    bn = next(m for m in proj.model.modules() if isinstance(m, torch.nn.BatchNorm2d) and m.track_running_stats)
    before = bn.running_mean.clone()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(proj.loaders.valid), "__iter__", lambda self: spy())
        s = proj.score(proj.model.full_masks())
    assert sum(seen) == 40 and max(seen) == 16  # the whole alpha half at the search batch size
    assert proj.loaders.valid.augment  # with the training augmentation
    assert not torch.equal(bn.running_mean, before)  # train-mode BN: running statistics move
    assert 0.0 <= s["acc"] <= 100.0
    rec = run_projection(tmp_path / "r", pcfg, device=CPU, data=data)
    assert {h["lr"] for h in rec["history"]} == {cfg.lr / 10}  # constant tuning lr (DARTS-PT never steps it)


# ----------------------------------------------------------------------------- NAS-Bench-201 truth


def test_search_reports_the_12_epoch_signal_and_the_200_epoch_truth(tmp_path):
    space = get_space("nb201")
    cells = list(space.enumerate())
    rows = ["arch_index,arch_str,cifar10_valid_acc,cifar10_test_acc"]
    truth = ["arch_index,arch_str,cifar10_test_acc"]
    for i, a in enumerate(cells):
        rows.append(f"{i},{a},{i % 97},{i % 89}")
        truth.append(f"{i},{a},{math.fmod(i * 7.0, 94.0):.2f}")
    (tmp_path / "t12.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "t200.csv").write_text("\n".join(truth) + "\n")
    report = BenchmarkReport(signal=tmp_path / "t12.csv", truth=tmp_path / "t200.csv")
    cfg = SearchConfig(space="nb201", epochs=1, batch_size=16, layers=1, init_channels=4, image_size=8, seed=3)
    rec = run_search(cfg, tmp_path / "r", device=CPU, data=make_image_data(), tensorboard=False, report=report)
    i = cells.index(space.key(rec["genotype"]))
    assert rec["bench_signal"] == i % 89 and rec["bench_truth"] == pytest.approx(math.fmod(i * 7.0, 94.0), abs=0.01)
    proj = run_projection(tmp_path / "r", ProjectionConfig(proj_intv=0), device=CPU, data=make_image_data(),
                          report=report)
    j = cells.index(space.key(proj["genotype"]))
    assert proj["bench_truth"] == pytest.approx(math.fmod(j * 7.0, 94.0), abs=0.01)
    assert proj["argmax_bench_truth"] == rec["bench_truth"]
