"""Train a list of architectures from scratch under one budget, resumably: the logic of augment.py.

Layout of ``<save_path>/<name>/``: ``config.json`` (resolved config), ``results.json`` (one record per
finished architecture plus run metadata), ``<name>.log``, ``tb/`` (tensorboard), ``arch_NNN/checkpoint.pt``
(per-epoch checkpoint of the architecture in progress) and ``arch_NNN/record.json`` (its finished record,
written by the rank that trained it); the folder is removed once rank 0 has merged the record.

Under torchrun the architectures go through a work queue (nas.workqueue): a rank takes the next pending
one the moment it is free, so K ranks (K may exceed the GPUs: several small networks share one) keep
busy whatever each cell costs. Rank 0 alone writes results.json, merging records as they arrive.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from torch.utils.tensorboard import SummaryWriter

from genotypes import GenotypeError, format_genotype
from nas.distributed import DistContext, on_main
from nas.errors import ConfigError, NASError
from nas.io import atomic_write_json, get_logger, read_json, run_metadata
from nas.progress import bar
from nas.rundir import RunFolder, normalize_path
from nas.spaces import get_space, read_arch_file
from nas.train import train_architecture
from nas.workqueue import Collector, WorkQueue, as_sent

# flags that change no result: a rerun may differ in them (a larger --first trains more of the same list)
IGNORED = ("overwrite", "device", "workers", "print_freq", "quiet", "first", "threads", "cuda_graph")


def run_augment(archs: Sequence, *, space_kind: str, budget, data, device, seed: int, run_dir: Path,
                config: dict[str, Any], overwrite: bool = False, quiet: bool = False, ctx=None,
                cuda_graph: str = "auto", poll_s: float = 2.0) -> dict[str, Any]:
    """Train every architecture not yet in ``results.json``; returns the results document (rank 0).

    Under torchrun (``ctx`` from nas.distributed.init_distributed) the pending architectures are a work
    queue over the job's store; each finished record is written to ``arch_NNN/record.json`` by its rank
    and sent to rank 0, which merges it into results.json within ``poll_s`` seconds. A rank killed
    mid-cell leaves that cell pending (its checkpoint resumes on the rerun); a record is never counted twice.
    """
    ctx = ctx or DistContext()
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir, config, ignore=IGNORED, what=f"run folder {run_dir}")
    try:
        return _run(archs, folder, space_kind=space_kind, budget=budget, data=data, device=device, seed=seed,
                    config=config, overwrite=overwrite, quiet=quiet, ctx=ctx, cuda_graph=cuda_graph, poll_s=poll_s)
    finally:
        folder.close()


def _run(archs: Sequence, folder: RunFolder, *, space_kind: str, budget, data, device, seed: int,
         config: dict[str, Any], overwrite: bool, quiet: bool, ctx: DistContext, cuda_graph: str,
         poll_s: float) -> dict[str, Any]:
    run_dir = folder.path
    res_path = run_dir / "results.json"
    texts = [data_text(a, space_kind) for a in archs]
    doc = {"records": []}

    def open_run() -> list[int]:  # rank 0: the genotypes still to train
        nonlocal doc
        folder.open(overwrite=overwrite)
        doc = read_json(res_path) if res_path.exists() else {"records": []}
        _merge_leftovers(doc, run_dir, texts)
        done = {(r["index"], r["genotype"]) for r in doc.get("records", [])}
        return [i for i, t in enumerate(texts) if (i, t) not in done]

    pending = on_main(open_run, ctx)
    log_file = run_dir / f"{run_dir.name}.log" if ctx.is_main else None
    logger = get_logger(f"augment.{run_dir.name}.{ctx.rank}", log_file, quiet=quiet or not ctx.is_main)
    started = time.time()
    logger.info("%d architectures, %d already trained, %d process(es); budget %s", len(archs),
                len(archs) - len(pending), ctx.world_size, budget)
    queue = WorkQueue("augment", len(pending), ctx)
    writer = SummaryWriter(str(run_dir / "tb")) if ctx.is_main else None
    lock = threading.Lock()

    def merge(records: list[dict]) -> None:  # rank 0 only: the one writer of results.json
        with lock:
            have = {r["index"] for r in doc["records"]}
            new = [r for r in records if r["index"] not in have]
            if not new:
                return
            doc["records"] = sorted([*doc["records"], *new], key=lambda x: x["index"])
            doc["meta"] = run_metadata(config, seed=seed, started=started)
            atomic_write_json(res_path, doc)  # the record is safe before its folder goes
            for r in new:
                if cells is not None:
                    cells.update()
                shutil.rmtree(run_dir / f"arch_{r['index']:03d}", ignore_errors=True)
                logger.info("[%d/%d] valid acc %.2f%% (best %.2f%%), %.2fM params, %.1fs (rank %s)", r["index"] + 1,
                            len(archs), r["valid_acc"], r["best_valid_acc"], r["params"] / 1e6, r["seconds"],
                            r.get("rank", 0))

    # rank 0 merges its own records at once, the other ranks' from a thread while it trains
    cells = bar(total=len(pending), desc="cells", unit="arch") if ctx.is_main else None
    collector = Collector(queue, merge, poll_s=poll_s) if ctx.is_main and ctx.enabled else None
    try:
        while (task := queue.take()) is not None:
            i = pending[task]
            workdir = run_dir / f"arch_{i:03d}"
            workdir.mkdir(exist_ok=True)
            tag = f"[{i + 1}/{len(archs)}] "
            logger.info("%strain %s", tag, texts[i])
            rec = {"index": i, **train_architecture(
                archs[i], space_kind=space_kind, budget=budget, data=data, device=device, seed=seed,
                workdir=workdir, logger=logger, writer=writer, tag=tag, tb_prefix=f"arch_{i:03d}",
                cuda_graph=cuda_graph), "rank": ctx.rank}
            atomic_write_json(workdir / "record.json", rec)  # its rank is the one writer of this file
            if ctx.is_main:
                merge([as_sent(rec)])  # as another rank's record would arrive
            else:
                queue.post(rec)
        queue.finish()
        if collector is not None:
            collector.stop()  # waits (polling the store) until every rank has finished its last cell
            collector = None
    finally:
        if collector is not None:  # leaving on an error: keep what has arrived (a rerun merges the rest)
            collector.stop(drain=False)
            merge(queue.receive())
        if writer is not None:
            writer.close()
        if cells is not None:
            cells.close()
    if ctx.is_main:
        doc["meta"] = run_metadata(config, seed=seed, started=started)
        doc["meta"]["world_size"] = ctx.world_size
        atomic_write_json(res_path, doc)
    return doc


def _merge_leftovers(doc: dict[str, Any], run_dir: Path, texts: list[str]) -> None:
    """Records a killed run finished but did not merge (``arch_NNN/record.json``): into ``doc``, once."""
    have = {r["index"] for r in doc.get("records", [])}
    found = []
    for path in sorted(run_dir.glob("arch_*/record.json")):
        try:
            rec = read_json(path)
        except NASError:
            continue  # unreadable: the cell is trained again
        i = rec.get("index") if isinstance(rec, dict) else None
        if isinstance(i, int) and 0 <= i < len(texts) and rec.get("genotype") == texts[i] and i not in have:
            found.append(rec)
            have.add(i)
    if found:
        doc["records"] = sorted([*doc.get("records", []), *found], key=lambda x: x["index"])
        atomic_write_json(run_dir / "results.json", doc)
    for r in doc.get("records", []):  # a folder whose record is merged is no longer needed
        d = run_dir / f"arch_{r['index']:03d}"
        if d.is_dir():
            shutil.rmtree(d, ignore_errors=True)


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
    space = get_space(space_kind)
    if file:
        archs = read_arch_file(file, space)
    else:
        try:
            archs = [space.parse(text.strip())]
        except ValueError as exc:
            raise GenotypeError(f"--arch: {exc}") from None
    return archs[:first] if first is not None else archs
