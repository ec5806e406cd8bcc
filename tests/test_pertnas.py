"""PertNAS: search network, selection rules, perturb-val, and the search CLI end to end on tiny data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from genotypes import parse_genotype
from models.networks import build_network
from models.pertnas_net import N_EDGES, PertNASNetwork, edge_inputs, node_edges
from nas.pertnas import (
    CANDIDATE_OPS,
    PERTNAS_OPS,
    PertNASConfig,
    SearchData,
    coarse_select,
    fine_select,
    init_switches,
    node_select,
    perturb_val,
    to_genotype,
)
from nas.pertnas.population import share_valuation
from nas.pertnas.run import nb301_score
from nas.seeds import child_seed

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
    with pytest.raises(ValueError, match="14"):
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
        PertNASConfig(ops=("conv_9x9",))  # sep_conv_7x7 is a PertNAS op now (--ops pertnas)
    with pytest.raises(ValueError, match="op_cap"):
        PertNASConfig(op_cap=10)  # PertNAS' list has 9 entries
    with pytest.raises(ValueError, match="op_cap"):
        PertNASConfig(op_cap=8, ops=CANDIDATE_OPS)
    with pytest.raises(ValueError, match="perturb_restore"):
        PertNASConfig(perturb_restore="deep")


def test_cli_bad_flags_exit_2(tmp_path, capsys):
    from nas.cli import run_cli

    assert run_cli(search_evolutionary.main, ["--finetune_extra", "1,2", "--save", str(tmp_path)]) == 2
    assert "--finetune_extra" in capsys.readouterr().err
    assert run_cli(search_evolutionary.main, ["--nodes", "5", "--save", str(tmp_path)]) == 2


def test_search_runs_resumes_and_matches_uninterrupted(tmp_path, capsys):
    data = _folder_data(tmp_path / "data")
    common = TINY + ["--data_path", str(data), "--npop", "2", "--seed", "3", "--distributed",
                     "--population", "independent", "--ops", "darts"]
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
        assert ra["seed"] == child_seed(3, "member", k) and "config" in ra and "versions" in ra
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
    score, why = nb301_score(g, None)
    assert score is None and "cannot import nasbench301" in why
    # PertNAS' op list: sep_conv_7x7 is no NAS-Bench-301 op, said before anything is loaded
    g7 = to_genotype([[5]] * N_EDGES, PERTNAS_OPS)
    score, why = nb301_score(g7, None)
    assert score is None and "sep_conv_7x7" in why and "--ops darts" in why


def test_pertnas_op_list_builds_and_names_duplicates():
    assert len(PERTNAS_OPS) == 9 and PERTNAS_OPS[5] == "sep_conv_7x7" and PERTNAS_OPS[7] == PERTNAS_OPS[8]
    sw = [[8] if e in (0, 1) else [5] if e in (2, 3) else [-1] for e in range(N_EDGES)]
    sw[5], sw[6], sw[9], sw[10] = [7], [0], [3], [6]
    g = to_genotype(sw, PERTNAS_OPS)
    # both dil_conv_5x5 entries are one genotype op; sep_conv_7x7 parses and builds for augment.py
    assert g.normal[0] == (("dil_conv_5x5", 0), ("dil_conv_5x5", 1))
    assert g.normal[1] == (("sep_conv_7x7", 0), ("sep_conv_7x7", 1))
    assert parse_genotype(str(g)) == g
    net = build_network(g, space_kind="darts", C=4, layers=3, n_classes=2, input_size=8)
    assert net(torch.randn(2, 3, 8, 8))[0].shape == (2, 2)
    # the search network holds both dil_conv_5x5 copies as separate modules (PertNAS oper-7, oper-8)
    search_net = PertNASNetwork([list(PERTNAS_OPS) + ["none"]] * N_EDGES, C=4, n_classes=2, layers=1)
    e = search_net.cells[0].edges[0]
    assert e.ops[7] is not e.ops[8] and type(e.ops[7]) is type(e.ops[8])


class _Counting:
    """A list of batches that counts the batches handed out (= optimizer updates in train_steps)."""

    def __init__(self, batches):
        self.batches, self.n = batches, 0

    def __iter__(self):
        for b in self.batches:
            self.n += 1
            yield b


def test_perturb_val_makes_steps_plus_one_updates_and_alias_mode_keeps_finetunes():
    torch.manual_seed(0)
    sw = [["skip_connect", "sep_conv_3x3", "none"] for _ in range(N_EDGES)]
    x, y = torch.randn(32, 3, 8, 8), torch.randint(0, 2, (32,))
    batches = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8)]
    cpu = torch.device("cpu")
    for restore in ("copy", "alias"):
        torch.manual_seed(0)
        net = PertNASNetwork(sw, C=4, n_classes=2, layers=1, compute_removed=restore == "alias")
        train = _Counting(batches)
        opt = torch.optim.SGD(net.parameters(), 0.1, momentum=0.9)
        before = {k: v.clone() for k, v in net.state_dict().items()}
        perturb_val(net, opt, SearchData(train, batches, 2), [(0, 0), (0, 1)], finetune_steps=2, device=cpu,
                    amp=None, epoch_key=0, restore=restore)
        assert train.n == 2 * 3  # SE's train(partial=True) breaks after step >= finetune_steps: 2 + 1 updates
        kept = all(torch.equal(before[k], v) for k, v in net.state_dict().items())
        assert kept == (restore == "copy")  # alias: SE's state_dict backup never restores the weights
    train = _Counting(batches)
    perturb_val(net, opt, SearchData(train, batches, 2), [(0, 0)], finetune_steps=0, device=cpu, amp=None,
                epoch_key=0)
    assert train.n == 0  # SE 395: no fine-tune at all when finetune_steps is 0


def test_share_valuation_one_process_is_the_plain_mean():
    from nas.distributed import DistContext

    rng = np.random.default_rng(0)
    mats = [rng.normal(size=(N_EDGES, 9)) for _ in range(3)]
    got = share_valuation(mats, DistContext())
    assert got.shape == (N_EDGES, 9) and np.allclose(got, np.mean(mats, axis=0), rtol=0, atol=1e-12)


def test_shared_selection_resumes_and_matches_uninterrupted(tmp_path, capsys):
    data = _folder_data(tmp_path / "data")
    common = TINY + ["--data_path", str(data), "--npop", "1", "--seed", "4", "--quiet"]
    # killed every 9 decisions: the member's expansion, then the selection, resume at their last decision
    for _ in range(3):
        assert search_evolutionary.main(common + ["--save", str(tmp_path / "a"), "--stop_after", "9"]) == 0
    sel = json.loads((tmp_path / "a/search-try/selection/state.json").read_text())
    assert sel["phase"] == "done" and sel["step"] == 14 + 14 + 3
    assert search_evolutionary.main(common + ["--save", str(tmp_path / "b")]) == 0
    ra = json.loads((tmp_path / "a/search-try/results.json").read_text())
    rb = json.loads((tmp_path / "b/search-try/results.json").read_text())
    assert ra["population"] == "shared" and ra["best_genotype"] == rb["best_genotype"]
    assert ra["valuation_matrix"] == rb["valuation_matrix"] == rb["members"][0]["valuation_matrix"]
    assert ra["perturbation_scores"] == rb["perturbation_scores"]
    phases = [s["phase"] for s in rb["perturbation_scores"]]
    assert phases == ["fine"] * 14 + ["topology"] * 3  # selection only: the member's expansion is its own
    assert [s["edge"] for s in rb["perturbation_scores"][:14]] == [13, 12, 8, 11, 7, 4, 9, 10, 5, 6, 2, 3, 0, 1]
    member = json.loads((tmp_path / "b/search-try/member0/valuation.json").read_text())
    assert [s["edge"] for s in member["perturbation_scores"]] == list(range(14))
    assert all(len(s["diffs"]) == 9 for s in member["perturbation_scores"])  # PertNAS' 9 ops by default
    assert (tmp_path / "b/search-try/best_genotype.txt").read_text().strip() == rb["best_genotype"]
    out = capsys.readouterr().out
    assert "python augment.py --name search-try-best --arch \"Genotype(" in out and "--param DARTS" in out


def test_missing_data_then_corrected_rerun_is_not_refused(tmp_path, capsys):
    from nas.cli import run_cli

    save = ["--save", str(tmp_path / "r"), "--npop", "1", "--stop_after", "1"]
    assert run_cli(search_evolutionary.main, TINY + ["--data_path", str(tmp_path / "nowhere")] + save) == 1
    assert "nowhere" in capsys.readouterr().err
    assert not (tmp_path / "r/search-try/config.json").exists()
    data = _folder_data(tmp_path / "data")
    assert run_cli(search_evolutionary.main, TINY + ["--data_path", str(data)] + save) == 0
    assert json.loads((tmp_path / "r/search-try/config.json").read_text())["data_path"] == str(data)


def test_waiting_ranks_stop_on_a_failed_or_stopped_rank(tmp_path):
    from nas.errors import NASError
    from nas.pertnas.population import wait_for_files, write_status

    missing = [tmp_path / "member1/valuation.json"]
    write_status(tmp_path, 1, "old-run", "failed", "boom")  # another run's marker is ignored ...
    write_status(tmp_path, 0, "this-run", "stopped")
    assert wait_for_files(missing, tmp_path, "this-run", 2) is False  # ... a stopped rank of this run is not
    write_status(tmp_path, 1, "this-run", "failed", "OSError: disk full")
    with pytest.raises(NASError, match="rank 1 failed: OSError: disk full"):
        wait_for_files(missing, tmp_path, "this-run", 2)
    (tmp_path / "member1").mkdir()
    (tmp_path / "member1/valuation.json").write_text("{}")
    assert wait_for_files(missing, tmp_path, "this-run", 2) is True
