"""search.py / project.py on tiny data: resume after a kill, projection decisions, CLI contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nas.checkpoint import load_checkpoint
from nas.cli import UsageError
from nas.data import ImageData
from nas.spaces import get_space
from nas.supernet.projection import ProjectionConfig, run_projection
from nas.supernet.search import SearchConfig, run_search
from tests.conftest import make_folder_dataset, make_image_data

CPU = torch.device("cpu")


def _data(n_train=32, n_valid=16, **kw) -> ImageData:
    return make_image_data(n_train=n_train, n_valid=n_valid, **kw)


def _cfg(space="nb201", method="darts", **kw) -> SearchConfig:
    base = dict(space=space, method=method, epochs=3, batch_size=16, layers=1 if space == "nb201" else 3,
                init_channels=4, image_size=8, seed=3)
    base.update(kw)
    return SearchConfig(**base)


class Killed(Exception):
    pass


def _kill_after(n):
    def hook(epoch):
        if epoch + 1 == n:
            raise Killed("simulated kill")
    return hook


@pytest.mark.parametrize("space,unrolled", [("nb201", False), ("s3", True)])
def test_resume_after_kill_gives_same_alphas(tmp_path, space, unrolled):
    data = _data()
    cfg = _cfg(space, unrolled=unrolled)
    full = run_search(cfg, tmp_path / "full", device=CPU, data=data, tensorboard=False)
    with pytest.raises(Killed, match="simulated kill"):
        run_search(cfg, tmp_path / "killed", device=CPU, data=data, tensorboard=False, on_epoch=_kill_after(1))
    assert load_checkpoint(tmp_path / "killed" / "checkpoint.pt")["epoch"] == 1
    resumed = run_search(cfg, tmp_path / "killed", device=CPU, data=data, tensorboard=False)
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "killed" / "checkpoint.pt")["model"]
    for key in a:
        if key.startswith("alpha_"):
            assert torch.equal(a[key], b[key]), key
    assert full["genotype"] == resumed["genotype"]
    assert [h["alphas"] for h in full["history"]] == [h["alphas"] for h in resumed["history"]]
    # the alphas did move (a test that cannot fail is a defect)
    assert any(np.abs(np.array(v)).max() > 1e-3 for v in full["history"][-1]["alphas"].values())


def test_blank_keeps_alphas_fixed_and_refuses_foreign_dir(tmp_path):
    data = _data()
    rec = run_search(_cfg(method="blank", epochs=2), tmp_path / "b", device=CPU, data=data, tensorboard=False)
    first, last = rec["history"][0]["alphas"]["cell"], rec["history"][-1]["alphas"]["cell"]
    assert first == last  # never trained
    values = [v for row in first for v in row]
    assert all(abs(v) < 0.01 for v in values) and any(v != 0.0 for v in values)  # DARTS' 1e-3 * randn
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("keep me")
    with pytest.raises(UsageError, match="holds files but no config.json"):
        run_search(_cfg(epochs=1), tmp_path / "other", device=CPU, data=data, tensorboard=False)
    with pytest.raises(UsageError, match="other settings .method: 'blank' -> 'darts'"):  # another config
        run_search(_cfg(method="darts", epochs=2), tmp_path / "b", device=CPU, data=data, tensorboard=False)


@pytest.mark.parametrize("space,intv", [("nb201", 1), ("s2", 0)])
def test_projection_decides_every_edge_and_resumes(tmp_path, space, intv):
    data = _data()
    run_search(_cfg(space, epochs=1), tmp_path / "r", device=CPU, data=data, tensorboard=False)
    pcfg = ProjectionConfig(proj_intv=intv, edge_decision="random", seed=1)
    rec = run_projection(tmp_path / "r", pcfg, device=CPU, data=data)
    sp = get_space(space)
    arch = sp.parse(rec["genotype"])
    sp.encode(arch)
    ops = [d for d in rec["decisions"] if d["kind"] == "op"]
    n_cells = 1 if space == "nb201" else 2
    assert len(ops) == 6 * n_cells if space == "nb201" else len(ops) == 14 * n_cells
    for d in ops:  # the kept op is the one whose removal hurt most
        assert d["chosen"] == min(d["scores"], key=lambda s: s["acc"])["op"]
    if space != "nb201":
        assert len([d for d in rec["decisions"] if d["kind"] == "edge"]) == 3 * n_cells
    assert json.loads((tmp_path / "r" / "projection.json").read_text())["genotype"] == rec["genotype"]
    if intv:
        with pytest.raises(Killed, match="simulated kill"):
            run_projection(tmp_path / "r", pcfg, device=CPU, data=data, out_name="p2", on_epoch=_kill_after(2))
        again = run_projection(tmp_path / "r", pcfg, device=CPU, data=data, out_name="p2")
        assert again["genotype"] == rec["genotype"]
        assert [d["chosen"] for d in again["decisions"]] == [d["chosen"] for d in ops]


def test_cli_search_then_project(tmp_path, capsys):
    import project
    import search

    root = make_folder_dataset(tmp_path / "data", n_classes=2, per_class=12)
    common = ["--dataset", "folder", "--data_path", str(root), "--device", "cpu", "--save_path", str(tmp_path / "s")]
    argv = ["--space", "nb201", "--method", "darts", "--layers", "1", "--init_channels", "4", "--epochs", "1",
            "--batch_size", "8", "--image_size", "8", "--name", "x", "--no_tensorboard"] + common
    assert search.main(argv) == 0
    rec = json.loads((tmp_path / "s" / "x" / "search.json").read_text())
    assert rec["finished"] and rec["genotype"].startswith("|")
    assert search.main(argv) == 0  # rerun: already finished, nothing redone
    assert project.main(["--resume_expid", str(tmp_path / "s" / "x"), "--proj_intv", "0", "--device", "cpu"]) == 0
    assert (tmp_path / "s" / "x" / "projection.json").is_file()
    from nas.cli import run_cli

    assert run_cli(search.main, argv + ["--space", "s9"]) == 2
    assert run_cli(project.main, ["--resume_expid", str(tmp_path / "nope")]) == 1
    assert "error:" in capsys.readouterr().err
