"""Single-path one-shot supernet (aw_nas' study): de-isomorphism, sampling, training resume, estimation CSV."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn as nn

import zero_shot
from nas.checkpoint import load_checkpoint
from nas.data import ImageData
from nas.estimators.oneshot import SinglePathEstimator
from nas.nb201_iso import canonicalize, check_valid_arch, deiso_list, iso_classes, live_edges
from nas.spaces import NB201Space
from nas.supernet.singlepath import PathSampler, SinglePathConfig, SinglePathForward, path_of, run_singlepath
from tests.conftest import make_image_data

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")  # a shared 2-core machine: no thread oversubscription
arch_from_indices = NB201Space().decode  # 6 op indices in edge order
A = arch_from_indices([1, 4, 4, 4, 1, 4])  # aw_nas tests/test_nasbench201.py 272-277: an isomorphic pair
B = arch_from_indices([1, 4, 4, 1, 4, 4])
OTHER = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"


def _data(n_train=40, n_valid=20, **kw) -> ImageData:
    return make_image_data(n_train=n_train, n_valid=n_valid, **kw)


def _cfg(**kw) -> SinglePathConfig:
    base = dict(epochs=3, batch_size=16, layers=1, init_channels=4, image_size=8, seed=1, dataset="folder")
    base.update(kw)
    return SinglePathConfig(**base)


class Killed(Exception):
    pass


# ----------------------------------------------------------------------------- de-isomorphism


def test_whole_space_has_6466_classes_as_aw_nas():
    classes = iso_classes()
    assert len(classes) == 6466 and sum(len(v) for v in classes.values()) == 15625
    sizes = Counter(len(v) for v in classes.values())
    assert sizes[1] == 5116  # singletons (my enumeration of aw_nas' canonicalize, notes B.2)
    assert len(classes["###"]) == 225 and len(classes["##(0)@nor_conv_1x1"]) == 275
    assert canonicalize(A) == canonicalize(B) and canonicalize(A) != canonicalize(OTHER)
    # the validity filter agrees within every class; 6,321 classes pass
    assert all(len({check_valid_arch(a) for a in v}) == 1 for v in classes.values())
    assert len(deiso_list(valid_only=True)) == 6321


def test_canonical_strings_by_hand():
    assert canonicalize([0] * 6) == "###"
    # 1<-0 skip, 2<-1 conv3, 3<-2 skip: node 2 = "#" + "(0)@conv3", node 3 = "#" + "#" + node 2 (sorted)
    assert canonicalize([1, 0, 3, 0, 0, 1]) == "###(0)@nor_conv_3x3"
    assert canonicalize([0, 0, 0, 2, 0, 0]) == "##(0)@nor_conv_1x1"
    # node 2 with two 'none' inputs is "##", not dead: a conv on 3<-2 stays distinct (notes B.2)
    assert canonicalize([0, 0, 0, 0, 0, 3]) == "##(##)@nor_conv_3x3"
    # aw_nas runs edges from input-reachable to output-reaching nodes ('none' edges included: they add 0)
    assert live_edges(arch_from_indices([0, 0, 0, 0, 0, 3])) == [False, True, False, True, False, False]
    assert live_edges(arch_from_indices([0, 3, 0, 0, 0, 1])) == [False, True, False, True, False, True]


def test_sampler_deiso_and_uniform():
    s = PathSampler(_cfg())
    draws = [s.sample() for _ in range(300)]
    reps = set(deiso_list())
    assert all(a in reps and check_valid_arch(a) for a in draws)
    u = PathSampler(_cfg(sampling="uniform"))
    draws = [u.sample() for _ in range(300)]
    assert all(check_valid_arch(a) for a in draws) and not set(draws) <= reps  # non-representatives too
    nochk = PathSampler(_cfg(sampling="uniform", check_valid=False))
    assert not all(check_valid_arch(nochk.sample()) for _ in range(300))
    with pytest.raises(ValueError, match="deiso needs --space nb201"):
        _cfg(space="s5").check()


def test_path_masks_dead_edges_and_unused_grads_emulation():
    from models.supernets import NB201Supernet

    torch.manual_seed(0)
    model = NB201Supernet(C=4, N=1, n_classes=3)
    arch = arch_from_indices([0, 3, 2, 0, 2, 1])  # node 1 dead: edges 2<-1 and 3<-1 never run in aw_nas
    w, masks = path_of(model, arch)
    assert masks["cell"][:, 1:].sum(1).tolist() == [0, 1, 0, 0, 0, 1]  # column 0 is 'none', never run
    # torch<1.5 zero_grad(): a parameter that once had a gradient keeps moving by weight decay + momentum
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    for mode, expect_move in (("zero", True), ("none", False)):
        torch.manual_seed(0)
        m = NB201Supernet(C=4, N=1, n_classes=3)
        net = SinglePathForward(m, mode)
        opt = torch.optim.SGD(m.weights(), lr=0.1, momentum=0.9, weight_decay=0.1)
        conv1 = m.cells[0].edges[0].ops[2][1].weight  # edge 1<-0, nor_conv_1x1
        for a in (arch_from_indices([2, 0, 0, 0, 1, 0]), arch_from_indices([3, 0, 0, 0, 1, 0])):
            net.mark_used()
            net.set_path(a)
            opt.zero_grad(set_to_none=True)
            before = conv1.detach().clone()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        assert (not torch.equal(before, conv1.detach())) == expect_move, mode


# ----------------------------------------------------------------------------- training


def test_resumed_training_equals_uninterrupted(tmp_path):
    data = _data()
    cfg = _cfg(plateau_patience=1, plateau_factor=0.5)
    full = run_singlepath(cfg, tmp_path / "full", device=CPU, data=data, save_every=2)

    def kill(epoch):
        if epoch == 0:
            raise Killed("simulated kill")

    with pytest.raises(Killed, match="simulated kill"):
        run_singlepath(cfg, tmp_path / "k", device=CPU, data=data, on_epoch=kill)
    resumed = run_singlepath(cfg, tmp_path / "k", device=CPU, data=data, save_every=2)
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "k" / "checkpoint.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    strip = [{k: v for k, v in h.items() if k not in ("seconds", "images_per_s")} for h in full["history"]]
    assert strip == [{k: v for k, v in h.items() if k not in ("seconds", "images_per_s")} for h in resumed["history"]]
    assert a["scheduler"] == b["scheduler"] and a["used"] == b["used"]
    assert (tmp_path / "full" / "checkpoint_2.pt").is_file() and full["finished"]
    # the weights did train
    init = load_checkpoint(tmp_path / "full" / "checkpoint_2.pt")["model"]
    assert any(not torch.equal(init[k], a["model"][k]) for k in a["model"] if k.startswith("cells"))
    with pytest.raises(ValueError, match="other settings"):
        run_singlepath(_cfg(lr=0.1), tmp_path / "full", device=CPU, data=data)


# ----------------------------------------------------------------------------- estimation


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("sp")
    data = _data(n_valid=20)
    run_singlepath(_cfg(epochs=1, dropout=0.5), root / "run", device=CPU, data=data)
    return root / "run", data


def test_estimator_matches_awnas_derive_by_hand(trained, tmp_path):
    run, data = trained
    with SinglePathEstimator(run, tmp_path / "cls.csv", CPU, data=data, batch_size=8) as est:
        running = est.model.cells[0].edges[1].ops[3][2].running_mean.clone()
        s = est.score(OTHER)
        # second computation: train-mode BN, dropout off, 3 batches (8, 8, 4), unweighted mean of batch accuracies
        w, masks = path_of(est.model, OTHER)
        est.model.train()
        est.model.dropout.eval()
        accs = []
        with torch.no_grad():
            for i in range(0, 20, 8):
                x = (data.valid_x[i:i + 8].float() - 127.5) / 63.75
                accs.append(100.0 * float((est.model(x, masks, w).argmax(1) == data.valid_y[i:i + 8]).float().mean()))
        assert s.value == pytest.approx(np.mean(accs))
        assert s.extras["oneshot_batch_std"] == pytest.approx(np.std(accs))
        assert torch.equal(running, est.model.cells[0].edges[1].ops[3][2].running_mean)  # no recalibration


def test_isomorphs_share_one_evaluation(trained, tmp_path):
    run, data = trained
    with SinglePathEstimator(run, tmp_path / "cls.csv", CPU, data=data, batch_size=8) as est:
        assert est.class_of(A) == est.class_of(B)
        assert est.score(A).value == est.score(B).value
        est.score(OTHER)
        assert len(est.table.done) == 2
    rows = list(csv.DictReader(open(tmp_path / "cls.csv")))
    assert [r["arch_str"] for r in rows] == [est.class_of(A), est.class_of(OTHER)]
    with SinglePathEstimator(run, tmp_path / "nodeiso.csv", CPU, data=data, batch_size=8, deiso=False) as est:
        est.score(A)
        est.score(B)
        assert len(est.table.done) == 2  # without de-isomorphism each cell is its own computation


def test_estimate_csv_complete_and_resumable(trained, tmp_path, monkeypatch):
    run, data = trained
    monkeypatch.setattr("nas.supernet.singlepath.load_singlepath_data", lambda cfg, **kw: data)
    monkeypatch.setattr("nas.estimators.oneshot.load_singlepath_data", lambda cfg, **kw: data)
    archs = [A, B, OTHER, arch_from_indices([3, 3, 3, 3, 3, 3]), arch_from_indices([0, 0, 0, 0, 0, 0])]
    (tmp_path / "a.txt").write_text("\n".join(archs) + "\n")
    out = tmp_path / "s.csv"
    argv = ["--space", "nb201", "--archs", str(tmp_path / "a.txt"), "--measures", "--oneshot", str(run),
            "--out", str(out), "--device", "cpu"]
    real = SinglePathEstimator.score
    calls = []

    def dying(self, arch):
        if len(calls) == 3:
            raise Killed("simulated kill")
        calls.append(arch)
        return real(self, arch)

    monkeypatch.setattr(SinglePathEstimator, "score", dying)
    with pytest.raises(Killed, match="simulated kill"):
        zero_shot.main(argv)
    monkeypatch.setattr(SinglePathEstimator, "score", real)
    first = {r["arch_str"]: r for r in csv.DictReader(open(out))}
    assert len(first) == 3
    assert zero_shot.main(argv) == 0
    rows = {r["arch_str"]: r for r in csv.DictReader(open(out))}
    assert set(rows) == set(archs)
    header = ["arch_str", "oneshot", "oneshot_neg_loss", "oneshot_batch_std", "seconds"]
    assert list(next(iter(rows.values()))) == header
    assert all(rows[a]["oneshot"] == first[a]["oneshot"] for a in first)  # kept, not recomputed
    assert rows[A]["oneshot"] == rows[B]["oneshot"]
    classes = list(csv.DictReader(open(f"{out}.oneshot_classes.csv")))
    assert len(classes) == len({canonicalize(a) for a in archs}) == 4  # each class evaluated once
    assert zero_shot.main(argv) == 0  # complete: nothing to do
    with pytest.raises(ValueError, match="other settings"):
        zero_shot.main(argv + ["--oneshot_epoch", "1"])


def test_darts_space_single_path_trains_and_scores(tmp_path):
    import random

    from nas.spaces import get_space

    data = _data()
    cfg = _cfg(space="s5", sampling="uniform", layers=3, epochs=1)
    rec = run_singlepath(cfg, tmp_path / "r", device=CPU, data=data)
    assert rec["finished"] and rec["history"][0]["train_loss"] > 0
    sp = get_space("s5")
    g = sp.sample(random.Random(0))
    with SinglePathEstimator(tmp_path / "r", tmp_path / "c.csv", CPU, data=data, batch_size=8) as est:
        w, masks = path_of(est.model, g)
        assert all(int(masks[ct].sum()) == 8 for ct in ("normal", "reduce"))  # 2 inputs x 4 nodes, one op each
        s = est.score(g)
        assert 0.0 <= s.value <= 100.0 and list(est.table.done) == [sp.key(g)]
