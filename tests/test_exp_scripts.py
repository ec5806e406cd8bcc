"""exp_scripts/: DARTS-PT's flag handling and run folders, the interpreter, every README line at toy size."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import augment
import project
import search
from nas.spaces import get_space
from nas.supernet.options import config_from_args

SCRIPTS = Path(__file__).resolve().parents[1] / "exp_scripts"
RECIPES = sorted(p.name for p in SCRIPTS.glob("*.sh") if p.name not in ("cpu-nb201-profile.sh", "_lib.sh"))


def _bash(script: str, *args: str, cwd: Path = SCRIPTS, dry: bool = False, py: str | None = sys.executable,
          check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PY", "DRY_RUN")}
    if py:
        env["PY"] = py
    if dry:
        env["DRY_RUN"] = "1"
    res = subprocess.run(["bash", script, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise AssertionError(f"bash {script} {' '.join(args)} -> {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


def _command(script: str, *args: str, **kw) -> list[str]:
    """The command a recipe runs (DRY_RUN=1), interpreter dropped: [script.py, flags...]."""
    line = _bash(script, *args, dry=True, **kw).stdout.strip().splitlines()[-1]
    assert line.startswith("+ ")
    return shlex.split(line[2:])[1:]


def _flag(cmd: list[str], name: str) -> str:
    return cmd[len(cmd) - 1 - cmd[::-1].index(name) + 1]  # the last occurrence wins, as in argparse


@pytest.mark.parametrize("script", RECIPES)
def test_every_recipe_runs_a_command_its_script_accepts(script):
    extra = ["--arch", "darts_pt_s3_1"] if script.startswith("eval") else []
    cmd = _command(script, *extra)
    parser = {"search.py": search, "project.py": project, "augment.py": augment}[cmd[0]].build_parser()
    args = parser.parse_args(cmd[1:])
    if cmd[0] == "search.py":
        cfg = config_from_args(args)
        assert cfg.space == ("nb201" if "201" in script else "darts" if "bpe" in script else "s5")


def test_flags_set_known_variables_and_pass_the_rest_through():
    cmd = _command("darts-201.sh", "--seed", "3", "--dataset=cifar100", "--epochs=2", "--quiet", "--gpu", "1",
                   "--lr", "-0.5")
    assert cmd[:2] == ["search.py", "--space"] and _flag(cmd, "--method") == "darts"
    assert _flag(cmd, "--seed") == "3" and _flag(cmd, "--dataset") == "cifar100" and _flag(cmd, "--save") == "darts-201"
    assert _flag(cmd, "--device") == "cuda:1"
    assert cmd[-4:] == ["--epochs=2", "--quiet", "--lr", "-0.5"]  # unknown flags keep their order and values
    assert _flag(_command("darts-201.sh"), "--seed") == "0"  # DARTS-PT's 201 scripts: seed 0
    assert _flag(_command("darts-sota.sh"), "--seed") == "2" and _flag(_command("darts-sota.sh"), "--space") == "s5"
    res = _bash("darts-201.sh", "--seed", dry=True, check=False)
    assert res.returncode == 2 and "--seed needs a value" in res.stderr


def test_projection_recipes_default_to_their_search_folder():
    assert _flag(_command("darts-proj-201.sh"), "--resume_expid") == "search-darts-201-0"
    assert _flag(_command("blank-proj-201.sh", "--seed", "1"), "--resume_expid") == "search-blank-201-1"
    assert _flag(_command("darts-proj-201.sh", "--dataset", "cifar100"), "--resume_expid") == \
        "search-darts-201-0-cifar100"
    assert "--resume_epoch" not in _command("darts-proj-201.sh")  # the search's last checkpoint
    cmd = _command("darts-proj-201.sh", "--resume_epoch", "100", "--resume_expid", "search-darts-201-1")
    assert _flag(cmd, "--resume_epoch") == "100" and _flag(cmd, "--resume_expid") == "search-darts-201-1"
    cmd = _command("darts-proj-sota.sh", "--space", "s3", "--crit", "loss")
    assert _flag(cmd, "--resume_expid") == "search-darts-sota-s3-2"
    assert {_flag(cmd, f) for f in ("--crit_normal", "--crit_reduce", "--crit_edge")} == {"loss"}
    assert _flag(_command("sdarts-rs-proj-sota.sh"), "--resume_expid") == "search-sdarts-rs-sota-s5-2"
    assert _flag(_command("sdarts-adv-sota.sh"), "--method") == "sdarts-adv"


def test_eval_recipes_follow_dartspt():
    cmd = _command("eval-c100.sh", "--arch", "darts_pt_s3_1", "--learning_rate", "0.05")
    args = augment.build_parser().parse_args(cmd[1:])
    assert (args.param, args.init_channels, args.layers, args.dataset, args.seed, args.lr, args.batch_size) == \
        ("DARTS", 16, 8, "cifar100", 2, 0.05, 96)
    assert args.save_path == "experiments/sota/cifar100/eval" and args.name == "eval-c100-darts_pt_s3_1-2"
    args = augment.build_parser().parse_args(_command("eval.sh", "--arch", "darts_pt_s3_1")[1:])
    assert args.init_channels is None and args.layers is None  # DARTS protocol: 36 channels, 20 cells
    text = "Genotype(normal=[('sep_conv_3x3', 0)])"
    name = _flag(_command("eval-svhn.sh", "--arch", text), "--name")
    assert name.startswith("eval-svhn-g") and name.endswith("-2") and " " not in name
    res = _bash("eval.sh", dry=True, check=False)
    assert res.returncode == 2 and "give --arch" in res.stderr


def test_bpe_recipe_takes_the_budget_from_param_setting():
    cmd = _command("exp_scripts/bpe-darts.sh", cwd=SCRIPTS.parent)  # from the repo root, as BPE's README
    assert cmd == ["search.py", "--name", "DARTS_BPE1", "--param", "BPE1"]
    readme = ("--name=DARTS_BPE1 --batch_size=128 --w_lr=0.03 --layers=6 --init_channels=8 --epochs=10 "
              "--cutout_length=0 --image_size=16").split()
    p = search.build_parser()
    assert config_from_args(p.parse_args(cmd[1:])) == config_from_args(p.parse_args(readme))
    assert config_from_args(p.parse_args(readme)).protocol == "bpe"
    assert _command("bpe-darts.sh", "BPE2", "--epochs", "1")[1:] == ["--name", "DARTS_BPE2", "--param", "BPE2",
                                                                     "--epochs", "1"]
    res = _bash("bpe-darts.sh", "BPE3", dry=True, check=False)
    assert res.returncode == 2 and "BPE1 or BPE2" in res.stderr


def test_recipes_find_the_repository_interpreter(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(SCRIPTS, repo / "exp_scripts")
    line = _bash("darts-201.sh", cwd=repo / "exp_scripts", dry=True, py=None).stdout.splitlines()[-1]
    assert line.startswith("+ python3 search.py")
    venv_py = repo / ".venv" / "bin" / "python"
    venv_py.parent.mkdir(parents=True)
    venv_py.write_text("#!/bin/sh\n")
    venv_py.chmod(0o755)
    line = _bash("exp_scripts/darts-201.sh", cwd=repo, dry=True, py=None).stdout.splitlines()[-1]
    assert line.startswith(f"+ {venv_py} search.py")


# ----------------------------------------------------------------------------- DARTS-PT's README, at toy size


@pytest.mark.slow
def test_dartspt_readme_lines_run_from_exp_scripts(tmp_path, tiny_folder):
    """Every command of DARTS-PT's README, as printed, with toy-size flags appended (about 3 minutes on 2 cores)."""
    exp = tmp_path / "experiments"
    run = ["--save_path", str(exp), "--data_path", str(tiny_folder), "--device", "cpu", "--threads", "1", "--quiet"]
    search_toy = run + ["--init_channels", "4", "--image_size", "8", "--batch_size", "8", "--max_steps", "1",
                        "--no_tensorboard"]
    nb201, sota = search_toy + ["--layers", "1"], search_toy + ["--layers", "3", "--epochs", "2"]
    proj = run + ["--proj_intv", "1", "--no_tensorboard"]
    evals = run + ["--init_channels", "4", "--image_size", "8", "--batch_size", "8", "--layers", "3", "--epochs", "1"]

    # NAS-Bench-201. The README's projection names search-darts-201-1, the run of --seed 1 (the recipes keep
    # DARTS-PT's seed 0): as printed after `bash darts-201.sh` it fails and names the folder that exists.
    _bash("darts-201.sh", *nb201, "--epochs", "2")
    readme_proj = ["--resume_epoch", "100", "--resume_expid", "search-darts-201-1"]
    res = _bash("darts-proj-201.sh", *readme_proj, *proj, check=False)
    assert res.returncode == 2 and "there is search-darts-201-0" in res.stderr and "--seed 1" in res.stderr
    _bash("darts-201.sh", "--seed", "1", *nb201)  # 100 epochs: checkpoint_100.pt for --resume_epoch 100
    _bash("darts-proj-201.sh", *readme_proj, *proj)
    _bash("blank-201.sh", *nb201, "--epochs", "1")
    _bash("blank-201.sh", "--seed", "1", *nb201, "--epochs", "2")
    _bash("blank-proj-201.sh", "--resume_expid", "search-blank-201-1", *proj)
    root = exp / "nasbench201"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["search-blank-201-0", "search-blank-201-1",
                                                      "search-darts-201-0", "search-darts-201-1"]
    assert sorted(p.name for p in (root / "search-darts-201-1").glob("checkpoint_*.pt")) == \
        [f"checkpoint_{e}.pt" for e in (100, 20, 40, 60, 80)]
    for name, method in (("search-darts-201-1", "darts"), ("search-blank-201-1", "blank")):
        rec = json.loads((root / name / "projection.json").read_text())
        assert rec["method"] == method and rec["space"] == "nb201"
        get_space("nb201").encode(get_space("nb201").parse(rec["genotype"]))
        assert (root / name / "projection_cell.png").is_file() and (root / name / "search_cell.png").is_file()
    assert json.loads((root / "search-darts-201-1" / "projection.json").read_text())["search_epoch"] == 100

    # S1-S4 (S3 here), CIFAR-10 and SVHN (the tiny folder under SVHN's name), and the README's blank-proj-201.sh
    # line for a DARTS-space run
    _bash("darts-sota.sh", "--space", "s3", "--dataset", "cifar10", *sota)
    _bash("darts-proj-sota.sh", "--space", "s3", "--dataset", "cifar10", "--resume_expid", "search-darts-sota-s3-2",
          *proj)
    _bash("blank-sota.sh", "--space", "s3", "--dataset", "svhn", *sota)
    _bash("blank-proj-201.sh", "--space", "s3", "--dataset", "svhn", "--resume_expid", "search-blank-sota-s3-2", *proj)
    for folder, method in ((exp / "sota" / "cifar10" / "search-darts-sota-s3-2", "darts"),
                           (exp / "sota" / "svhn" / "search-blank-sota-s3-2", "blank")):
        rec = json.loads((folder / "projection.json").read_text())
        assert rec["method"] == method and rec["space"] == "s3"
        g = get_space("s3").parse(rec["genotype"])
        get_space("s3").encode(g)
        assert all(len(node) == 2 for node in g.normal + g.reduce)  # two inputs per node after projection
    assert json.loads((exp / "sota" / "svhn" / "search-blank-sota-s3-2" / "config.json").read_text())["dataset"] == \
        "svhn"

    # evaluation of published cells; the folder names follow DARTS-PT's eval layout
    for script, arch, ds in (("eval.sh", "darts_pt_s3_1", "cifar10"), ("eval-c100.sh", "darts_pt_s3_2", "cifar100"),
                             ("eval-svhn.sh", "blank_pt_s3_1", "svhn")):
        _bash(script, "--arch", arch, *evals)
        folder = exp / "sota" / ds / "eval" / f"{script[:-3]}-{arch}-2"
        res = json.loads((folder / "results.json").read_text())
        assert len(res["records"]) == 1 and len(res["records"][0]["history"]) == 1
        cfg = json.loads((folder / "config.json").read_text())
        assert cfg["dataset"] == ds and (cfg["budget"]["cutout_length"], cfg["budget"]["aux_weight"]) == (16, 0.4)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sdarts-rs", "sdarts-adv"])
def test_sdarts_recipes_search_and_project(tmp_path, tiny_folder, method):
    """DARTS-PT's SDARTS recipes at toy size: the supernet trains with the perturbation, projection decides."""
    exp = tmp_path / "experiments"
    run = ["--save_path", str(exp), "--data_path", str(tiny_folder), "--device", "cpu", "--threads", "1", "--quiet"]
    _bash(f"{method}-sota.sh", "--space", "s3", *run, "--init_channels", "4", "--image_size", "8", "--batch_size", "8",
          "--max_steps", "1", "--layers", "3", "--epochs", "2", "--no_tensorboard")
    _bash(f"{method}-proj-sota.sh", "--space", "s3", *run, "--proj_intv", "1", "--no_tensorboard")
    rec = json.loads((exp / "sota" / "cifar10" / f"search-{method}-sota-s3-2" / "projection.json").read_text())
    assert rec["method"] == method and rec["space"] == "s3"
    kinds = [d["kind"] for d in rec["decisions"]]
    assert kinds.count("op") == 28 and kinds.count("edge") == 6  # 14 ops and 3 nodes per cell type
