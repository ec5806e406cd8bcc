"""Supernet search: DARTS (first/second order) or DARTS-PT's 'blank' on S1-S5 or NAS-Bench-201.

Writes <save_path>/<name>/: checkpoint.pt every epoch, search.json (argmax genotype, alphas and
statistics per epoch, run metadata), <name>.log and tensorboard events (tb/). Rerunning the same
command continues from the last checkpoint. Then run project.py on the directory.

    python search.py --space nb201 --method darts --epochs 100 --layers 5 --init_channels 16
    python search.py --name=DARTS_BPE1 --batch_size=128 --w_lr=0.03 --layers=6 --init_channels=8 \\
        --epochs=10 --cutout_length=0 --image_size=16
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from nas.cli import UsageError, get_logger, run_cli


def build_parser() -> argparse.ArgumentParser:
    from nas.data import add_data_args
    from param_setting import add_budget_args

    p = argparse.ArgumentParser(prog="search.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default=None, help="run name (default search-<method>-<space>-<seed>)")
    p.add_argument("--save_path", default="searchs", help="parent folder of runs (default %(default)s)")
    p.add_argument("--space", default="s5", type=str.lower, help="s1..s5, darts (= s5) or nb201 (default s5)")
    p.add_argument("--method", default="darts", type=str.lower, help="darts or blank (default darts)")
    p.add_argument("--unrolled", action="store_true", help="DARTS second-order alpha step")
    p.add_argument("--seed", type=int, default=2, help="random seed (default 2, DARTS-PT's)")
    p.add_argument("--alpha_lr", "--arch_learning_rate", dest="alpha_lr", type=float, default=3e-4)
    p.add_argument("--alpha_weight_decay", "--arch_weight_decay", dest="alpha_weight_decay", type=float,
                   default=1e-3)
    p.add_argument("--ckpt_interval", type=int, default=0,
                   help="also keep checkpoint_<epoch>.pt every N epochs (default 0: only the latest)")
    p.add_argument("--resume_expid", default=None, help="run directory to continue (default <save_path>/<name>)")
    p.add_argument("--resume_epoch", type=int, default=None, help="continue from checkpoint_<E>.pt")
    p.add_argument("--overwrite", action="store_true", help="start over in an existing run directory")
    p.add_argument("--benchmark", default=None, help="NAS-Bench-201 CSV: log the argmax cell's table accuracy")
    p.add_argument("--metric", default="cifar10_test_acc", help="benchmark column (default %(default)s)")
    p.add_argument("--channels_last", action="store_true", help="channels_last memory format")
    p.add_argument("--max_steps", type=int, default=None, help="stop each epoch after N steps (smoke tests)")
    p.add_argument("--no_tensorboard", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    add_budget_args(p, default=None)
    add_data_args(p)
    return p


# DARTS-PT's search defaults (sota/cnn/train_search.py, nasbench201/train_search.py)
_DEFAULTS = {"batch_size": 64, "lr": 0.025, "init_channels": 16, "image_size": 32, "cutout_length": 0,
             "momentum": 0.9, "weight_decay": 3e-4, "grad_clip": 5.0}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    from nas.supernet_search import SearchConfig, run_search
    from nas.train import configure_threads, resolve_device
    from param_setting import get_budget

    space = "s5" if args.space == "darts" else args.space
    if space not in ("nb201", "s1", "s2", "s3", "s4", "s5"):
        raise UsageError(f"unknown --space {args.space!r}; allowed: nb201, s1, s2, s3, s4, s5, darts")
    base = dict(_DEFAULTS, epochs=100 if space == "nb201" else 50, layers=5 if space == "nb201" else 8)
    if args.param:  # a BPE budget preset: its search-relevant fields
        b = get_budget(args.param)
        base.update(epochs=b.epochs, batch_size=b.batch_size, lr=b.lr, layers=b.layers,
                    init_channels=b.init_channels, image_size=b.image_size, cutout_length=b.cutout_length)
    for key in ("epochs", "batch_size", "lr", "layers", "init_channels", "image_size", "cutout_length",
                "momentum", "weight_decay", "grad_clip"):
        if getattr(args, key, None) is not None:
            base[key] = getattr(args, key)
    lr_min = args.lr_min if args.lr_min is not None else 0.001
    cfg = SearchConfig(space=space, method=args.method, unrolled=args.unrolled, dataset=args.dataset,
                       data_path=args.data_path, train_portion=args.train_portion or 0.5,
                       limit_train=args.limit_train, limit_valid=args.limit_valid, lr_min=lr_min,
                       alpha_lr=args.alpha_lr, alpha_weight_decay=args.alpha_weight_decay, seed=args.seed, **base)
    cfg.check()
    name = args.name or f"search-{cfg.method}-{space}-{cfg.seed}"
    run_dir = Path(args.resume_expid) if args.resume_expid else Path(args.save_path) / name
    device = resolve_device(args.device)
    configure_threads()
    if args.threads:  # on a shared CPU one thread per process avoids OpenMP spin-waiting
        import torch

        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True
    logger = get_logger("search", run_dir / f"{name if not args.resume_expid else run_dir.name}.log")
    logger.info("config %s", cfg)
    run_search(cfg, run_dir, device=device, resume_epoch=args.resume_epoch, overwrite=args.overwrite,
               ckpt_interval=args.ckpt_interval, benchmark=args.benchmark, metric=args.metric, logger=logger,
               tensorboard=not args.no_tensorboard, channels_last=args.channels_last, max_steps=args.max_steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
