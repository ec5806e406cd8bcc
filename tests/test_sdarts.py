"""SDARTS as DARTS-PT ships it: the ramp, the clip/renormalise closed form, PGD, where the perturbation applies."""

from __future__ import annotations

import json

import pytest
import torch

import project
import search
from models.supernets import DartsSupernet, NB201Supernet
from nas.data import ImageData
from nas.spaces import get_space
from nas.supernet import sdarts
from nas.supernet.architect import Architect
from nas.supernet.sdarts import SDartsPerturbation, clip_rows, epsilon_at, make_perturbation
from nas.supernet.search import SearchConfig, build_search_model, make_loaders, search_epoch
from tests.conftest import make_folder_dataset, make_image_data

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")  # a shared 2-core machine: no thread oversubscription


def _data(n_train=24, n_valid=16, **kw) -> ImageData:
    return make_image_data(n_train=n_train, n_valid=n_valid, **kw)


def _nb201(seed=0) -> NB201Supernet:
    torch.manual_seed(seed)
    m = NB201Supernet(C=4, N=1, n_classes=3)
    with torch.no_grad():
        m.alpha("cell").normal_(0, 1)
    return m


def test_epsilon_ramp_values():
    # train_search.py 298-300: 0.03 + (0.3 - 0.03) * epoch / epochs, epoch 0-based, never reaching 0.3
    assert epsilon_at(0, 50) == pytest.approx(0.03)
    assert epsilon_at(25, 50) == pytest.approx(0.165)
    assert epsilon_at(49, 50) == pytest.approx(0.2946)
    assert epsilon_at(99, 100, 0.5) == pytest.approx(0.03 + 0.47 * 0.99)


def test_clip_closed_form_on_fixed_noise():
    p = torch.tensor([[0.25, 0.25, 0.5], [0.25, 0.25, 0.5], [0.5, 0.25, 0.25]])
    u = torch.tensor([[-0.5, 0.125, 0.0], [-0.5, -0.375, -0.75], [0.75, 0.0, -0.5]])
    q = clip_rows(p + u)
    # row 0: [-0.25, 0.375, 0.5] -> clamp [0, 0.375, 0.5] -> / 0.875
    assert q[0].tolist() == pytest.approx([0.0, 0.375 / 0.875, 0.5 / 0.875])
    # row 1: [-0.25, -0.125, -0.25] all clamped to 0 -> 1 at the pre-clamp argmax (index 1)
    assert q[1].tolist() == [0.0, 1.0, 0.0]
    # row 2: [1.25, 0.25, -0.25] -> clamp [1, 0.25, 0] -> / 1.25
    assert q[2].tolist() == pytest.approx([0.8, 0.2, 0.0])


def test_random_smoothing_draw_and_range():
    m = _nb201()
    pert = SDartsPerturbation(m, "sdarts-rs", eps=0.3)
    p0 = pert.start()
    assert torch.allclose(p0["cell"], m.softmax("cell"))
    torch.manual_seed(7)
    got = pert.random(p0)["cell"]
    torch.manual_seed(7)
    u = torch.zeros_like(p0["cell"]).uniform_(-0.3, 0.3)  # Random_alpha: uniform_(-eps, eps) after softmax
    assert torch.allclose(got, clip_rows(p0["cell"] + u))
    assert torch.allclose(got.sum(1), torch.ones(6)) and got.min() >= 0 and not torch.allclose(got, p0["cell"])
    draws = sdarts.uniform_noise(torch.zeros(4000), 0.3)
    assert draws.min() >= -0.3 and draws.max() <= 0.3 and draws.min() < -0.29 and draws.max() > 0.29


def test_pgd_steps_ball_projection_and_keep_rule(monkeypatch):
    m = _nb201()
    m.train()
    x, y = torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    pert = SDartsPerturbation(m, "sdarts-adv", eps=0.1)
    p0 = pert.start()
    calls, clips, modes = [], [], []
    real_loss, real_clip = pert.loss, sdarts.clip_rows

    def loss(xx, yy, w):
        modes.append(m.training)
        calls.append(any(t.requires_grad for t in w.values()))
        return real_loss(xx, yy, w)

    def clip(p, valid=None):
        clips.append(p.detach().clone())
        return real_clip(p, valid)

    monkeypatch.setattr(pert, "loss", loss)
    monkeypatch.setattr(sdarts, "clip_rows", clip)
    p = pert.pgd(x, y, p0)["cell"]
    # loss before (no grad), 7 gradient steps, loss after (no grad); the attack in eval mode, train mode after
    assert calls == [False] + [True] * 7 + [False]
    assert modes == [False] * 9 and m.training
    # 1 random start + 7 steps, each clipped AFTER the projection into the eps-ball around p0
    assert len(clips) == 8
    for c in clips[1:]:
        assert (c - p0["cell"]).abs().max() <= 0.1 + 1e-6
    assert torch.allclose(p.sum(1), torch.ones(6))
    # kept only when the loss rose: make 'after' lower than 'before' and p0 comes back
    seq = iter([torch.tensor(5.0)] + [None] * 7 + [torch.tensor(1.0)])

    def rigged(xx, yy, w):
        v = next(seq)
        return real_loss(xx, yy, w) if v is None else v

    monkeypatch.setattr(pert, "loss", rigged)
    assert torch.equal(pert.pgd(x, y, p0)["cell"], p0["cell"])


def test_darts_space_masks_zero_weight_ops():
    torch.manual_seed(0)
    sp = get_space("s3")
    m = DartsSupernet(sp.supernet_ops, C=4, layers=3, n_classes=3)
    pert = SDartsPerturbation(m, "sdarts-rs", eps=0.9)
    torch.manual_seed(1)
    pert.prepare(torch.randn(2, 3, 8, 8), torch.tensor([0, 1]))
    for ct in m.cell_types:
        assert torch.equal(pert.masks[ct], (pert.weights[ct] != 0).cpu())
        assert not pert.masks[ct].all()  # eps 0.9 clamps some ops to exactly 0: DARTS-PT's MixedOp skips them
    assert SDartsPerturbation(_nb201(), "sdarts-rs").masks is None and make_perturbation("darts", m, 0.3) is None
    with pytest.raises(ValueError, match="allowed: sdarts-rs, sdarts-adv"):
        SDartsPerturbation(m, "sdarts-x")


def test_alpha_step_unperturbed_weight_step_perturbed():
    """One search step of sdarts-rs: alphas as plain DARTS (first order, clean), weights trained on noisy p."""
    data = _data()
    out = {}
    for method in ("darts", "sdarts-rs"):
        cfg = SearchConfig(space="nb201", method=method, layers=1, init_channels=4, batch_size=8, seed=3)
        model = build_search_model(cfg, 3, 3, CPU)
        w_optim = torch.optim.SGD(model.weights(), lr=0.1, momentum=0.9)
        arch = Architect(model, method=method)
        loaders = make_loaders(data, batch_size=8, device=CPU, seed=3)
        seen = []
        real = model.forward

        def spy(x, masks=None, weights=None, real=real, seen=seen):
            seen.append(None if weights is None else weights["cell"].detach().clone())
            return real(x, masks, weights)

        model.forward = spy
        pert = make_perturbation(method, model, 0.3)
        search_epoch(model, arch, w_optim, loaders.train, loaders.valid, epoch=0, lr=0.1, max_steps=1, perturb=pert)
        out[method] = (model.alpha("cell").detach().clone(), [p.detach().clone() for p in model.weights()], seen)
    (a_d, w_d, seen_d), (a_s, w_s, seen_s) = out["darts"], out["sdarts-rs"]
    assert torch.equal(a_d, a_s)  # the alpha step saw the clean supernet
    assert any(not torch.equal(u, v) for u, v in zip(w_d, w_s))  # the weight step did not
    assert seen_d == [None, None] and seen_s[0] is None and seen_s[1] is not None
    soft = torch.softmax(a_d, -1)
    assert not torch.allclose(seen_s[1], soft, atol=1e-3) and torch.allclose(seen_s[1].sum(1), torch.ones(6))


def test_projection_keeps_decided_rows_one_hot():
    m = _nb201()
    m.project_op("cell", 2, 3)
    pert = SDartsPerturbation(m, "sdarts-rs", eps=0.3)
    torch.manual_seed(0)
    pert.prepare(torch.randn(2, 3, 8, 8), torch.tensor([0, 1]))
    w, _ = m.arch_weights("cell", None, pert.weights["cell"])
    assert w[2].tolist() == [0.0, 0.0, 0.0, 1.0, 0.0]  # what the network sees on the projected edge
    undecided = [e for e in range(6) if e != 2]
    assert not torch.allclose(w[undecided], m.softmax("cell")[undecided].detach(), atol=1e-3)


@pytest.mark.parametrize("method,space", [("sdarts-rs", "nb201"), ("sdarts-adv", "nb201"), ("sdarts-adv", "s3")])
def test_toy_search_then_projection(tmp_path, method, space, capsys):
    make_folder_dataset(tmp_path / "data", n_classes=2, per_class=8)
    save = "sdarts-rs-201" if space == "nb201" else f"{method}-sota"
    argv = ["--method", method, "--space", space, "--layers", "1" if space == "nb201" else "3",
            "--init_channels", "4", "--epochs", "2", "--batch_size", "8", "--image_size", "8", "--seed", "0",
            "--save", save, "--dataset", "folder", "--data_path", str(tmp_path / "data"), "--device", "cpu",
            "--save_path", str(tmp_path / "exp"), "--no_tensorboard", "--threads", "1"]
    assert search.main(argv) == 0
    run = (tmp_path / "exp" / "nasbench201" / f"search-{save}-0-folder" if space == "nb201"
           else tmp_path / "exp" / "sota" / "folder" / f"search-{save}-{space}-0")
    assert f"run folder: {run}" in capsys.readouterr().out  # DARTS-PT's folder naming
    rec = json.loads((run / "search.json").read_text())
    assert rec["method"] == method and rec["finished"]
    assert project.main(["--resume_expid", str(run), "--proj_intv", "1", "--device", "cpu", "--threads", "1"]) == 0
    proj = json.loads((run / "projection.json").read_text())
    ops = [d for d in proj["decisions"] if d["kind"] == "op"]
    assert len(ops) == (6 if space == "nb201" else 28) and proj["method"] == method
    assert len(proj["history"]) >= 1  # fine-tuning ran with the perturbation
