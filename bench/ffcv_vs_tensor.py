"""Images/s of a training epoch through FFCV and through the toolkit's in-memory TensorLoader, one run.

Both feed the same PertNAS search network (a fixed discrete cell, normal = reduce) with the same
optimizer, batch size and augmentation family (FFCV: flip + translate 2 + cutout 8, PertNAS'
pipeline; TensorLoader: flip + crop with padding + cutout 8). Each path runs ``--epochs`` epochs; the
first is a warm-up (FFCV compiles its pipeline with numba) and is reported apart. Also reported:
loader-only images/s (no model), where the data path itself is the cost.

    pip install -e . && python bench/ffcv_vs_tensor.py --dataset folder --data_path /work/cifar10 --limit_train 2048
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch

from models.pertnas_net import N_EDGES, PertNASNetwork, edge_inputs
from nas.cli import add_runtime_args, run_cli
from nas.data import TensorLoader, add_data_args, data_from_args
from nas.device import resolve_device
from nas.ffcv_data import ffcv_loader, require_ffcv, write_split_files
from nas.pertnas.search import train_steps


def build_parser() -> argparse.ArgumentParser:
    """Data, sizes, epochs and device."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_args(p, dataset="folder", data_path="/work/cifar10")
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3, help="epochs per path; the first is a warm-up")
    p.add_argument("--init_channels", type=int, default=8)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--workers", type=int, default=2, help="FFCV loader threads")
    add_runtime_args(p)
    p.add_argument("--beton_dir", default=None, help="reuse .beton files here (else written to a temp folder)")
    return p


def _cell_switches() -> list[list[str]]:
    # a DARTS-like discrete cell: node k takes s0/s1-ish inputs with sep_conv_3x3 + skip_connect
    sw = [["none"] for _ in range(N_EDGES)]
    for e in range(N_EDGES):
        node, src = edge_inputs(e)
        if src == 0:
            sw[e] = ["sep_conv_3x3"]
        elif src == node + 1:
            sw[e] = ["skip_connect"]
    return sw


def _epochs(name, loader, model, device, epochs, log_rows):
    opt = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=3e-4) if model is not None else None
    scaler = torch.amp.GradScaler(device.type, enabled=False)
    rates = []
    for ep in range(epochs):
        t0 = time.time()
        if model is None:
            n = 0
            for _x, y in loader:
                n += len(y)
        else:
            n = train_steps(model, loader, opt, scaler, device=device, amp=None, max_steps=None, epoch_key=ep)["n"]
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.time() - t0
        rates.append(n / dt)
        log_rows.append(f"  {name:<22} epoch {ep} {'(warm-up)' if ep == 0 else '         '} {n:6d} images "
                        f"{dt:7.2f}s {n / dt:9.1f} img/s")
    steady = rates[1:] or rates
    return sum(steady) / len(steady)


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or reuse) .beton files, then time both loaders with and without the model."""
    args = build_parser().parse_args(argv)
    require_ffcv()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    data = data_from_args(args, None)
    tmp = None
    beton_dir = args.beton_dir
    if beton_dir is None or not (Path(beton_dir) / "cifar_train.beton").exists():
        if beton_dir is None:
            tmp = tempfile.TemporaryDirectory()
            beton_dir = tmp.name
        t0 = time.time()
        write_split_files(beton_dir, data, num_workers=args.workers)
        print(f"# wrote .beton files ({len(data.train_y)} train images) in {time.time() - t0:.1f}s")
    ffcv = ffcv_loader(beton_dir, "train", batch_size=args.batch_size, device=device, train=True,
                       num_workers=args.workers, limit=len(data.train_y), half=False)
    tens = TensorLoader(data.train_x, data.train_y, batch_size=args.batch_size, shuffle=True, augment=True,
                        cutout=8, mean=data.mean, std=data.std, device=device, drop_last=True)
    print(f"# {platform.processor() or platform.machine()}, device {device}, torch threads "
          f"{torch.get_num_threads()}, ffcv workers {args.workers}; {len(data.train_y)} images "
          f"{tuple(data.train_x.shape[1:])}, batch {args.batch_size}, {args.epochs} epochs per path (first = warm-up)")
    rows: list[str] = []
    results = {}
    for label, with_model in (("loader only", False), ("train epoch", True)):
        for name, loader in (("ffcv", ffcv), ("tensor", tens)):
            model = None
            if with_model:
                torch.manual_seed(0)
                model = PertNASNetwork(_cell_switches(), C=args.init_channels, n_classes=data.n_classes,
                                       layers=args.layers).to(device)
            results[(label, name)] = _epochs(f"{name} {label}", loader, model, device, args.epochs, rows)
    print("\n".join(rows))
    print(f"{'':14}{'ffcv img/s':>12}{'tensor img/s':>14}{'ffcv/tensor':>13}")
    for label in ("loader only", "train epoch"):
        f, t = results[(label, "ffcv")], results[(label, "tensor")]
        print(f"{label:14}{f:12.1f}{t:14.1f}{f / t:13.2f}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
