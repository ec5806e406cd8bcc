"""GPU throughput of the toolkit (issue 9), every number against a baseline measured in the same run.

    python bench/gpu_throughput.py                       # full size on a GPU (~6-9 min), toy size on a CPU
    python bench/gpu_throughput.py --size toy --time_limit 170      # the CI smoke (< ~3 min on 2 cores)

Sections (``--sections``, all by default):
  step      one BPE1 training step (batch 128, 16x16, 8 channels, 6 cells, aux head, clip 5): eager against
            CUDA-graphed, fp32 and bf16; images/s, and on CUDA kernel launches per step and the GPU-busy
            fraction from torch.profiler (n/a on a CPU);
  cell      a whole ``augment.py`` BPE1 cell at fp32 (full: 50k train / 10k valid images, 10 epochs), graphed,
            against one eager epoch of the same cell extrapolated to 10 (on a CPU: a toy size);
  ranks     K = 1, 2, 4, 8 cells at once: ``torchrun --nproc_per_node=K augment.py`` over the work queue
            (the ranks share the GPU), total images/s against K = 1;
  supernet  NAS-Bench-201 supernet search steps (DARTS-PT, first order: alpha step + weight step, batch 64,
            C=16, N=5, 32x32): eager against CUDA-graphed, extrapolated to an epoch (25,000 images);
  zeroshot  every zero-shot measure of N NB201 cells (C=16, N=5, batch 64, 3 seeds), seconds per cell and
            extrapolated to all 15,625 cells.
Without a dataset (``--data_path`` with CIFAR-10 as folder/torchvision layout) it synthesizes random
CIFAR-like images (50k/10k, 32x32, 10 classes): speed does not depend on pixel values, accuracy does, so
accuracies printed then mean nothing. ``--time_limit`` skips what would not fit; ``--json`` writes all numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from gpu_profile import profile_steps  # bench/gpu_profile.py, beside this file

from models.networks import DartsNetwork
from models.supernets import Supernet
from nas.data import ImageData, load_dataset
from nas.device import resolve_device
from nas.io import atomic_write_text
from nas.spaces import bpe_random_genotype, bpe_random_genotypes_text
from nas.train import TrainStep, autocast_dtype, configure_precision, make_optimizer, train_architecture
from param_setting import BPE1

ROOT = Path(__file__).resolve().parents[1]


SECTIONS = ("step", "cell", "ranks", "supernet", "zeroshot")
SIZES = {  # full: the sizes; toy: the same code at a size 2 shared CPU cores finish in ~2 minutes
    "full": dict(step_steps=60, cell_train=50000, cell_valid=10000, cell_epochs=10, rank_train=20000,
                 rank_valid=2000, ranks=(1, 2, 4, 8), sn_C=16, sn_N=5, sn_size=32, sn_batch=64, sn_steps=20,
                 zs_C=16, zs_N=5, zs_size=32, zs_batch=64, zs_seeds=(20, 2020, 202020), zs_cells=40),
    "toy": dict(step_steps=6, cell_train=512, cell_valid=256, cell_epochs=2, rank_train=256, rank_valid=128,
                ranks=(1, 2), sn_C=4, sn_N=1, sn_size=32, sn_batch=16, sn_steps=3, zs_C=4, zs_N=1, zs_size=32,
                zs_batch=16, zs_seeds=(20,), zs_cells=3),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", choices=tuple(SIZES), default=None, help="full (default on CUDA) or toy (default on CPU)")
    p.add_argument("--device", default="auto")
    p.add_argument("--data_path", default=None, help="CIFAR-10 (folder train/<class>/ or torchvision); "
                                                     "default: synthetic random images")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {','.join(SECTIONS)}")
    p.add_argument("--ranks", default=None, help="K values of the ranks section (default 1,2,4,8; toy 1,2)")
    p.add_argument("--time_limit", type=float, default=None, help="seconds for the whole run (default: full "
                                                                   "540, toy 170); sections that would not fit "
                                                                   "are skipped")
    p.add_argument("--json", default=None, help="write every number here")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: 1 on a CPU)")
    return p


class Clock:
    """The run's time budget: ``left()`` seconds remain; ``fits(s)`` says whether ``s`` more would fit."""

    def __init__(self, limit: float):
        self.t0, self.limit = time.perf_counter(), limit

    def left(self) -> float:
        return self.limit - (time.perf_counter() - self.t0)

    def fits(self, seconds: float) -> bool:
        return self.left() > seconds


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic(n_train: int, n_valid: int, size: int = 32, seed: int = 0) -> ImageData:
    """Random CIFAR-like uint8 images and labels (clearly not CIFAR: accuracies on it mean nothing)."""
    g = torch.Generator().manual_seed(seed)
    return ImageData("SYNTHETIC", torch.randint(0, 256, (n_train, 3, size, size), dtype=torch.uint8, generator=g),
                     torch.randint(0, 10, (n_train,), generator=g),
                     torch.randint(0, 256, (n_valid, 3, size, size), dtype=torch.uint8, generator=g),
                     torch.randint(0, 10, (n_valid,), generator=g), 10,
                     (0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768))


def write_folder_cache(data: ImageData, root: Path) -> Path:
    """``data`` as a folder dataset augment.py reads: train/<class>/*.png and test/<class>/*.png (PNG is lossless,
    so augment.py decodes the same pixels; written by a thread pool, about 10 s for 60k images)."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    jobs = []
    for split, x, y in (("train", data.train_x, data.train_y), ("test", data.valid_x, data.valid_y)):
        arr = x.permute(0, 2, 3, 1).numpy()
        for c in range(int(y.max()) + 1):
            (root / split / f"class{c}").mkdir(parents=True, exist_ok=True)
        jobs += [(arr[i], root / split / f"class{int(y[i])}" / f"{i:05d}.png") for i in range(len(y))]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda job: Image.fromarray(job[0]).save(job[1]), jobs))
    return root


# ----------------------------------------------------------------------------- sections


def section_step(cfg: dict, device: torch.device, genotype, out: dict) -> None:
    b = BPE1
    n = cfg["step_steps"]
    g = torch.Generator(device=device).manual_seed(0)
    batches = [(torch.randn(b.batch_size, 3, b.image_size, b.image_size, device=device, generator=g)
                .contiguous(memory_format=torch.channels_last),
                torch.randint(0, 10, (b.batch_size,), device=device, generator=g)) for _ in range(8)]
    variants = [("32", False), ("32", True), ("bf16", False), ("bf16", True)] if device.type == "cuda" \
        else [("32", False)]
    print(f"\n1. BPE1 training step (batch {b.batch_size}, {b.image_size}x{b.image_size}, C={b.init_channels}, "
          f"{b.layers} cells, aux, clip {b.grad_clip}), {n} steps each")
    base = None
    for prec, graph in variants:
        configure_precision(device, prec)
        torch.manual_seed(0)
        model = DartsNetwork(genotype, C=b.init_channels, n_classes=10, layers=b.layers, input_size=b.image_size,
                             auxiliary=True).to(device, memory_format=torch.channels_last)
        model.set_drop_path(b.drop_path_prob / 2)  # mid-training: the mask is drawn (inside the graph)
        model.train()
        step = TrainStep(model, make_optimizer(model, b), aux_weight=b.aux_weight, grad_clip=b.grad_clip,
                         amp=autocast_dtype(device, prec), cuda_graph=graph)
        for i in range(3):  # warm-up (and capture)
            step(*batches[i % 8])
        sync(device)
        t = time.perf_counter()
        for i in range(n):
            step(*batches[i % 8])
        sync(device)
        rate = n * b.batch_size / (time.perf_counter() - t)
        prof = profile_steps(lambda s=step: s(*batches[0]), 10, device)
        name = f"{'graphed' if graph else 'eager'} {'fp32' if prec == '32' else prec}"
        base = base or rate
        out[f"step_{name.replace(' ', '_')}"] = {"images_per_s": rate, **prof}
        print(f"   {name:13s} {rate:9.1f} img/s  x{rate / base:5.2f}  launches/step {prof['launches_per_step']}  "
              f"GPU kernels/step {prof['kernels_per_step']}  GPU busy {prof['gpu_busy']}")
    if device.type != "cuda":
        print("   graphed: n/a (CUDA graphs need a GPU; on a CPU the step runs eagerly)")
    configure_precision(device, "32")


def _augment_cmd(cells: Path, data_root: Path, save: Path, name: str, *, ranks: int, epochs: int, n_train: int,
                 n_valid: int, device: torch.device, graph: str = "auto") -> list[str]:
    cmd = [sys.executable]
    if ranks > 1:
        cmd += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"]
    return cmd + [str(ROOT / "augment.py"), "--name", name, "--file", str(cells), "--param", "BPE1",
                  "--epochs", str(epochs), "--dataset", "folder", "--data_path", str(data_root), "--limit_train",
                  str(n_train), "--limit_valid", str(n_valid), "--save_path", str(save), "--device",
                  "cuda" if device.type == "cuda" else "cpu", "--cuda_graph", graph, "--quiet"] + \
        ([] if device.type == "cuda" else ["--threads", "1"])  # one thread per process on a shared CPU


def _run(cmd: list[str], timeout: float, device: torch.device) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if device.type == "cpu":
        env["OMP_NUM_THREADS"] = "1"
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=max(10.0, timeout), env=env)
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd[:6])}... failed:\n{p.stderr[-2000:]}")
    return time.perf_counter() - t, p.stderr


def section_cell(cfg: dict, device: torch.device, data: ImageData, genotype, tmp: Path, clock: Clock,
                 out: dict) -> None:
    epochs, n_train, n_valid = cfg["cell_epochs"], cfg["cell_train"], cfg["cell_valid"]
    print(f"\n2. one augment.py BPE1 cell at fp32, {n_train} train / {n_valid} valid images, {epochs} epochs")
    small = ImageData(data.name, data.train_x[:n_train], data.train_y[:n_train], data.valid_x[:n_valid],
                      data.valid_y[:n_valid], data.n_classes, data.mean, data.std)
    from nas.data import resize_uint8

    small.train_x, small.valid_x = resize_uint8(small.train_x, 16), resize_uint8(small.valid_x, 16)
    t = time.perf_counter()
    rec = train_architecture(genotype, space_kind="darts", budget=BPE1.replace(epochs=1), data=small, device=device,
                             seed=0, cuda_graph="off")
    eager_epoch = time.perf_counter() - t
    eager_cell = eager_epoch * epochs
    print(f"   eager, in-process: 1 epoch {eager_epoch:.1f} s -> {eager_cell:.1f} s per {epochs}-epoch cell "
          f"(extrapolated), {rec['history'][0]['train_images_per_s']:.0f} train img/s")
    cells = tmp / "cell1.txt"
    cells.write_text(str(genotype) + "\n")
    graph = "auto"
    if not clock.fits(eager_cell * (0.5 if device.type == "cuda" else 1.2) + 30):
        print("   augment.py cell skipped: --time_limit")
        out["cell"] = {"eager_cell_s_extrapolated": eager_cell}
        return
    wall, _ = _run(_augment_cmd(cells, tmp / "data", tmp / "runs", "cell", ranks=1, epochs=epochs, n_train=n_train,
                                n_valid=n_valid, device=device, graph=graph), clock.left(), device)
    r = json.loads((tmp / "runs" / "cell" / "results.json").read_text())["records"][0]
    print(f"   augment.py ({'graphed' if r.get('cuda_graph') else 'eager'}, tf32 {r.get('tf32')}): "
          f"{r['seconds']:.1f} s training, {wall:.1f} s whole command   x{eager_cell / r['seconds']:.2f} vs the eager "
          "baseline")
    out["cell"] = {"eager_cell_s_extrapolated": eager_cell, "cell_s": r["seconds"], "command_s": wall,
                   "cuda_graph": r.get("cuda_graph"), "speedup": eager_cell / r["seconds"]}


def section_ranks(cfg: dict, device: torch.device, ks: list[int], tmp: Path, clock: Clock, out: dict) -> None:
    n_train, n_valid = cfg["rank_train"], cfg["rank_valid"]
    where = f"sharing {torch.cuda.device_count()} GPU(s)" if device.type == "cuda" else "on CPU cores"
    print(f"\n3. K cells at once: torchrun augment.py, work queue, ranks {where}; 1 epoch of {n_train} images each")
    base = None
    for k in ks:
        if not clock.fits(25 + 8 * k):
            print(f"   K={k} skipped: --time_limit")
            continue
        cells = tmp / f"cells{k}.txt"
        atomic_write_text(cells, bpe_random_genotypes_text(k, seed=0))
        name = f"k{k}"
        wall, err = _run(_augment_cmd(cells, tmp / "data", tmp / "runs", name, ranks=k, epochs=1, n_train=n_train,
                                      n_valid=n_valid, device=device), clock.left(), device)
        recs = json.loads((tmp / "runs" / name / "results.json").read_text())["records"]
        total = sum(r["history"][0]["train_images_per_s"] for r in recs)
        whole = k * n_train / wall
        base = base or total
        line = next((ln for ln in err.splitlines() if "ranks" in ln), "")
        print(f"   K={k}: {total:9.1f} img/s summed over concurrent cells  x{total / base:5.2f} vs K=1 | "
              f"{whole:8.1f} img/s over the whole command ({wall:.0f} s, start-up included)  {line}")
        out[f"ranks_{k}"] = {"images_per_s": total, "command_images_per_s": whole, "command_s": wall}


def section_supernet(cfg: dict, device: torch.device, data: ImageData, clock: Clock, out: dict) -> None:
    from nas.supernet.architect import Architect
    from nas.supernet.search import SearchConfig, build_search_model, make_loaders, search_epoch

    steps, bs = cfg["sn_steps"], cfg["sn_batch"]
    print(f"\n4. NAS-Bench-201 supernet search steps (DARTS-PT first order, C={cfg['sn_C']}, N={cfg['sn_N']}, "
          f"{cfg['sn_size']}x{cfg['sn_size']}, batch {bs}): {steps} timed steps, epoch = 25,000 images")
    modes = [False, True] if device.type == "cuda" else [False]
    res = {}
    for graphs in modes:
        scfg = SearchConfig(space="nb201", init_channels=cfg["sn_C"], layers=cfg["sn_N"], batch_size=bs,
                            image_size=cfg["sn_size"])
        model = build_search_model(scfg, 10, 3, device)
        w_optim = torch.optim.SGD(model.weights(), lr=scfg.lr, momentum=scfg.momentum, weight_decay=scfg.weight_decay)
        arch = Architect(model, method="darts", lr=scfg.alpha_lr, weight_decay=scfg.alpha_weight_decay)
        half = len(data.train_y) // 2
        split = ImageData(data.name, data.train_x[:half], data.train_y[:half], data.train_x[half:],
                          data.train_y[half:], 10, data.mean, data.std)
        loaders = make_loaders(split, batch_size=bs, device=device, seed=0)
        Supernet.cuda_graphs = graphs
        try:
            t = time.perf_counter()
            search_epoch(model, arch, w_optim, loaders.train, loaders.valid, epoch=0, lr=scfg.lr, max_steps=4)
            sync(device)
            warm = time.perf_counter() - t
            st = search_epoch(model, arch, w_optim, loaders.train, loaders.valid, epoch=1, lr=scfg.lr,
                              max_steps=steps)
            sync(device)
        finally:
            Supernet.cuda_graphs = False
        per_step = st["seconds"] / steps
        epoch_s = per_step * 25000 / bs
        res[graphs] = epoch_s
        name = "graphed" if graphs else "eager"
        print(f"   {name:8s} {st['images_per_s']:8.1f} img/s  {epoch_s:8.1f} s per epoch (extrapolated)  "
              f"x{res[False] / epoch_s:5.2f}  (warm-up{' + capture' if graphs else ''} {warm:.1f} s; "
              f"train loss {st['loss']:.4f})")
        out[f"supernet_{name}"] = {"images_per_s": st["images_per_s"], "epoch_s_extrapolated": epoch_s,
                                   "warmup_s": warm, "loss": st["loss"]}
    if device.type != "cuda":
        print("   graphed: n/a on a CPU")


def section_zeroshot(cfg: dict, device: torch.device, data: ImageData, clock: Clock, out: dict) -> None:
    from nas.estimators import zeroshot as zs
    from nas.spaces import get_space

    print(f"\n5. zero-shot, all {len(zs.MEASURES)} measures, NB201 C={cfg['zs_C']}, N={cfg['zs_N']}, "
          f"{cfg['zs_size']}x{cfg['zs_size']}, batch {cfg['zs_batch']}, seeds {list(cfg['zs_seeds'])}")
    net_cfg = zs.default_net_config("nb201", n_classes=10, input_size=cfg["zs_size"])
    net_cfg.C, net_cfg.layers = cfg["zs_C"], cfg["zs_N"]
    batches = zs.BatchSource(data, batch_size=cfg["zs_batch"], device=device)
    space, rng = get_space("nb201"), random.Random(0)
    zs.score_architecture(space.sample(rng), cfg=net_cfg, batches=batches.get, seeds=cfg["zs_seeds"],
                          device=device)  # warm-up: batches, kernels
    n, t = 0, time.perf_counter()
    budget = min(60.0, max(5.0, clock.left() - 30))
    while n < cfg["zs_cells"] and (n == 0 or time.perf_counter() - t < budget):
        zs.score_architecture(space.sample(rng), cfg=net_cfg, batches=batches.get, seeds=cfg["zs_seeds"],
                              device=device)
        n += 1
    sync(device)
    per = (time.perf_counter() - t) / n
    print(f"   {per:.3f} s per cell over {n} cells -> {per * 15625 / 3600:.2f} h for all 15,625 in one process "
          f"(extrapolated; torchrun zero_shot.py --all shares them over ranks)")
    out["zeroshot"] = {"s_per_cell": per, "cells": n, "hours_15625": per * 15625 / 3600}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    device = resolve_device(args.device)
    size = args.size or ("full" if device.type == "cuda" else "toy")
    cfg = SIZES[size]
    clock = Clock(args.time_limit or (540.0 if size == "full" else 170.0))
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        raise SystemExit(f"unknown section {bad[0]!r}; allowed: {', '.join(SECTIONS)}")
    ks = [int(k) for k in args.ranks.split(",")] if args.ranks else list(cfg["ranks"])
    if args.threads or device.type == "cpu":
        # one thread on a CPU unless told: intra-op threads spin and collapse on a shared machine (18 vs 450 img/s
        # for the BPE1 step with 2 threads against 1 on the 2-core project machine under load)
        torch.set_num_threads(args.threads or 1)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU"
    print(f"device {device} ({gpu}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} cores, size {size}, time limit {clock.limit:.0f} s")
    n_train, n_valid = max(cfg["cell_train"], cfg["rank_train"], 1024), max(cfg["cell_valid"], cfg["rank_valid"])
    if args.data_path:
        data = load_dataset("folder" if (Path(args.data_path) / "train").is_dir() else "cifar10", args.data_path,
                            limit_train=n_train, limit_valid=n_valid, download=False)
        print(f"data: {args.data_path} ({len(data.train_y)} train / {len(data.valid_y)} valid)")
    else:
        data = synthetic(n_train, n_valid)
        print(f"data: SYNTHETIC random CIFAR-like images ({n_train} train / {n_valid} valid, 32x32, 10 classes): "
              "speeds are real, accuracies mean nothing")
    out: dict = {"device": str(device), "gpu": gpu, "torch": torch.__version__, "size": size,
                 "data": data.name}
    with tempfile.TemporaryDirectory(prefix="gpu_throughput_") as tmp_s:
        tmp = Path(tmp_s)
        write_folder_cache(data, tmp / "data")
        genotype = bpe_random_genotype(np.random.RandomState(0))  # the first cell of seed 0
        plan = {"step": (20, lambda: section_step(cfg, device, genotype, out)),
                "cell": (40, lambda: section_cell(cfg, device, data, genotype, tmp, clock, out)),
                "ranks": (40, lambda: section_ranks(cfg, device, ks, tmp, clock, out)),
                "supernet": (20, lambda: section_supernet(cfg, device, data, clock, out)),
                "zeroshot": (10, lambda: section_zeroshot(cfg, device, data, clock, out))}
        for name in sections:
            need, fn = plan[name]
            if not clock.fits(need):
                print(f"\n[{name}] skipped: {clock.left():.0f} s left of --time_limit {clock.limit:.0f}")
                out[f"skipped_{name}"] = True
                continue
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - one section failing must not hide the others' numbers
                print(f"\n[{name}] FAILED: {type(exc).__name__}: {str(exc)[-1500:]}")
                out[f"failed_{name}"] = f"{type(exc).__name__}: {exc}"
    print(f"\ntotal {time.perf_counter() - clock.t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))
    return 1 if any(k.startswith("failed_") for k in out) else 0


if __name__ == "__main__":
    raise SystemExit(main())
