"""Train a list of architectures from scratch under one budget, resumably: the logic of augment.py.

Layout of ``<save_path>/<name>/``: ``config.json`` (resolved config), ``results.json`` (one record per
finished architecture plus run metadata), ``<name>.log``, ``tb/`` (tensorboard), ``arch_NNN/checkpoint.pt``
(per-epoch checkpoint of the architecture in progress, removed when it finishes).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from torch.utils.tensorboard import SummaryWriter

from genotypes import GenotypeError, format_genotype, parse_genotype, read_genotype_file
from nas.distributed import DistContext, all_gather_object, barrier, broadcast_object
from nas.errors import ConfigError, NASError
from nas.io import atomic_write_json, get_logger, read_json, read_text_file, run_metadata
from nas.rundir import RunFolder, normalize_path
from nas.spaces import get_space
from nas.train import train_architecture

# flags that change no result: a rerun may differ in them (a larger --first trains more of the same list)
IGNORED = ("overwrite", "device", "workers", "print_freq", "quiet", "first", "threads")


def run_augment(archs: Sequence, *, space_kind: str, budget, data, device, seed: int, run_dir: Path,
                config: dict[str, Any], overwrite: bool = False, quiet: bool = False, ctx=None) -> dict[str, Any]:
    """Train every architecture not yet in ``results.json``; returns the results document.

    Under torchrun (``ctx`` from nas.distributed.init_distributed) rank r trains every world_size-th pending
    architecture; records are gathered after each round and rank 0 alone writes results, config and log.
    """
    ctx = ctx or DistContext()
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir, config, ignore=IGNORED, what=f"run folder {run_dir}")
    try:
        return _run(archs, folder, space_kind=space_kind, budget=budget, data=data, device=device, seed=seed,
                    config=config, overwrite=overwrite, quiet=quiet, ctx=ctx)
    finally:
        folder.close()


def _run(archs: Sequence, folder: RunFolder, *, space_kind: str, budget, data, device, seed: int,
         config: dict[str, Any], overwrite: bool, quiet: bool, ctx: DistContext) -> dict[str, Any]:
    run_dir = folder.path
    res_path = run_dir / "results.json"
    problem = None
    if ctx.is_main:
        try:
            folder.open(overwrite=overwrite)
        except NASError as exc:
            problem = f"{type(exc).__name__}:{exc}"
    problem = broadcast_object(problem, ctx)  # every rank stops on rank 0's refusal, not just rank 0
    if problem:
        name, msg = problem.split(":", 1)
        raise (ConfigError if name == "ConfigError" else NASError)(msg)
    barrier(ctx)
    log_file = run_dir / f"{run_dir.name}.log" if ctx.is_main else None
    logger = get_logger(f"augment.{run_dir.name}.{ctx.rank}", log_file, quiet=quiet or not ctx.is_main)
    started = time.time()
    doc = read_json(res_path) if res_path.exists() else {"records": []}
    done = {(r["index"], r["genotype"]) for r in doc.get("records", [])}
    texts = [data_text(a, space_kind) for a in archs]
    pending = [i for i, t in enumerate(texts) if (i, t) not in done]
    logger.info("%d architectures, %d already trained, %d process(es); budget %s", len(archs),
                len(archs) - len(pending), ctx.world_size, budget)
    writer = SummaryWriter(str(run_dir / "tb")) if ctx.is_main else None
    try:
        for start in range(0, len(pending), ctx.world_size):
            mine = pending[start + ctx.rank] if start + ctx.rank < len(pending) else None
            rec = None
            if mine is not None:
                workdir = run_dir / f"arch_{mine:03d}"
                workdir.mkdir(exist_ok=True)
                tag = f"[{mine + 1}/{len(archs)}] "
                logger.info("%strain %s", tag, texts[mine])
                rec = {"index": mine, **train_architecture(
                    archs[mine], space_kind=space_kind, budget=budget, data=data, device=device, seed=seed,
                    workdir=workdir, logger=logger, writer=writer, tag=tag, tb_prefix=f"arch_{mine:03d}")}
            for r in all_gather_object(rec, ctx):
                if r is None or not ctx.is_main:
                    continue
                doc["records"] = sorted([*doc.get("records", []), r], key=lambda x: x["index"])
                doc["meta"] = run_metadata(config, seed=seed, started=started)
                atomic_write_json(res_path, doc)  # the record is safe before its checkpoint goes
                shutil.rmtree(run_dir / f"arch_{r['index']:03d}", ignore_errors=True)
                logger.info("[%d/%d] valid acc %.2f%% (best %.2f%%), %.2fM params, %.1fs", r["index"] + 1,
                            len(archs), r["valid_acc"], r["best_valid_acc"], r["params"] / 1e6, r["seconds"])
    finally:
        if writer is not None:
            writer.close()
    if ctx.is_main:
        doc["meta"] = run_metadata(config, seed=seed, started=started)
        doc["meta"]["world_size"] = ctx.world_size
        atomic_write_json(res_path, doc)
    return doc


def data_text(arch, space_kind: str) -> str:
    return format_genotype(arch) if space_kind == "darts" else str(arch)


def resolved_config(args, budget) -> dict[str, Any]:
    """Every flag plus the budget actually used (written as config.json next to the results)."""
    skip = set(dataclasses.asdict(budget)) | {"w_lr", "fp"}
    cfg = {k: v for k, v in vars(args).items() if k not in skip}
    cfg["data_path"] = normalize_path(cfg.get("data_path"))
    cfg["save_path"] = normalize_path(cfg.get("save_path"))
    cfg["budget"] = dataclasses.asdict(budget)
    return cfg


def read_archs(space_kind: str, *, file: str | None = None, text: str | None = None,
               first: int | None = None) -> list:
    """The architectures of ``--file`` (one per line; # comments) or ``--arch`` (a published name or text)."""
    if first is not None and first < 1:
        raise ConfigError(f"--first must be positive, got {first}")
    if space_kind == "darts":
        archs = read_genotype_file(file) if file else [parse_genotype(text)]
    else:
        space = get_space("nb201")
        archs = []
        lines = read_text_file(file).splitlines() if file else [text]
        for i, line in enumerate(lines, 1):
            line = line.strip()
            if line and not line.startswith("#"):
                try:
                    archs.append(space.parse(line))
                except ValueError as exc:
                    raise GenotypeError(f"{file or '--arch'}:{i}: {exc}") from None
    if not archs:
        raise ConfigError(f"no architectures in {file or '--arch'}")
    return archs[:first] if first is not None else archs
