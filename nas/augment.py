"""Train a list of architectures from scratch under one budget, resumably: the logic of augment.py.

Layout of ``<save_path>/<name>/``: ``config.json`` (resolved config), ``results.json`` (one record per
finished architecture plus run metadata), ``<name>.log``, ``tb/`` (tensorboard), ``arch_NNN/checkpoint.pt``
(per-epoch checkpoint of the architecture in progress, removed when it finishes).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from nas.cli import NASError, get_logger
from nas.io import atomic_write_json, read_json, run_metadata


def _same_config(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Name the first field that differs (None when equal), ignoring fields that do not change results."""
    for k in sorted(set(old) | set(new)):
        if k in ("overwrite", "device", "workers", "print_freq"):
            continue
        if json.dumps(old.get(k), sort_keys=True, default=str) != json.dumps(new.get(k), sort_keys=True, default=str):
            return f"{k}: {old.get(k)!r} -> {new.get(k)!r}"
    return None


def run_augment(archs: Sequence, *, space_kind: str, budget, data, device, seed: int, run_dir: Path,
                config: dict[str, Any], overwrite: bool = False, quiet: bool = False, ctx=None) -> dict[str, Any]:
    """Train every architecture not yet in ``results.json``; returns the results document.

    Under torchrun (``ctx`` from nas.distributed.init_distributed) rank r trains every world_size-th pending
    architecture; records are gathered after each round and rank 0 alone writes results, config and log.
    """
    from torch.utils.tensorboard import SummaryWriter

    from nas.distributed import DistContext, all_gather_object, barrier, broadcast_object
    from nas.train import train_architecture

    ctx = ctx or DistContext()
    run_dir = Path(run_dir)
    res_path = run_dir / "results.json"
    problem = None
    if ctx.is_main:
        try:
            _prepare_run_dir(run_dir, config, overwrite)
        except NASError as exc:
            problem = str(exc)
    problem = broadcast_object(problem, ctx)  # every rank stops on rank 0's refusal, not just rank 0
    if problem:
        raise NASError(problem)
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
                    workdir=workdir, logger=logger, writer=writer, tag=tag)}
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


def _prepare_run_dir(run_dir: Path, config: dict[str, Any], overwrite: bool) -> None:
    """Refuse to mix two configs in one run folder; write the resolved config."""
    cfg_path, res_path = run_dir / "config.json", run_dir / "results.json"
    if run_dir.exists() and (cfg_path.exists() or res_path.exists()):
        if overwrite:
            shutil.rmtree(run_dir)
        elif cfg_path.exists():
            diff = _same_config(read_json(cfg_path), config)
            if diff:
                raise NASError(f"{run_dir} holds a run with another config ({diff}); use another --name, "
                               "or --overwrite to replace it")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cfg_path, config)


def data_text(arch, space_kind: str) -> str:
    from genotypes import format_genotype

    return format_genotype(arch) if space_kind == "darts" else str(arch)


def resolved_config(args, budget) -> dict[str, Any]:
    """Every flag plus the budget actually used (written as config.json next to the results)."""
    cfg = {k: v for k, v in vars(args).items() if k not in dataclasses.asdict(budget)}
    cfg["budget"] = dataclasses.asdict(budget)
    return cfg
