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
                config: dict[str, Any], overwrite: bool = False, quiet: bool = False) -> dict[str, Any]:
    """Train every architecture not yet in ``results.json``; returns the results document."""
    from torch.utils.tensorboard import SummaryWriter

    from nas.train import train_architecture

    run_dir = Path(run_dir)
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
    logger = get_logger(f"augment.{run_dir.name}", run_dir / f"{run_dir.name}.log", quiet=quiet)
    started = time.time()
    doc = read_json(res_path) if res_path.exists() else {"records": []}
    done = {(r["index"], r["genotype"]) for r in doc.get("records", [])}
    texts = [data_text(a, space_kind) for a in archs]
    logger.info("%d architectures, %d already trained; budget %s", len(archs), len(done), budget)
    writer = SummaryWriter(str(run_dir / "tb"))
    try:
        for i, (arch, text) in enumerate(zip(archs, texts)):
            if (i, text) in done:
                continue
            workdir = run_dir / f"arch_{i:03d}"
            workdir.mkdir(exist_ok=True)
            tag = f"[{i + 1}/{len(archs)}] "
            logger.info("%strain %s", tag, text)
            rec = train_architecture(arch, space_kind=space_kind, budget=budget, data=data, device=device,
                                     seed=seed, workdir=workdir, logger=logger, writer=writer, tag=tag)
            rec = {"index": i, **rec}
            doc["records"] = sorted([*doc.get("records", []), rec], key=lambda r: r["index"])
            doc["meta"] = run_metadata(config, seed=seed, started=started)
            atomic_write_json(res_path, doc)  # the record is safe before the checkpoint goes
            shutil.rmtree(workdir, ignore_errors=True)
            logger.info("%svalid acc %.2f%% (best %.2f%%), %.2fM params, %.1fs", tag, rec["valid_acc"],
                        rec["best_valid_acc"], rec["params"] / 1e6, rec["seconds"])
    finally:
        writer.close()
    doc["meta"] = run_metadata(config, seed=seed, started=started)
    atomic_write_json(res_path, doc)
    return doc


def data_text(arch, space_kind: str) -> str:
    from genotypes import format_genotype

    return format_genotype(arch) if space_kind == "darts" else str(arch)


def resolved_config(args, budget) -> dict[str, Any]:
    """Every flag plus the budget actually used (written as config.json next to the results)."""
    cfg = {k: v for k, v in vars(args).items() if k not in dataclasses.asdict(budget)}
    cfg["budget"] = dataclasses.asdict(budget)
    return cfg
