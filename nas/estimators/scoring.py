"""Scoring a list of architectures into a ScoreTable: zero-shot proxies and/or a one-shot supernet, by any rank.

``score_all`` takes architectures from a work queue (``nas.workqueue``) so that under torchrun each is
scored once by whichever rank is free, and rank 0 alone appends the rows (``nas.estimators.scoretable``).
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from nas.cli import distributed_job, get_logger
from nas.data import load_dataset
from nas.device import resolve_device
from nas.distributed import DistContext, on_main
from nas.errors import ConfigError
from nas.estimators import zeroshot as zs
from nas.estimators.oneshot import SinglePathEstimator, oneshot_for_run
from nas.estimators.scoretable import ScoreTable
from nas.estimators.zeroshot import score_architecture
from nas.progress import bar, set_quiet
from nas.rundir import normalize_path
from nas.spaces import get_space, read_arch_file
from nas.supernet.singlepath import is_singlepath_run
from nas.workqueue import WorkQueue


@dataclass
class ProxyScorer:
    """Zero-shot measures of a list of architectures, averaged over seeds (zero_shot.py's job)."""

    names: list[str]
    cfg: Any  # NetConfig
    batches: Any  # BatchSource
    seeds: list[int]
    device: torch.device

    def __call__(self, arch: Any) -> tuple[dict[str, float], float]:
        return score_architecture(arch, cfg=self.cfg, batches=self.batches.get, seeds=self.seeds, names=self.names,
                                  device=self.device)


def build_scorers(args: Any, space: Any, names: list[str], device: torch.device, *, world_size: int = 1
                  ) -> tuple[ProxyScorer | None, Any]:
    """zero_shot.py's proxy scorer (``names`` measures) and one-shot estimator (``--oneshot``), either None."""
    proxies = oneshot = None
    if names:
        data = load_dataset(args.dataset, args.data_path, valid="none", limit_train=args.limit_train)
        cfg = zs.default_net_config(space.kind, n_classes=data.n_classes, input_size=data.image_size,
                                    in_channels=data.in_channels)
        cfg.C, cfg.layers = args.init_channels or cfg.C, args.layers or cfg.layers
        batches = zs.BatchSource(data, batch_size=min(args.batch_size, len(data.train_y)), device=device)
        proxies = ProxyScorer(names, cfg, batches, list(args.seeds), device)
    if args.oneshot:
        if world_size > 1 and is_singlepath_run(args.oneshot):
            raise ConfigError("--oneshot of a single-path run keeps a per-class file: score it in one process "
                              "(each isomorphism class is evaluated once; 6,466 for all of NAS-Bench-201)")
        oneshot = oneshot_for_run(args.oneshot, space=space, dataset=args.dataset, data_path=args.data_path,
                                     device=device, epoch=args.oneshot_epoch, limit_valid=args.oneshot_limit_valid,
                                     out=args.out, overwrite=args.overwrite)
    return proxies, oneshot


def oneshot_columns(run_dir: str | None) -> list[str]:
    """The CSV columns ``--oneshot RUN_DIR`` fills (a single-path run adds its loss and per-batch spread)."""
    if not run_dir:
        return []
    return list(SinglePathEstimator.columns) if is_singlepath_run(run_dir) else ["oneshot"]


def score_all(archs: Sequence, space: Any, table: ScoreTable | None, *, proxies: ProxyScorer | None = None,
              oneshot: Any = None, logger: Any = None, progress: Any = None, ctx: DistContext | None = None,
              poll_s: float = 0.5) -> int:
    """Score every architecture not yet in ``table``; returns how many were scored now (rank 0's count).

    Under torchrun (``ctx``) every rank calls this with the same ``archs``: ranks take architectures from a
    work queue (nas.workqueue), so each is scored once, by whichever rank is free; rank 0 alone holds
    ``table`` (None elsewhere) and appends every row, its own at once and the others' as they arrive.
    Memory stays flat over any number of architectures: each network lives for its own scoring only.
    """
    ctx = ctx or DistContext()
    todo, seen = [], set(table.done) if table is not None else set()
    for arch in archs:  # each key once: two ranks must never score the same architecture
        key = space.key(arch)
        if key not in seen:
            seen.add(key)
            todo.append((key, arch))
    columns = (table.header[1:-1] if table is not None else [])
    count = {"new": 0, "seconds": 0.0}
    own = progress is None and ctx.is_main
    if own:
        progress = bar(total=len(todo), desc="score", unit="arch")

    def write(results: list[dict]) -> None:  # rank 0: the one writer of the CSV
        for r in results:
            table.append(r["key"], r["values"], r["seconds"])
            count["new"] += 1
            count["seconds"] += r["seconds"]
            if progress is not None:
                progress.update(1)
            if logger is not None:
                logger.info("[%d/%d] %.2fs  %s", count["new"], len(todo), r["seconds"],
                            " ".join(f"{n}={r['values'][n]:.4g}" for n in columns))

    queue = WorkQueue("score", len(todo), ctx)
    while (t := queue.take()) is not None:
        key, arch = todo[t]
        vals, sec = proxies(arch) if proxies is not None else ({}, 0.0)
        if oneshot is not None:
            sc = oneshot.score(arch)
            vals["oneshot"], sec = sc.value, sec + sc.cost_seconds
            # a single-path estimate also fills its loss and per-batch spread (oneshot_neg_loss, ...)
            vals.update({k: float(v) for k, v in sc.extras.items() if isinstance(v, (int, float))})
        res = {"key": key, "values": vals, "seconds": sec}
        if ctx.is_main:
            write([res, *queue.receive()])  # the other ranks' rows too, as they come
        else:
            queue.post(res)
    queue.finish()
    if ctx.is_main:
        queue.drain(write, poll_s=poll_s)
        if own and progress is not None:
            progress.close()
        if logger is not None and count["new"]:
            logger.info("scored %d architectures, %.2f s per architecture; wrote %s", count["new"],
                        count["seconds"] / count["new"], table.path)
    return count["new"]


def select_archs(space: Any, *, file: str | None = None, sample: int | None = None, seed: int = 0,
                 every: bool = False) -> list:
    """The architectures to score: every NB201 cell (``every``), those of ``file``, or ``sample`` random ones."""
    if every:
        if space.kind != "nb201":
            raise ConfigError(f"--all enumerates NAS-Bench-201 (15,625 cells), not --space {space.name}")
        return list(space.enumerate())
    if file:
        return read_arch_file(file, space)
    if sample is None or sample <= 0:
        raise ConfigError(f"--sample must be positive, got {sample}")
    rng = random.Random(seed)
    return [space.sample(rng) for _ in range(sample)]


def score_main(args: Any) -> int:
    """zero_shot.py after parsing: score the architectures into ``--out``, resumably (under torchrun the ranks
    share the work and rank 0 writes; a refusal of the CSV stops every rank)."""
    set_quiet(args.quiet)
    log = get_logger("zero_shot", quiet=args.quiet)
    names = zs.check_measures(args.measures)
    columns = names + oneshot_columns(args.oneshot)
    if not columns:
        raise ConfigError("nothing to score: give --measures and/or --oneshot RUN_DIR")
    if args.batch_size < 2:
        raise ConfigError("--batch_size must be at least 2 (jacob_cov and relu_logdet compare samples)")
    space = get_space(args.space)
    archs = select_archs(space, file=args.archs, sample=args.sample, seed=args.seed, every=args.all)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "overwrite", "device", "threads", "archs",
                                                                  "sample", "seed", "all", "quiet")}
    settings["data_path"] = normalize_path(args.data_path)
    with distributed_job(args.device, args.threads) as ctx, contextlib.ExitStack() as stack:
        table = None

        def open_table() -> list[int]:  # rank 0: the rows still to score
            nonlocal table
            table = stack.enter_context(contextlib.closing(
                ScoreTable(args.out, arch_column="arch_str" if space.kind == "nb201" else "genotype", columns=columns,
                           settings=settings, overwrite=args.overwrite)))
            todo = [i for i, a in enumerate(archs) if space.key(a) not in table.done]
            log.info("%d architectures, %d already in %s", len(archs), len(archs) - len(todo), args.out)
            return todo

        todo = on_main(open_table, ctx)
        if todo:
            proxies, oneshot = build_scorers(args, space, names, resolve_device(ctx.device), world_size=ctx.world_size)
            if hasattr(oneshot, "close"):
                stack.enter_context(contextlib.closing(oneshot))
            score_all([archs[i] for i in todo], space, table, proxies=proxies, oneshot=oneshot, logger=log, ctx=ctx)
    return 0
