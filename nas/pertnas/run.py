"""A PertNAS run from parsed flags: ranks, data, the run folder, the population, results.

Order matters for failures: every setting is checked and the data loaded before ``config.json`` is
written (a first try that failed on missing data leaves nothing that refuses the corrected rerun); an
error under torchrun leaves the process group at once (``cleanup(ctx, failed=True)``) and tells ranks
that wait on files (``status_p<rank>.json``).
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from genotypes import Genotype, parse_genotype
from nas.benchmarks import NB301_OPS, load_nb301, nb301_predict
from nas.data import TensorLoader, load_dataset, resolve_dataset
from nas.device import configure_threads, resolve_device
from nas.distributed import DistContext, cleanup, init_distributed, on_main
from nas.errors import ConfigError, NASError
from nas.ffcv_data import INSTALL_HINT, ffcv_available, ffcv_loaders
from nas.io import atomic_write_json, atomic_write_text, attach_log_file, get_logger, read_json, run_metadata
from nas.pertnas.population import (
    member_record,
    members_of,
    run_member,
    run_selection,
    share_valuation,
    wait_for_files,
    write_status,
)
from nas.pertnas.search import OP_LISTS, PertNASConfig, SearchData
from nas.progress import set_quiet
from nas.rundir import RunFolder, normalize_path
from nas.viz import try_draw

log = logging.getLogger(__name__)
POPULATIONS = ("shared", "independent")


def slurm_env() -> None:
    """PertNAS' 'tacc' cluster mode (SE 71-76): ranks from SLURM; torch.distributed reads RANK/WORLD_SIZE/MASTER_*."""
    for dst, src in (("RANK", "SLURM_PROCID"), ("LOCAL_RANK", "SLURM_LOCALID"), ("WORLD_SIZE", "SLURM_NTASKS")):
        if src not in os.environ:
            raise ConfigError(f"--cluster slurm: {src} is not set (run under srun, or use --cluster local)")
        os.environ.setdefault(dst, os.environ[src])
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "33182")  # SE 95


def config_from_args(args: argparse.Namespace) -> PertNASConfig:
    """The search hyperparameters of the flags; ConfigError naming a bad flag."""
    bad = f"--finetune_extra must be three integers like 20,80,130, got {args.finetune_extra!r}"
    try:
        extra = tuple(int(v) for v in args.finetune_extra.split(","))
    except ValueError:
        raise ConfigError(bad) from None
    if len(extra) != 3:
        raise ConfigError(bad)
    if args.nodes != 4:
        raise ConfigError(f"--nodes {args.nodes}: only 4 intermediate nodes are supported (the DARTS cell)")
    if args.npop < 1:
        raise ConfigError(f"--npop must be positive, got {args.npop}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be positive, got {args.threads}")
    if args.stop_after is not None and args.stop_after < 0:
        raise ConfigError(f"--stop_after must be >= 0, got {args.stop_after}")
    fast = args.fast  # SE --fast: one batch per epoch, no fine-tune (SE 378, 494, 528)
    return PertNASConfig(init_channels=args.init_channels, layers=args.layers, batch_size=args.batch_size,
                         lr=args.learning_rate, lr_min=args.learning_rate_min, momentum=args.momentum,
                         weight_decay=args.weight_decay, epochs_per_step=args.epochs_per_step,
                         finetune_steps=0 if fast else args.finetune_steps,
                         finetune_extra=(0, 0, 0) if fast else extra, op_cap=args.op_cap, ops=OP_LISTS[args.ops],
                         amp=not args.no_amp, max_train_steps=1 if fast else args.max_train_steps,
                         perturb_restore=args.perturb_restore)


def result_config(args: argparse.Namespace, data: SearchData) -> dict[str, Any]:
    """Every setting that changes a result: config.json, compared field by field on resume."""
    keys = ("population", "seed", "npop", "ops", "init_channels", "layers", "batch_size", "learning_rate",
            "learning_rate_min", "momentum", "weight_decay", "op_cap", "epochs_per_step", "finetune_steps",
            "finetune_extra", "perturb_restore", "max_train_steps", "cutout_length", "fast", "dataset",
            "train_portion", "limit_train", "limit_valid", "image_size")
    cfg = {k: getattr(args, k) for k in keys}
    cfg.update(finetune_extra=[int(v) for v in args.finetune_extra.split(",")], amp=not args.no_amp, data=data.source)
    if data.source == "ffcv":
        cfg["train_path"] = normalize_path(args.train_path)
    else:
        cfg["data_path"] = normalize_path(args.data_path)
    return cfg


def load_search_data(args: argparse.Namespace, device: torch.device) -> SearchData:
    """FFCV when --train_path is given and ffcv imports (SE 147), else the toolkit's in-memory TensorLoader.

    Both validate on the test split, as SE (its 'valid' loader reads cifar_test.beton).
    """
    val_bs = args.batch_size  # SE 92: val_batch_size = batch_size
    limit_valid = args.batch_size if args.fast else args.limit_valid
    if args.train_path and ffcv_available():
        tr, va, meta = ffcv_loaders(args.train_path, batch_size=args.batch_size, val_batch_size=val_bs,
                                    device=device, num_workers=args.workers, seed=args.seed,
                                    limit_train=args.limit_train, limit_valid=limit_valid, cutout=args.cutout_length)
        data = SearchData(tr, va, int(meta["n_classes"]), 3, source="ffcv", extras=meta)
    else:
        if args.train_path:
            log.warning("--train_path given but %s; reading --dataset %s from %s instead", INSTALL_HINT.split(":")[0],
                        args.dataset, args.data_path)
        valid = "test" if args.train_portion is None else args.train_portion
        d = load_dataset(args.dataset, args.data_path, valid=valid, limit_train=args.limit_train,
                         image_size=args.image_size, limit_valid=limit_valid)
        tr = TensorLoader(d.train_x, d.train_y, batch_size=args.batch_size, shuffle=True, augment=True,
                          cutout=args.cutout_length, mean=d.mean, std=d.std, device=device, drop_last=True,
                          seed=args.seed, channels_last=device.type == "cuda")
        va = TensorLoader(d.valid_x, d.valid_y, batch_size=val_bs, mean=d.mean, std=d.std, device=device,
                          channels_last=device.type == "cuda")
        data = SearchData(tr, va, d.n_classes, d.in_channels, source="tensor",
                          extras={"dataset": d.name, "n_train": len(d.train_y), "n_valid": len(d.valid_y)})
    if len(data.train) == 0:
        raise ConfigError(f"no full training batch: {args.limit_train} training images < --batch_size "
                          f"{args.batch_size}; lower --batch_size")
    return data


def _wandb_hook(args: argparse.Namespace, name: str, folder: Path) -> tuple[Callable | None, Callable[[], None]]:
    """A per-decision logger to Weights & Biases (the user's own login) and its finish, or (None, no-op)."""
    if not args.wandb:
        return None, lambda: None
    import wandb  # optional; checked in search_main before anything is written

    run = wandb.init(project=args.wandb_project, name=f"{args.note}_{name}", dir=str(folder), group=args.note,
                     config={**vars(args), "unit": name}, resume="allow", reinit=True)

    def on_step(state: dict) -> None:
        rec = state["history"][-1]
        run.log({f"{name}/{k}": v for k, v in rec.items() if isinstance(v, (int, float))}, step=state["step"])

    return on_step, run.finish


def nb301_score(genotype: Genotype, models_dir: str | Path | None) -> tuple[float | None, str]:
    """NAS-Bench-301's predicted accuracy of the cell, or None and the reason why not."""
    ops = {op for cell in (genotype.normal, genotype.reduce) for node in cell for op, _ in node}
    bad = sorted(ops - set(NB301_OPS))
    if bad:
        return None, f"the cell holds {', '.join(bad)}, which NAS-Bench-301 cannot score (search with --ops darts)"
    try:
        return nb301_predict(load_nb301(models_dir), genotype), str(models_dir)
    except NASError as exc:
        return None, str(exc)


def search_main(args: argparse.Namespace) -> int:
    """Run or resume a PertNAS search (see search_evolutionary.py)."""
    started = time.time()
    if args.cifar100:
        args.dataset = "cifar100"
    args.dataset = resolve_dataset(args.dataset, args.data_path)  # config.json names what was read
    cfg = config_from_args(args)
    if args.wandb:
        try:
            import wandb  # noqa: F401  (optional package)
        except ImportError:
            raise ConfigError("--wandb needs the wandb package (pip install wandb) and your own login") from None
    if args.distributed and args.cluster in ("slurm", "tacc"):
        slurm_env()
    if not args.distributed and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("launched by torchrun with several processes: add --distributed")
    set_quiet(args.quiet)
    device = resolve_device(args.device)  # a clear error for an unavailable --device before joining the job
    ctx = init_distributed(args.device) if args.distributed else DistContext(device=str(device))
    run_dir = Path(args.save) / f"search-{args.note}"
    folder, token, failed = None, None, True
    logger = get_logger("nas", quiet=args.quiet)
    try:
        configure_threads(args.threads, world_size=ctx.world_size)  # --threads, else the cores split over ranks
        if args.population == "shared" and args.npop % ctx.world_size:
            raise ConfigError(f"--npop {args.npop} is not a multiple of the {ctx.world_size} ranks: PertNAS runs "
                              "npop // ranks members on each rank (SE 149); choose a multiple")
        device = torch.device(ctx.device)
        torch.backends.cudnn.benchmark = True  # SE 135
        data = load_search_data(args, device)
        folder = RunFolder(run_dir, result_config(args, data), what=f"PertNAS run {run_dir}")
        token = on_main(lambda: (folder.open(overwrite=args.overwrite), uuid.uuid4().hex)[1], ctx)
        attach_log_file(logger, run_dir / f"log_p{ctx.rank}.txt")
        logger.info("rank %d/%d on %s (%s), population %s; data %s: %d classes, %d train / %d valid batches; "
                    "args %s", ctx.rank, ctx.world_size, device, ctx.backend or "one process", args.population,
                    data.source, data.n_classes, len(data.train), len(data.valid), vars(args))
        run = _shared if args.population == "shared" else _independent
        rc = run(args, cfg, data, device, ctx, run_dir, token, started)
        failed = False
        return rc
    except BaseException as exc:
        if token is not None and ctx.world_size > 1:
            try:
                write_status(run_dir, ctx.rank, token, "failed", f"{type(exc).__name__}: {exc}"[:500])
            except OSError:
                pass
        raise
    finally:
        if folder is not None:
            folder.close()
        cleanup(ctx, failed=failed)


def _where(device: torch.device, cfg: PertNASConfig) -> dict[str, str]:
    """Device and precision of a result (SE: float16 autocast + GradScaler on CUDA)."""
    return {"device": str(device), "precision": "fp16 autocast" if cfg.amp and device.type == "cuda" else "fp32"}


def _run_members(args, cfg, data, device, ctx, run_dir: Path, *, shared: bool, started: float) -> bool:
    """This rank's members (finished ones kept); False when one stopped early (--stop_after)."""
    out_name = "valuation.json" if shared else "result.json"
    complete = True
    for k in members_of(ctx.rank, ctx.world_size, args.npop):
        mdir = run_dir / f"member{k}"
        if (mdir / out_name).exists():
            log.info("member %d: finished earlier, kept (%s)", k, mdir / out_name)
            continue
        on_step, finish = _wandb_hook(args, f"m{k}", mdir)
        try:
            state = run_member(k, args.seed, cfg, data, device, mdir, shared=shared, stop_after=args.stop_after,
                               on_step=on_step)
        finally:
            finish()
        if state is None:
            log.info("member %d: stopped after %d decisions (--stop_after); rerun to continue", k, args.stop_after)
            complete = False
            continue
        rec = member_record(state, cfg)
        rec.update(data=data.source, data_info=data.extras, **_where(device, cfg),
                   **run_metadata(args, seed=state["seed"], started=started))
        atomic_write_json(mdir / out_name, rec)
        if not shared:
            atomic_write_text(mdir / "genotype.txt", state["genotype"] + "\n")
            log.info("member %d done: valid acc %.2f%%, genotype %s", k, state["valid_acc"], state["genotype"])
    return complete


def _shared(args, cfg, data, device, ctx: DistContext, run_dir: Path, token: str, started: float) -> int:
    """SE 149-330: members expand, their matrices are averaged across ranks, rank 0 selects once."""
    paths = [run_dir / f"member{k}" / "valuation.json" for k in range(args.npop)]
    if not _run_members(args, cfg, data, device, ctx, run_dir, shared=True, started=started):
        if ctx.world_size > 1:
            write_status(run_dir, ctx.rank, token, "stopped")
        log.info("stopped early (--stop_after); rerun the same command to continue")
        return 0
    if not wait_for_files(paths, run_dir, token, ctx.world_size):
        log.info("another rank stopped early (--stop_after); rerun the same command to continue")
        return 0
    mine = [read_json(paths[k])["valuation_matrix"] for k in members_of(ctx.rank, ctx.world_size, args.npop)]
    mean = share_valuation(mine, ctx)
    world = ctx.world_size
    log.info("mean valuation matrix of %d members (%d ranks):\n%s", args.npop, world, np.round(mean, 2))
    cleanup(ctx)  # SE 236-237: only rank 0 goes on; no collective is left to time out during the selection
    if not ctx.is_main:
        return 0
    on_step, finish = _wandb_hook(args, "selection", run_dir)
    try:
        sel = run_selection(mean, args.seed, cfg, data, device, run_dir / "selection", members=args.npop,
                            stop_after=args.stop_after, on_step=on_step)
    finally:
        finish()
    if sel is None:
        log.info("selection stopped after %d decisions (--stop_after); rerun to continue", args.stop_after)
        return 0
    members = [read_json(p) for p in paths]
    g = parse_genotype(sel["genotype"])
    nb, why = nb301_score(g, args.nb301_models)
    summary = {"population": "shared", "best_genotype": sel["genotype"], "genotype": sel["genotype"],
               "world_size": world, "ops": list(cfg.ops), "valuation_matrix": mean.tolist(),
               "members": [{k: m[k] for k in ("member", "seed", "initial_switches", "valuation_matrix")}
                           for m in members],
               "final_switches": sel["switches"], "node_order": sel["node_order"],
               "perturbation_scores": sel["scores"], "history": sel["history"], "data": data.source,
               "data_info": data.extras, "nb301_predicted_acc": nb, "nb301_note": why, **_where(device, cfg),
               **run_metadata(args, seed=args.seed, started=started)}
    _write_best(args, run_dir, summary, f"selected once from the mean valuation of {args.npop} members", nb, why)
    return 0


def _independent(args, cfg, data, device, ctx: DistContext, run_dir: Path, token: str, started: float) -> int:
    """Each member runs every phase itself; rank 0 reports the member with the best validation accuracy."""
    cleanup(ctx)  # no collective after this point: members run for hours on their own
    if not _run_members(args, cfg, data, device, ctx, run_dir, shared=False, started=started):
        if ctx.world_size > 1:
            write_status(run_dir, ctx.rank, token, "stopped")
        log.info("stopped early (--stop_after); rerun the same command to continue")
        return 0
    paths = [run_dir / f"member{k}" / "result.json" for k in range(args.npop)]
    if not ctx.is_main or not wait_for_files(paths, run_dir, token, ctx.world_size):
        return 0
    results = [read_json(p) for p in paths]
    best = max(results, key=lambda r: r["valid_acc"])
    for r in results:
        log.info("member %d (seed %d): valid acc %.2f%%", r["member"], r["seed"], r["valid_acc"])
    nb, why = nb301_score(parse_genotype(best["genotype"]), args.nb301_models)
    summary = {"population": "independent", "best_member": best["member"], "best_valid_acc": best["valid_acc"],
               "best_genotype": best["genotype"], "world_size": ctx.world_size,
               "members": [{k: r[k] for k in ("member", "seed", "valid_acc", "genotype")} for r in results],
               "nb301_predicted_acc": nb, "nb301_note": why, **_where(device, cfg),
               **run_metadata(args, seed=args.seed, started=started)}
    _write_best(args, run_dir, summary, f"member {best['member']}, valid acc {best['valid_acc']:.2f}%", nb, why)
    return 0


def _write_best(args, run_dir: Path, summary: dict, what: str, nb: float | None, why: str) -> None:
    """results.json and best_genotype.txt; the cell on stdout with its NAS-Bench-301 score or how to train it."""
    genotype = summary["best_genotype"]
    atomic_write_json(run_dir / "results.json", summary)
    atomic_write_text(run_dir / "best_genotype.txt", genotype + "\n")
    try_draw(genotype, run_dir / "best_cell", title=f"PertNAS {run_dir.name}: best cell (normal = reduce)", logger=log)
    if nb is not None:
        log.info("NAS-Bench-301 predicted accuracy of the cell (normal = reduce): %.2f%% (%s)", nb, why)
    else:
        log.info("NAS-Bench-301 scoring skipped: %s", why)
    print(f"best genotype ({what}):")
    print(genotype)
    # PertNAS evaluates a cell with the DARTS protocol (600 epochs, C=36, 20 cells: eval-evolutionary/log.txt)
    print(f'train it: python augment.py --name search-{args.note}-best --arch "{genotype}" --param DARTS '
          f"--dataset {args.dataset} --data_path {shlex.quote(str(args.data_path))}")
    print(f"results: {run_dir / 'results.json'}")
