"""search.py's and project.py's flags and run folders (DARTS-PT's names and pt.darts/BPE's, both accepted).

Run folders follow DARTS-PT (``nasbench201/train_search.py`` 75-79, ``sota/cnn/train_search.py`` 94-108):
``<save_path>/nasbench201/search-<save>-<seed>[-<dataset>][-<tag>]`` and
``<save_path>/sota/<dataset>/search-<save>[-<tag>]-<space>-<seed>``, where ``--save`` is the recipe's
name (``darts-201``, ``blank-sota``, ...). ``--name`` (pt.darts/BPE) puts the run in ``<save_path>/<name>``.
``--resume_expid`` is a folder, or a run name resolved as DARTS-PT does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from models.supernets import Supernet
from nas.benchmarks import BenchmarkReport
from nas.cli import add_runtime_args, setup_threads
from nas.cudagraph import CUDA_GRAPH_CHOICES, use_cuda_graph
from nas.data import add_data_args, resolve_dataset
from nas.device import resolve_device
from nas.errors import ConfigError
from nas.progress import set_quiet
from nas.spaces import get_space
from nas.supernet.search import METHODS, PROTOCOLS, SearchConfig
from param_setting import add_budget_args, get_budget


def add_search_args(p: argparse.ArgumentParser) -> None:
    """Every search.py flag (DARTS-PT's spellings as aliases)."""
    p.add_argument("--name", default=None, help="run name: <save_path>/<name> (pt.darts/BPE style)")
    p.add_argument("--save", default=None, help="recipe name in DARTS-PT's folder layout (default <method>-201/-sota)")
    p.add_argument("--expid_tag", default=None, help="extra tag in the run folder name (DARTS-PT)")
    p.add_argument("--save_path", default="experiments", help="root of the run folders (default %(default)s)")
    p.add_argument("--space", "--search_space", dest="space", default=None, type=str.lower,
                   help="nb201, darts (pt.darts, with 'none'), s1..s5 (DARTS-PT; s5 without 'none'); "
                        "default s5, or darts with --protocol bpe")
    p.add_argument("--method", default=None, type=str.lower, help=f"{', '.join(METHODS)} (default darts)")
    p.add_argument("--protocol", default="auto", choices=("auto", *PROTOCOLS),
                   help="dartspt or bpe (pt.darts' search as BPE runs it: second order, 'none' in the space, best-"
                        "epoch genotype); auto: bpe when --method is not given (BPE's command line), else dartspt")
    p.add_argument("--unrolled", action="store_true", default=None, help="DARTS second-order alpha step")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 2; DARTS-PT's 201 recipes use 0)")
    p.add_argument("--alpha_lr", "--arch_learning_rate", dest="alpha_lr", type=float, default=3e-4)
    p.add_argument("--alpha_weight_decay", "--arch_weight_decay", dest="alpha_weight_decay", type=float, default=1e-3)
    p.add_argument("--epsilon_alpha", type=float, default=None,
                   help="SDARTS: largest perturbation (default 0.3; ramped from 0.03 over the search)")
    p.add_argument("--learning_rate", dest="lr_dartspt", type=float, default=None, help="DARTS-PT's name of --lr")
    p.add_argument("--learning_rate_min", "--w_lr_min", dest="lr_min_alias", type=float, default=None,
                   help="cosine floor of the weight lr (default 0.001)")
    p.add_argument("--ckpt_interval", type=int, default=None,
                   help="also keep checkpoint_<epoch>.pt every N epochs (default 20 on nb201, 10 in DARTS spaces, "
                        "as DARTS-PT; 0 keeps only the latest)")
    p.add_argument("--resume_expid", default=None, help="run folder (or DARTS-PT run name) to continue")
    p.add_argument("--resume_epoch", type=int, default=None, help="continue from checkpoint_<E>.pt")
    p.add_argument("--overwrite", action="store_true", help="start over in an existing run folder")
    add_benchmark_args(p)
    p.add_argument("--channels_last", action="store_true", help="channels_last memory format")
    p.add_argument("--max_steps", type=int, default=None, help="stop each epoch after N steps (smoke tests)")
    p.add_argument("--no_tensorboard", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bars; log to the run's .log file only")
    add_supernet_runtime_args(p)
    add_budget_args(p, default=None)
    add_data_args(p)


def add_supernet_runtime_args(p: argparse.ArgumentParser) -> None:
    """``--device``, ``--threads`` and ``--cuda_graph`` of search.py and project.py."""
    add_runtime_args(p)
    p.add_argument("--cuda_graph", default="off", choices=CUDA_GRAPH_CHOICES,
                   help="replay the supernet's training forward/backward from CUDA graphs (models/graphed.py): "
                        "on/auto use them on CUDA; off (default until measured on a GPU: bench/gpu_throughput.py)")


def setup_supernet_runtime(args: argparse.Namespace) -> torch.device:
    """Apply ``--quiet``, ``--device``, ``--threads`` and ``--cuda_graph`` (for every supernet of this process)."""
    set_quiet(args.quiet)
    device = resolve_device(args.device)
    setup_threads(args.threads)
    Supernet.cuda_graphs = use_cuda_graph(args.cuda_graph, device)
    return device


def checkpoint_interval(args: argparse.Namespace, cfg: SearchConfig) -> int:
    """``--ckpt_interval``, else DARTS-PT's 20 epochs on nb201 and 10 in the DARTS spaces (BPE keeps none)."""
    if args.ckpt_interval is not None:
        return args.ckpt_interval
    return 0 if cfg.protocol == "bpe" else 20 if cfg.space == "nb201" else 10


def add_benchmark_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--benchmark", default=None,
                   help="NAS-Bench-201 table (.csv) or API file (.pth): log the cells' accuracy (the search signal)")
    p.add_argument("--metric", default="cifar10_test_acc", help="--benchmark column (default %(default)s)")
    p.add_argument("--truth", default=None,
                   help="NAS-Bench-201 200-epoch table (or .pth): the accuracy papers report for the cells")
    p.add_argument("--truth_metric", default="cifar10_test_acc", help="--truth column (default %(default)s)")
    p.add_argument("--trust_benchmark_pickle", action="store_true",
                   help="allow loading a .pth benchmark (a full pickle: only for a file you trust)")


def report_from_args(args: argparse.Namespace, space: str) -> BenchmarkReport:
    return BenchmarkReport(signal=args.benchmark, signal_metric=args.metric, truth=args.truth,
                           truth_metric=args.truth_metric, space="nb201" if space == "nb201" else "darts",
                           trust_pickle=args.trust_benchmark_pickle)


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    """Protocol defaults, then DARTS-PT's per-space defaults, then --param, then explicit flags."""
    protocol = args.protocol if args.protocol != "auto" else ("dartspt" if args.method else "bpe")
    space = args.space or ("darts" if protocol == "bpe" else "s5")
    get_space(space)
    nb201 = space == "nb201"
    fields: dict = {"space": space, "method": args.method or "darts", "seed": args.seed,
                    "epochs": 100 if nb201 else 50, "layers": 5 if nb201 else 8,
                    "alpha_lr": args.alpha_lr, "alpha_weight_decay": args.alpha_weight_decay,
                    "epsilon_alpha": args.epsilon_alpha}
    if args.param:  # a BPE budget preset: its search-relevant fields
        b = get_budget(args.param)
        fields.update(epochs=b.epochs, batch_size=b.batch_size, lr=b.lr, layers=b.layers,
                      init_channels=b.init_channels, image_size=b.image_size, cutout_length=b.cutout_length)
    for key in ("epochs", "batch_size", "lr", "layers", "init_channels", "image_size", "cutout_length",
                "momentum", "weight_decay", "grad_clip", "lr_min", "scheduler_step"):
        if getattr(args, key, None) is not None:
            fields[key] = getattr(args, key)
    if args.lr_dartspt is not None:
        fields["lr"] = args.lr_dartspt
    if args.lr_min_alias is not None:
        fields["lr_min"] = args.lr_min_alias
    if args.unrolled:
        fields["unrolled"] = True
    fields.update(dataset=resolve_dataset(args.dataset, args.data_path), data_path=args.data_path,
                  train_portion=args.train_portion or 0.5, limit_train=args.limit_train, limit_valid=args.limit_valid)
    cfg = SearchConfig.for_protocol(protocol, **fields)
    cfg.check()
    return cfg


def run_folder(args: argparse.Namespace, cfg: SearchConfig) -> Path:
    """The run folder this command writes (see the module doc)."""
    if args.resume_expid:
        return resolve_expid(args.resume_expid, args.save_path, cfg.space, cfg.dataset)
    root = Path(args.save_path)
    if args.name:
        return root / args.name
    tag = f"-{args.expid_tag}" if args.expid_tag else ""
    if cfg.space == "nb201":
        save = args.save or f"{cfg.method}-201"
        data = f"-{cfg.dataset}" if cfg.dataset != "cifar10" else ""
        return root / "nasbench201" / f"search-{save}-{cfg.seed}{data}{tag}"
    save = args.save or f"{cfg.method}-sota"
    return root / "sota" / cfg.dataset / f"search-{save}{tag}-{cfg.space}-{cfg.seed}"


def resolve_expid(expid: str, save_path: str, space: str | None, dataset: str | None) -> Path:
    """A folder as given, else DARTS-PT's ``experiments/nasbench201/<expid>`` or ``.../sota/<dataset>/<expid>``."""
    p = Path(expid)
    if p.is_dir() or p.is_absolute() or len(p.parts) > 1:
        return p
    root = Path(save_path)
    cands = []
    if space in (None, "nb201"):
        cands.append(root / "nasbench201" / expid)
    if space != "nb201":
        cands += [root / "sota" / d / expid for d in ([dataset] if dataset else ["cifar10", "cifar100", "svhn"])]
    found = [c for c in cands if c.is_dir()]
    if not found:
        # DARTS-PT's names end in the seed (search-darts-201-<seed>): name the runs that differ only there
        stem, _, seed = expid.rpartition("-")
        near = sorted({d.name for c in cands if c.parent.is_dir() for d in c.parent.iterdir()
                       if d.is_dir() and d.name.startswith(stem + "-")})
        hint = (f"; there is {', '.join(near)} (a run name ends in its search's seed: run the search with --seed "
                f"{seed} first, or pass --resume_expid {near[0]})") if near and seed.isdigit() else ""
        raise ConfigError(f"--resume_expid {expid}: no such run folder (looked in "
                          f"{', '.join(str(c) for c in cands)}){hint}")
    return found[0]
