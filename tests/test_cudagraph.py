"""CUDA-graphed training: the same numbers as the eager step (CUDA tests skip without a GPU), the flag's rules."""

from __future__ import annotations

import pytest
import torch

import nas.train
import random_darts_generator
from genotypes import read_genotype_file
from nas.cudagraph import GraphedStep, use_cuda_graph
from nas.data import ImageData, load_dataset
from nas.errors import ConfigError
from param_setting import BPE1

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class SimulatedKill(RuntimeError):
    """Stands for a SIGKILL right after a checkpoint."""


def test_flag_rules_name_the_problem():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert use_cuda_graph("auto", cpu) is False and use_cuda_graph("off", gpu) is False
    assert use_cuda_graph("auto", gpu, "32") is True and use_cuda_graph("auto", gpu, "bf16") is True
    assert use_cuda_graph("auto", gpu, "16") is False  # fp16's dynamic loss scale trains eagerly
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        use_cuda_graph("on", cpu)
    with pytest.raises(ConfigError, match="cannot capture --precision 16"):
        use_cuda_graph("on", gpu, "16")
    with pytest.raises(ConfigError, match="allowed: auto, on, off"):
        use_cuda_graph("always", gpu)


def test_disabled_graphed_step_is_the_function():
    calls = []
    step = GraphedStep(lambda a, b: calls.append((a, b)), enabled=False)
    step(1, 2)
    step(3, 4)
    assert calls == [(1, 2), (3, 4)] and step.graph is None and step.n_replays == 0


def test_record_says_precision_tf32_and_graph(tiny_folder, tmp_path, one_thread):
    data = load_dataset("folder", tiny_folder, image_size=8)
    f = tmp_path / "one.txt"
    random_darts_generator.main(["--num", "1", "--saveto", str(f), "--seed", "3"])
    budget = BPE1.replace(epochs=1, layers=3, init_channels=4, image_size=8, batch_size=8, precision="bf16")
    rec = nas.train.train_architecture(read_genotype_file(f)[0], space_kind="darts", budget=budget, data=data,
                                       device=torch.device("cpu"), seed=1)
    assert rec["precision"] == "bf16" and rec["tf32"] is False and rec["cuda_graph"] is False
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        nas.train.train_architecture(read_genotype_file(f)[0], space_kind="darts", budget=budget, data=data,
                                     device=torch.device("cpu"), seed=1, cuda_graph="on")


def _synthetic(n_train: int, n_valid: int, size: int = 16) -> ImageData:
    g = torch.Generator().manual_seed(0)
    return ImageData("synthetic", torch.randint(0, 256, (n_train, 3, size, size), dtype=torch.uint8, generator=g),
                     torch.randint(0, 10, (n_train,), generator=g),
                     torch.randint(0, 256, (n_valid, 3, size, size), dtype=torch.uint8, generator=g),
                     torch.randint(0, 10, (n_valid,), generator=g), 10, (0.5,) * 3, (0.25,) * 3)


def _cell(tmp_path):
    f = tmp_path / "one.txt"
    random_darts_generator.main(["--num", "1", "--saveto", str(f), "--seed", "3"])
    return read_genotype_file(f)[0]


@cuda
def test_graphed_and_eager_steps_give_same_loss_and_weights(tmp_path):
    from models.networks import DartsNetwork

    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    arch = _cell(tmp_path)
    dev = torch.device("cuda")
    g = torch.Generator(device="cuda").manual_seed(5)
    batches = [(torch.randn(32, 3, 16, 16, device=dev, generator=g).contiguous(memory_format=torch.channels_last),
                torch.randint(0, 10, (32,), device=dev, generator=g)) for _ in range(5)]

    def run(graph: bool):
        torch.manual_seed(0)
        model = DartsNetwork(arch, C=8, n_classes=10, layers=6, input_size=16, auxiliary=True).to(
            dev, memory_format=torch.channels_last)
        opt = nas.train.make_optimizer(model, BPE1)
        step = nas.train.TrainStep(model, opt, aux_weight=0.4, grad_clip=5.0, cuda_graph=graph)
        model.train()
        losses = []
        for x, y in batches:
            step(x, y)
            losses.append(step.take_stats(y.size(0))[0])
        return losses, [p.detach().clone() for p in model.parameters()], step

    le, pe, _ = run(False)
    lg, pg, step = run(True)
    assert step.runner.n_captures == 1 and step.runner.n_replays == 4  # 1 warm-up, capture, 3 more replays
    assert lg == pytest.approx(le, rel=1e-5, abs=1e-5)
    for a, b in zip(pe, pg):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5)


@cuda
def test_killed_and_resumed_graphed_run_equals_uninterrupted(tmp_path, monkeypatch):
    torch.backends.cudnn.deterministic = True
    data = _synthetic(200, 100)
    budget = BPE1.replace(epochs=2, batch_size=32)  # drop path > 0 from epoch 2: its mask is drawn in the graph
    arch = _cell(tmp_path)
    kw = dict(space_kind="darts", budget=budget, data=data, device=torch.device("cuda"), seed=7, cuda_graph="on")
    full = nas.train.train_architecture(arch, workdir=tmp_path / "a", **kw)
    assert full["cuda_graph"] is True
    real_save = nas.train.save_checkpoint

    def save_then_die(path, state):
        real_save(path, state)
        raise SimulatedKill("simulated kill")

    monkeypatch.setattr(nas.train, "save_checkpoint", save_then_die)
    with pytest.raises(SimulatedKill, match="simulated kill"):
        nas.train.train_architecture(arch, workdir=tmp_path / "b", **kw)
    monkeypatch.setattr(nas.train, "save_checkpoint", real_save)
    resumed = nas.train.train_architecture(arch, workdir=tmp_path / "b", **kw)
    for a, b in zip(full["history"], resumed["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["valid_acc"] == pytest.approx(b["valid_acc"], abs=1e-9)


def test_gpu_throughput_bench_runs_at_toy_size(tmp_path):
    """The CI smoke of bench/gpu_throughput.py: every section but torchrun's (tested elsewhere) gives numbers."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "bench.json"
    p = subprocess.run([sys.executable, str(root / "bench" / "gpu_throughput.py"), "--size", "toy", "--device", "cpu",
                        "--sections", "step,cell,supernet,zeroshot", "--time_limit", "170", "--json", str(out)],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["data"] == "SYNTHETIC" and "SYNTHETIC random" in p.stdout
    assert not [k for k in res if k.startswith(("failed_", "skipped_"))], res
    assert res["step_eager_fp32"]["images_per_s"] > 0 and res["step_eager_fp32"]["gpu_busy"] == "n/a"
    assert res["cell"]["cell_s"] > 0 and res["supernet_eager"]["epoch_s_extrapolated"] > 0
    assert res["zeroshot"]["hours_15625"] > 0
