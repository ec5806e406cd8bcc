"""BPE1 training speed: the toolkit's fast path against the original pipeline, measured in one run.

    python bench/bpe1_speed.py                      # CIFAR-10 from ../shared, 10,000 training images
    python bench/bpe1_speed.py --limit_train 50000 --device cuda

Prints images/s of
  1. the BPE1 training step alone (batch 128, 16x16) for the cell on line 50 of
     ../shared/bpe/random_darts_architecture.txt: the original code's way (contiguous NCHW, per-parameter
     optimizer loop) and the toolkit's (channels_last, foreach optimizer and clipping), with their ratio;
  2. a whole training epoch, data included, through the toolkit's TensorLoader and through a torchvision
     DataLoader with per-image PIL transforms (crop 32 pad 4, flip, resize to 16, ToTensor, Normalize: how
     BPE's preproc.py feeds the model), same model and data, with their ratio.
The original BPE code trains this cell at about 205 images/s on the 2-core project machine (step alone).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image

from genotypes import format_genotype, read_genotype_file
from models.networks import DartsNetwork
from nas.data import TensorLoader, load_dataset
from nas.device import configure_threads, resolve_device
from nas.train import make_optimizer, train_epoch
from param_setting import BPE1

ROOT = Path(__file__).resolve().parents[1]

SHARED = ROOT.parent / "shared"
ORIGINAL_STEP_IMAGES_PER_S = 205.0  # DEVELOPERS.md: original BPE code, this cell, 2 cores, step alone


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data_path", default=str(ROOT / "data" / "cifar10-jpeg"),
                   help="folder-layout CIFAR-10; unpacked from ../shared/datasets when missing")
    p.add_argument("--cells", default=str(SHARED / "bpe" / "random_darts_architecture.txt"))
    p.add_argument("--line", type=int, default=50, help="which cell of --cells (1-based, default 50)")
    p.add_argument("--limit_train", type=int, default=10000, help="images per timed epoch (default 10000)")
    p.add_argument("--steps", type=int, default=20, help="timed steps of the step-alone measurement")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the PIL pipeline (default 2)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--ranks", type=int, default=2, help="processes of the torchrun measurement (default 2; 1 skips it)")
    p.add_argument("--device", default="auto")
    return p


def _need(path: Path, what: str) -> None:
    if not path.exists():
        raise SystemExit(f"bench/bpe1_speed.py: missing {path} ({what})")


def torch_loader(x: torch.Tensor, y: torch.Tensor, *, batch_size: int, image_size: int, train: bool,
                 mean, std, cutout: int = 0, workers: int = 0, seed: int = 0):
    """The original per-image pipeline (BPE preproc.py): PIL crop/flip/resize/ToTensor/Normalize per image."""

    size = x.shape[-1]
    tf = ([T.RandomCrop(size, padding=size // 8), T.RandomHorizontalFlip()] if train else [])
    tf += [T.Resize((image_size, image_size)), T.ToTensor(), T.Normalize(mean, std)]
    transform = T.Compose(tf)
    arr = x.permute(0, 2, 3, 1).numpy()
    labels = y.tolist()

    class _DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(labels)

        def __getitem__(self, i):
            img = transform(Image.fromarray(arr[i]))
            if cutout and train:
                c = torch.randint(0, image_size, (2,))
                y0, y1 = max(0, c[0] - cutout // 2), min(image_size, c[0] + cutout // 2)
                x0, x1 = max(0, c[1] - cutout // 2), min(image_size, c[1] + cutout // 2)
                img[:, y0:y1, x0:x1] = 0
            return img, labels[i]

    return torch.utils.data.DataLoader(_DS(), batch_size=batch_size, shuffle=train, num_workers=workers,
                                       generator=torch.Generator().manual_seed(seed))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    data_path = Path(args.data_path)
    if not (data_path / "train").is_dir():
        tool = SHARED / "tools" / "unpack-cifar10"
        _need(tool, "the CIFAR-10 unpack tool of ../shared; or pass --data_path to a train/<class>/ folder")
        _need(SHARED / "datasets" / "cifar10-jpeg.tar.gz", "CIFAR-10 JPEG archive")
        subprocess.run([str(tool), str(data_path)], check=True)
    _need(Path(args.cells), "the BPE random cells; pass --cells")
    if args.threads:
        torch.set_num_threads(args.threads)
    else:
        configure_threads()
    device = resolve_device(args.device)
    genotype = read_genotype_file(args.cells)[args.line - 1]
    budget = BPE1
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores")
    print(f"cell: line {args.line} of {args.cells}")

    def model(channels_last: bool):
        torch.manual_seed(0)
        m = DartsNetwork(genotype, C=budget.init_channels, n_classes=10, layers=budget.layers,
                         input_size=budget.image_size, auxiliary=True, drop_path_prob=0.0).to(device)
        return m.to(memory_format=torch.channels_last) if channels_last else m

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    # 1. the training step alone, on one batch resident in memory
    x = torch.randn(budget.batch_size, 3, budget.image_size, budget.image_size, device=device)
    y = torch.randint(0, 10, (budget.batch_size,), device=device)

    def step_rate(channels_last: bool, foreach: bool) -> float:
        m = model(channels_last)
        opt = torch.optim.SGD(m.parameters(), lr=budget.lr, momentum=budget.momentum,
                              weight_decay=budget.weight_decay, foreach=foreach)
        xb = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        params = list(m.parameters())

        def step():
            opt.zero_grad(set_to_none=True)
            logits, aux = m(xb)
            loss = F.cross_entropy(logits, y) + budget.aux_weight * F.cross_entropy(aux, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, budget.grad_clip, foreach=foreach)
            opt.step()

        for _ in range(3):
            step()
        sync()
        t = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync()
        return args.steps * budget.batch_size / (time.perf_counter() - t)

    base = step_rate(channels_last=False, foreach=False)
    fast = step_rate(channels_last=True, foreach=True)
    print("\n1. BPE1 training step alone (batch 128, 16x16, aux head, clip 5)")
    print(f"   original-style step (NCHW, per-parameter loops): {base:8.1f} images/s")
    print(f"   toolkit step (channels_last, foreach):           {fast:8.1f} images/s   x{fast / base:.2f}")
    print(f"   vs the original BPE code's ~{ORIGINAL_STEP_IMAGES_PER_S:.0f} images/s on the 2-core machine: "
          f"x{fast / ORIGINAL_STEP_IMAGES_PER_S:.2f} (that figure was measured outside this run)")

    # 2. a whole epoch, data included
    t = time.perf_counter()
    raw = load_dataset("folder", data_path, image_size=None, limit_train=args.limit_train, limit_valid=256)
    small = load_dataset("folder", data_path, image_size=budget.image_size, limit_train=args.limit_train,
                         limit_valid=256)
    print(f"\n2. one BPE1 training epoch of {len(small.train_y)} images "
          f"(data loaded in {time.perf_counter() - t:.1f}s)")

    def epoch_rate(loader, channels_last: bool) -> float:
        m = model(channels_last)
        opt = make_optimizer(m, budget)
        train_epoch(m, loader, opt, aux_weight=budget.aux_weight, grad_clip=budget.grad_clip, max_steps=2)
        sync()
        t = time.perf_counter()
        r = train_epoch(m, loader, opt, aux_weight=budget.aux_weight, grad_clip=budget.grad_clip)
        sync()
        return r["n"] / (time.perf_counter() - t)

    fast_loader = TensorLoader(small.train_x, small.train_y, batch_size=budget.batch_size, shuffle=True,
                               augment=True, mean=small.mean, std=small.std, device=device, channels_last=True)
    pil_loader = torch_loader(raw.train_x, raw.train_y, batch_size=budget.batch_size, image_size=budget.image_size,
                              train=True, mean=raw.mean, std=raw.std, workers=args.workers)

    class ToDevice:  # the original moved each batch to the device inside the loop
        def __iter__(self):
            for xb, yb in pil_loader:
                yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)

    fast_epoch = epoch_rate(fast_loader, channels_last=True)
    pil_epoch = epoch_rate(ToDevice(), channels_last=False)
    print(f"   torchvision DataLoader, per-image PIL ({args.workers} workers), original-style model: "
          f"{pil_epoch:8.1f} images/s")
    print(f"   toolkit fast path (uint8 tensor on device, batch augmentation): {fast_epoch:8.1f} images/s   "
          f"x{fast_epoch / pil_epoch:.2f}")
    print(f"   fast-path epoch vs the original's ~{ORIGINAL_STEP_IMAGES_PER_S:.0f} images/s step: "
          f"x{fast_epoch / ORIGINAL_STEP_IMAGES_PER_S:.2f}")
    if args.ranks > 1 and device.type == "cpu":
        agg = _torchrun_rate(args, genotype, data_path)
        print(f"\n3. BPE scores many cells: {args.ranks} cells at once under torchrun, one per process, "
              f"{max(1, (os.cpu_count() or 1) // args.ranks)} thread(s) each (augment.py, one epoch, whole pipeline)")
        print(f"   machine throughput: {agg:8.1f} images/s   x{agg / fast_epoch:.2f} vs one process, "
              f"x{agg / pil_epoch:.2f} vs the DataLoader path, x{agg / ORIGINAL_STEP_IMAGES_PER_S:.2f} vs ~205")
    return 0


def _torchrun_rate(args, genotype, data_path: Path) -> float:
    """Train ``args.ranks`` copies of the cell for one epoch with augment.py under torchrun; summed images/s."""

    with tempfile.TemporaryDirectory() as tmp:
        cells = Path(tmp) / "cells.txt"
        cells.write_text((format_genotype(genotype) + "\n") * args.ranks)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.ranks}",
               str(ROOT / "augment.py"), "--name", "bench", "--file", str(cells), "--param", "BPE1", "--epochs", "1",
               "--dataset", "folder", "--data_path", str(data_path), "--limit_train", str(args.limit_train),
               "--limit_valid", "256", "--save_path", tmp, "--device", "cpu", "--quiet"]
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if out.returncode:
            raise SystemExit(f"bench/bpe1_speed.py: the torchrun measurement failed:\n{out.stderr[-3000:]}")
        recs = json.loads((Path(tmp) / "bench" / "results.json").read_text())["records"]
        return sum(r["history"][0]["train_images_per_s"] for r in recs)


if __name__ == "__main__":
    raise SystemExit(main())
