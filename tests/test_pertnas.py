"""PertNAS: search network, selection rules, perturb-val, and the search CLI end to end on tiny data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from genotypes import parse_genotype
from models.pertnas_net import N_EDGES, PertNASNetwork, edge_inputs, node_edges
from nas import pertnas
from nas.pertnas import (
    CANDIDATE_OPS,
    PertNASConfig,
    SearchData,
    coarse_select,
    fine_select,
    init_switches,
    node_select,
    perturb_val,
    to_genotype,
)

search_evolutionary = pytest.importorskip("search_evolutionary")


# one intra-op thread (conftest.one_thread): on a busy shared CPU, spinning threads make tiny nets 10x slower
pytestmark = pytest.mark.usefixtures("one_thread")


def _folder_data(root: Path, n_train: int = 16, n_test: int = 8, size: int = 8) -> Path:
    """Two classes of tiny PNGs told apart by brightness, in train/<class>/ and test/<class>/."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        for c in range(2):
            d = root / split / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n // 2):
                base = 60 + 120 * c
                img = np.clip(rng.normal(base, 30, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i}.png")
    return root


TINY = ["--dataset", "folder", "--batch_size", "8", "--epochs_per_step", "1", "--finetune_steps", "1",
        "--finetune_extra", "0,0,1", "--init_channels", "4", "--layers", "1", "--device", "cpu", "--threads", "1"]


def test_edge_layout_matches_darts():
    assert edge_inputs(0) == (0, 0) and edge_inputs(1) == (0, 1) and edge_inputs(2) == (1, 0)
    assert edge_inputs(13) == (3, 4)
    assert list(node_edges(3)) == [9, 10, 11, 12, 13]
    with pytest.raises(ValueError):
        edge_inputs(14)


def test_network_shapes_and_perturbation():
    torch.manual_seed(0)
    sw = [["sep_conv_3x3", "none"] for _ in range(N_EDGES)]
    sw[4] = list(CANDIDATE_OPS) + ["none"]
    sw[7] = ["none"]
    net = PertNASNetwork(sw, C=4, n_classes=5, layers=5).eval()
    assert [c.reduction for c in net.cells] == [False, True, False, True, False]
    x = torch.randn(2, 3, 16, 16)
    y0 = net(x)
    assert y0.shape == (2, 5)
    net.set_op(4, 3, False)  # switch off sep_conv_3x3 on edge 4 in every cell
    assert all(c.edges[4].weights[3] == 0.0 for c in net.cells)
    assert not torch.allclose(net(x), y0)
    net.set_op(4, 3, True)
    assert torch.allclose(net(x), y0)
    with pytest.raises(ValueError, match="14 edges"):
        PertNASNetwork(sw[:3])


def test_selection_rules_follow_pertnas():
    val = np.zeros((N_EDGES, 7))
    val[0] = [0.5, -3.0, 0.0, -1.0, 2.0, 0.1, 0.2]
    sw = coarse_select(val)
    assert sw[0] == [1, 3, -1]  # the two ops whose removal hurts most, plus 'none'
    assert fine_select([-0.5, -2.0], [1, 3]) == [3, -1]
    assert node_select({9: 0.0, 10: -1.0, 11: 0.5, 12: -4.0, 13: -0.1}, 3) == [10, 12]
    rng = random.Random(0)
    init = init_switches(rng, 7, op_cap=2)
    assert len(init) == N_EDGES and all(len(s) == 3 and s[-1] == -1 and s[0] < s[1] for s in init)


def test_to_genotype_is_normal_equals_reduce_and_parses():
    ops = CANDIDATE_OPS
    sw = [[-1]] * N_EDGES
    keep = {0: 3, 1: 2, 2: 0, 4: 5, 6: 4, 8: 1, 9: 3, 13: 6}
    sw = [[keep[e]] if e in keep else [-1] for e in range(N_EDGES)]
    g = to_genotype(sw, ops)
    assert g.normal == g.reduce
    assert g.normal[3] == (("sep_conv_3x3", 0), ("dil_conv_5x5", 4))
    assert parse_genotype(str(g)) == g


def test_perturb_val_restores_weights():
    torch.manual_seed(0)
    sw = [["skip_connect", "sep_conv_3x3", "none"] for _ in range(N_EDGES)]
    net = PertNASNetwork(sw, C=4, n_classes=2, layers=3)
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 2, (16,))
    batches = [(x[:8], y[:8]), (x[8:], y[8:])]
    data = SearchData(batches, batches, 2)
    opt = torch.optim.SGD(net.parameters(), 0.1, momentum=0.9)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    acc, diffs = perturb_val(net, opt, data, [(0, 0), (0, 1)], finetune_steps=2, device=torch.device("cpu"),
                             amp=None, epoch_key=0)
    assert len(diffs) == 2 and 0.0 <= acc <= 100.0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(w == 1.0 for c in net.cells for w in c.edges[0].weights)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="unknown candidate ops"):
        PertNASConfig(ops=("sep_conv_7x7",))
    with pytest.raises(ValueError, match="op_cap"):
        PertNASConfig(op_cap=9)


def test_cli_bad_flags_exit_2(tmp_path, capsys):
    from nas.cli import run_cli

    assert run_cli(search_evolutionary.main, ["--finetune_extra", "1,2", "--save", str(tmp_path)]) == 2
    assert "--finetune_extra" in capsys.readouterr().err
    assert run_cli(search_evolutionary.main, ["--nodes", "5", "--save", str(tmp_path)]) == 2


def test_search_runs_resumes_and_matches_uninterrupted(tmp_path, capsys):
    data = _folder_data(tmp_path / "data")
    common = TINY + ["--data_path", str(data), "--npop", "2", "--seed", "3", "--distributed"]
    # interrupted: 4 decisions per member, then resumed to the end
    assert search_evolutionary.main(common + ["--save", str(tmp_path / "a"), "--stop_after", "4"]) == 0
    state = json.loads((tmp_path / "a/search-try/member1/state.json").read_text())
    assert state["step"] == 4 and not (tmp_path / "a/search-try/member1/result.json").exists()
    assert search_evolutionary.main(common + ["--save", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "best genotype" in out
    # an uninterrupted run of member 0 (same seed) in another folder makes the same decisions
    one = [v if v != "2" or common[i - 1] != "--npop" else "1" for i, v in enumerate(common)]
    assert search_evolutionary.main(one + ["--save", str(tmp_path / "b")]) == 0
    ra = json.loads((tmp_path / "a/search-try/member0/result.json").read_text())
    rb = json.loads((tmp_path / "b/search-try/member0/result.json").read_text())
    assert ra["genotype"] == rb["genotype"]
    assert ra["valuation_matrix"] == rb["valuation_matrix"]
    for k in (0, 1):
        ra = json.loads((tmp_path / f"a/search-try/member{k}/result.json").read_text())
        g = parse_genotype(ra["genotype"])
        assert g.normal == g.reduce and all(len(node) == 2 for node in g.normal)
        phases = [s["phase"] for s in ra["perturbation_scores"]]
        assert phases.count("expand") == 14 and phases.count("fine") == 14 and phases.count("topology") == 3
        assert all(len(s["diffs"]) == 7 for s in ra["perturbation_scores"] if s["phase"] == "expand")
        assert ra["seed"] == 3 + k and "config" in ra and "versions" in ra
    r0 = json.loads((tmp_path / "a/search-try/member0/result.json").read_text())
    r1 = json.loads((tmp_path / "a/search-try/member1/result.json").read_text())
    assert r0["expand_order"] == list(range(14)) and r1["expand_order"] != r0["expand_order"]
    summary = json.loads((tmp_path / "a/search-try/results.json").read_text())
    assert summary["best_genotype"] in out and summary["nb301_predicted_acc"] is None
    assert list((tmp_path / "a/search-try/member0/tb").iterdir())  # tensorboard events
    # a finished run is kept, not redone
    res = tmp_path / "a/search-try/member0/result.json"
    mtime = res.stat().st_mtime_ns
    assert search_evolutionary.main(common + ["--save", str(tmp_path / "a")]) == 0
    assert res.stat().st_mtime_ns == mtime


def test_rerun_with_other_settings_is_refused(tmp_path, capsys):
    from nas.cli import run_cli

    data = _folder_data(tmp_path / "data")
    common = TINY + ["--data_path", str(data), "--npop", "1", "--save", str(tmp_path / "r"), "--stop_after", "1"]
    assert search_evolutionary.main(common) == 0
    assert run_cli(search_evolutionary.main, common[:-2] + ["--seed", "9"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_nb301_reports_why_not(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "nasbench301", None)  # import fails as when not installed
    g = to_genotype([[0]] * N_EDGES, CANDIDATE_OPS)
    score, why = pertnas.nb301_score(g, None)
    assert score is None and "not installed" in why
