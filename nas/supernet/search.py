"""Supernet search: DARTS (first or second order), DARTS-PT's 'blank', on S1-S5, the DARTS space or NAS-Bench-201.

Two protocols, each its paper's code:

- ``dartspt`` (DARTS-PT, ``sota/cnn/train_search.py`` and ``nasbench201/train_search.py``): the training
  split is cut in two (``train_portion`` 0.5); each step first updates the alphas on a batch of the
  second half (first order, ``nas.supernet.architect``), then the weights on a batch of the first half
  (SGD, cosine to 0.001 stepped after each epoch, gradient clipping 5). The argmax cell of the last epoch
  is reported, ranked by softmax weights.
- ``bpe`` (BPE's search.py = pt.darts): the same split and optimisers, but DARTS' second-order step
  always, the ``darts`` space with ``'none'``, the cosine scheduler stepped at the start of each epoch
  (its search.py 85-86), the genotype parsed from the raw alphas (pt.darts ``parse``) and the genotype of
  the epoch with the best validation accuracy reported (its search.py 113-123).

Every epoch the history (with the alphas) and the checkpoint are written together: the checkpoint
holds the history, so a kill between the two writes loses nothing.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
from torch.utils.tensorboard import SummaryWriter

from models.supernets import DartsSupernet, NB201Supernet, Supernet
from nas.benchmarks import BenchmarkReport
from nas.checkpoint import ckpt_name, find_checkpoint, get_rng_state, load_checkpoint, save_checkpoint, set_rng_state
from nas.data import TensorLoader, load_dataset
from nas.errors import ConfigError, NASError
from nas.io import atomic_write_json, log_to_file, read_json, run_metadata
from nas.progress import bar
from nas.rundir import RunFolder, config_record
from nas.seeds import child_seed
from nas.spaces import get_space
from nas.supernet.architect import Architect
from nas.supernet.sdarts import METHODS as SDARTS_METHODS
from nas.supernet.sdarts import SDartsPerturbation, epsilon_at, make_perturbation
from nas.train import epoch_lr, evaluate, train_epoch

log = logging.getLogger(__name__)

METHODS = ("darts", "blank", *SDARTS_METHODS)  # sdarts-*: nas.supernet.sdarts
PROTOCOLS = ("dartspt", "bpe")


@dataclass(frozen=True)
class SearchConfig:
    """Everything that decides a search run (written to config.json and checked on resume)."""

    space: str = "s5"
    method: str = "darts"
    protocol: str = "dartspt"
    unrolled: bool = False
    dataset: str = "cifar10"
    data_path: str = "data/"
    train_portion: float = 0.5
    limit_train: int | None = None
    limit_valid: int | None = None
    epochs: int = 50
    batch_size: int = 64
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    alpha_lr: float = 3e-4
    alpha_weight_decay: float = 1e-3
    layers: int = 8
    init_channels: int = 16
    image_size: int = 32
    cutout_length: int = 0
    seed: int = 2
    scheduler_step: str = "after"  # "before": BPE/pt.darts (epoch e uses the cosine value of e + 1)
    genotype_rank: str = "weights"  # "alphas": pt.darts' parse of the raw alphas (BPE)
    report: str = "last"  # "best": the genotype of the epoch with the best validation accuracy (BPE)
    epsilon_alpha: float = 0.3  # SDARTS' largest perturbation (DARTS-PT --epsilon_alpha)

    @classmethod
    def for_protocol(cls, protocol: str, **fields: Any) -> SearchConfig:
        """The protocol's defaults, then ``fields`` (None values ignored)."""
        if protocol not in PROTOCOLS:
            raise ConfigError(f"unknown --protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)}")
        base: dict[str, Any] = {"protocol": protocol}
        if protocol == "bpe":
            base.update(space="darts", unrolled=True, scheduler_step="before", genotype_rank="alphas", report="best")
        base.update({k: v for k, v in fields.items() if v is not None})
        return cls(**base)

    def check(self) -> None:
        """ConfigError naming the bad field and the allowed values."""
        get_space(self.space)
        if self.method not in METHODS:
            raise ConfigError(f"unknown --method {self.method!r}; allowed: {', '.join(METHODS)}")
        if self.unrolled and self.method != "darts":
            raise ConfigError("--unrolled applies to --method darts only")
        for name in ("epochs", "batch_size", "layers", "init_channels", "image_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0:
                raise ConfigError(f"--{name} must be a positive integer, got {v!r}")
        for name in ("lr", "alpha_lr"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and v < float("inf")):
                raise ConfigError(f"--{name} must be a positive finite number, got {v!r}")
        if not 0.0 < self.train_portion < 1.0:
            raise ConfigError(f"--train_portion must be in (0, 1), got {self.train_portion!r}")
        if not 0.0 <= self.epsilon_alpha < float("inf"):
            raise ConfigError(f"--epsilon_alpha must be a finite number >= 0, got {self.epsilon_alpha!r}")
        for name, allowed in (("scheduler_step", ("before", "after")), ("genotype_rank", ("weights", "alphas")),
                              ("report", ("last", "best")), ("protocol", PROTOCOLS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"unknown {name} {getattr(self, name)!r}; allowed: {', '.join(allowed)}")

    def lr_at(self, epoch: int) -> float:
        """The weight learning rate of ``epoch`` (cosine to ``lr_min``; see ``scheduler_step``)."""
        return epoch_lr(self, epoch)


# ============================================================================= the pieces


def build_supernet(space: str, *, C: int, layers: int, n_classes: int, in_channels: int = 3,
                   dropout: float = 0.0) -> Supernet:
    """``nb201`` (``layers`` = cells per stage) or a DARTS space (``layers`` = cells), candidates from nas.spaces;
    ``dropout`` before NB201's classifier (aw_nas' single-path preset)."""
    sp = get_space(space)
    if sp.kind == "nb201":
        return NB201Supernet(C=C, N=layers, n_classes=n_classes, in_channels=in_channels, dropout=dropout)
    return DartsSupernet(sp.supernet_ops, C=C, layers=layers, n_classes=n_classes, in_channels=in_channels)


def build_search_model(cfg: SearchConfig, n_classes: int, in_channels: int, device: torch.device) -> Supernet:
    """The supernet of ``cfg`` with DARTS' alpha initialisation, 1e-3 * randn, for 'blank' too: DARTS-PT's
    blank supernet keeps those near-uniform alphas fixed, so its argmax cell is a random cell, not all 'none'."""
    torch.manual_seed(cfg.seed)
    model = build_supernet(cfg.space, C=cfg.init_channels, layers=cfg.layers, n_classes=n_classes,
                           in_channels=in_channels)
    with torch.no_grad():
        for a in model.alphas():
            a.normal_(0.0, 1e-3)
    return model.to(device)


def load_search_data(cfg: SearchConfig) -> Any:
    """The weight half and the alpha half of the training split (DARTS' ``train_portion``)."""
    return load_dataset(cfg.dataset, cfg.data_path, image_size=cfg.image_size, valid=cfg.train_portion,
                        limit_train=cfg.limit_train, limit_valid=cfg.limit_valid)


@dataclass
class SearchLoaders:
    """Weight half (augmented), alpha half (augmented, also DARTS-PT's projection queue), alpha half clean."""

    train: TensorLoader
    valid: TensorLoader
    valid_eval: TensorLoader


def make_loaders(data, *, batch_size: int, device: torch.device, seed: int, cutout: int = 0,
                 channels_last: bool = False) -> SearchLoaders:
    """Both halves with the training augmentation, as DARTS-PT builds both queues from ``train_data``."""
    common = dict(mean=data.mean, std=data.std, device=device, channels_last=channels_last)
    train = TensorLoader(data.train_x, data.train_y, batch_size=batch_size, shuffle=True, augment=True,
                         cutout=cutout, seed=child_seed(seed, "weights"), **common)
    valid = TensorLoader(data.valid_x, data.valid_y, batch_size=batch_size, shuffle=True, augment=True,
                         cutout=cutout, seed=child_seed(seed, "alphas"), **common)
    valid_eval = TensorLoader(data.valid_x, data.valid_y, batch_size=max(batch_size, 256), shuffle=False,
                              augment=False, **common)
    return SearchLoaders(train, valid, valid_eval)


def _cycle(loader, key: int) -> Iterator:
    """Endless batches of ``loader``, reshuffled per pass, deterministic in (loader seed, key, pass)."""
    for k in itertools.count():
        loader.set_epoch(child_seed(key, "pass", k))
        yield from loader


def search_epoch(model: Supernet, architect: Architect, w_optim: torch.optim.Optimizer, train_loader: Iterable,
                 valid_loader: Iterable, *, epoch: int, lr: float, grad_clip: float = 5.0,
                 max_steps: int | None = None, perturb: SDartsPerturbation | None = None) -> dict[str, float]:
    """One epoch: per step an alpha update on a valid batch, then a weight update on a train batch
    (with ``perturb``: on SDARTS-perturbed op weights drawn after the alpha update)."""
    train_loader.set_epoch(epoch)
    valid_iter = _cycle(valid_loader, epoch)

    def arch_step(x: torch.Tensor, y: torch.Tensor) -> None:
        vx, vy = next(valid_iter)
        architect.step(x, y, vx, vy, lr=lr, w_optim=w_optim)
        if perturb is not None:
            perturb.prepare(x, y)

    # the weight step is the toolkit's one training loop, with the alpha update hooked in before it
    stats = train_epoch(perturb if perturb is not None else model, train_loader, w_optim, grad_clip=grad_clip,
                        params=model.weights(), max_steps=max_steps, before_step=arch_step)
    stats["images_per_s"] = stats["n"] / max(stats["seconds"], 1e-9)
    return stats


def alphas_dict(model: Supernet) -> dict[str, list[list[float]]]:
    """Alphas per cell type as nested lists (for JSON)."""
    return {ct: [[round(v, 6) for v in row] for row in model.alpha(ct).detach().cpu().tolist()]
            for ct in model.cell_types}


def config_of(state: dict) -> SearchConfig:
    """The SearchConfig a checkpoint was made with (fields of older versions keep their defaults)."""
    fields = {f.name for f in dataclasses.fields(SearchConfig)}
    saved = state.get("config")
    if not isinstance(saved, dict):
        raise NASError("checkpoint without its search config (not written by search.py?)")
    return SearchConfig(**{k: v for k, v in saved.items() if k in fields})


def load_search(run_dir: str | Path, *, epoch: int | None, device: torch.device) -> tuple[SearchConfig, dict]:
    """The config and checkpoint state of a search run (for project.py and the one-shot estimator)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise NASError(f"{run_dir}: no such search directory")
    state = load_checkpoint(find_checkpoint(run_dir, epoch), map_location=device)
    return config_of(state), state


# ============================================================================= the run


def run_search(cfg: SearchConfig, run_dir: str | Path, *, device: torch.device, data=None,
               resume_epoch: int | None = None, overwrite: bool = False, ckpt_interval: int = 0,
               report: BenchmarkReport | None = None, logger: logging.Logger | None = None, tensorboard: bool = True,
               channels_last: bool = False, max_steps: int | None = None, log_file: str | None = "search.log",
               on_epoch: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Search (or continue searching) into ``run_dir``; returns the search.json record.

    The run folder follows ``nas.rundir``: locked, its config.json compared on resume (``epochs`` and
    ``data_path`` may change: a longer search continues), ``overwrite`` starts over. Every epoch writes
    ``checkpoint.pt`` (and ``checkpoint_<e>.pt`` every ``ckpt_interval`` epochs) and ``search.json``.
    """
    cfg.check()
    logger = logger or log
    report = report or BenchmarkReport()
    started = time.time()
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir, config_record(cfg), ignore=("epochs", "data_path"), what=f"search run {run_dir}")
    try:
        folder.open(overwrite=overwrite and resume_epoch is None, write_config=False)
        with log_to_file(logger, run_dir / log_file if log_file else None):
            return _search(cfg, folder, device=device, data=data, resume_epoch=resume_epoch,
                           ckpt_interval=ckpt_interval, report=report, logger=logger, tensorboard=tensorboard,
                           channels_last=channels_last, max_steps=max_steps, on_epoch=on_epoch, started=started)
    finally:
        folder.close()


def _search(cfg: SearchConfig, folder: RunFolder, *, device, data, resume_epoch, ckpt_interval, report, logger,
            tensorboard, channels_last, max_steps, on_epoch, started) -> dict[str, Any]:
    run_dir = folder.path
    latest = run_dir / ckpt_name(None)
    state = load_checkpoint(find_checkpoint(run_dir, resume_epoch)) if resume_epoch is not None or latest.is_file() \
        else None
    atomic_write_json(folder.config_path, config_record(cfg))
    data = data if data is not None else load_search_data(cfg)
    model = build_search_model(cfg, data.n_classes, data.in_channels, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    w_optim = torch.optim.SGD(model.weights(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    architect = Architect(model, method=cfg.method, unrolled=cfg.unrolled, lr=cfg.alpha_lr,
                          weight_decay=cfg.alpha_weight_decay, w_momentum=cfg.momentum,
                          w_weight_decay=cfg.weight_decay)
    loaders = make_loaders(data, batch_size=cfg.batch_size, device=device, seed=cfg.seed, cutout=cfg.cutout_length,
                           channels_last=channels_last)
    perturb = make_perturbation(cfg.method, model, cfg.epsilon_alpha)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            w_optim.load_state_dict(state["w_optim"])
            architect.optimizer.load_state_dict(state["alpha_optim"])
            set_rng_state(state["rng"])
            start_epoch = int(state["epoch"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise NASError(f"{run_dir}: checkpoint does not fit this search ({type(exc).__name__}: {exc}); "
                           "use --overwrite or another name") from None
        if "history" in state:
            history = [h for h in state["history"] if h["epoch"] < start_epoch]
        elif (run_dir / "search.json").is_file():  # checkpoints of older versions kept it only there
            history = [h for h in read_json(run_dir / "search.json").get("history", []) if h["epoch"] < start_epoch]
        logger.info("resuming %s after epoch %d", run_dir, start_epoch)
    writer = SummaryWriter(str(run_dir / "tb"), purge_step=start_epoch) if tensorboard else None
    n_w = sum(p.numel() for p in model.weights())
    logger.info("supernet %s (%s, %s protocol%s): %.3fM weights, %d train / %d alpha images, %d epochs", cfg.space,
                cfg.method, cfg.protocol, ", second order" if cfg.unrolled else "", n_w / 1e6, len(data.train_y),
                len(data.valid_y), cfg.epochs)

    def arch_of() -> str:
        return str(model.genotype(rank_by=cfg.genotype_rank))

    def record(done: int) -> dict[str, Any]:
        pick = history[-1] if history else None
        if cfg.report == "best" and history:
            pick = max(history, key=lambda h: h["valid_acc"])  # earliest best epoch, as BPE's strict '<'
        arch = pick["genotype"] if pick else arch_of()
        return {"genotype": arch, "genotype_epoch": pick["epoch"] + 1 if pick else None,
                "last_genotype": arch_of(), "report": cfg.report, "space": cfg.space, "method": cfg.method,
                "protocol": cfg.protocol, "epochs_done": done, "finished": done >= cfg.epochs,
                **report.fields(arch), "history": history,
                "run_metadata": run_metadata(cfg, seed=cfg.seed, started=started) | {"device": str(device)}}

    rec = None  # built after an epoch (the untrained cell is never looked up in a benchmark)
    pbar = bar(total=cfg.epochs, initial=start_epoch, desc=f"search {run_dir.name}", unit="epoch")
    for epoch in range(start_epoch, cfg.epochs):
        lr = cfg.lr_at(epoch)
        for g in w_optim.param_groups:
            g["lr"] = lr
        if perturb is not None:
            perturb.eps = epsilon_at(epoch, cfg.epochs, cfg.epsilon_alpha)
        tr = search_epoch(model, architect, w_optim, loaders.train, loaders.valid, epoch=epoch, lr=lr,
                          grad_clip=cfg.grad_clip, max_steps=max_steps, perturb=perturb)
        va = evaluate(model, loaders.valid_eval)
        arch = arch_of()
        entry = {"epoch": epoch, "lr": lr, "train_loss": tr["loss"], "train_acc": tr["acc"],
                 "valid_loss": va["loss"], "valid_acc": va["acc"], "seconds": round(tr["seconds"], 2),
                 "images_per_s": round(tr["images_per_s"], 1), "genotype": arch, **report.fields(arch),
                 "alphas": alphas_dict(model)}
        history.append(entry)
        ckpt = {"epoch": epoch + 1, "config": dataclasses.asdict(cfg), "model": model.state_dict(),
                "w_optim": w_optim.state_dict(), "alpha_optim": architect.optimizer.state_dict(),
                "rng": get_rng_state(), "history": history}
        save_checkpoint(latest, ckpt)  # the history travels in the checkpoint: no epoch can be lost
        if ckpt_interval and (epoch + 1) % ckpt_interval == 0:
            save_checkpoint(run_dir / ckpt_name(epoch + 1), ckpt)
        rec = record(epoch + 1)
        atomic_write_json(run_dir / "search.json", rec)
        # reported after it is saved: a logged epoch is never trained again
        logger.info("epoch %d/%d lr %.4f train %.3f/%.2f%% valid %.3f/%.2f%% %.1f img/s%s | %s", epoch + 1,
                    cfg.epochs, lr, tr["loss"], tr["acc"], va["loss"], va["acc"], tr["images_per_s"],
                    report.text(arch), arch)
        if writer is not None:
            _log_epoch(writer, model, entry, epoch + 1)
        if pbar is not None:
            pbar.set_postfix(valid_acc=f"{va['acc']:.2f}%", refresh=False)
            pbar.update()
        if on_epoch is not None:
            on_epoch(epoch)
    if pbar is not None:
        pbar.close()
    if rec is None:  # nothing left to train: the record of the finished (or zero-epoch) search
        rec = record(start_epoch)
        atomic_write_json(run_dir / "search.json", rec)
    if writer is not None:
        writer.close()
    logger.info("genotype = %s%s", rec["genotype"],
                f" (epoch {rec['genotype_epoch']}, best validation accuracy)" if cfg.report == "best" else "")
    return rec


def _log_epoch(writer: SummaryWriter, model: Supernet, entry: dict[str, Any], step: int) -> None:
    """Losses, accuracies, table accuracies and every alpha (``alpha/<cell>/edge<e>/<op>``), epochs from 1."""
    for k in ("train_loss", "valid_loss", "train_acc", "valid_acc", "lr"):
        writer.add_scalar(f"search/{k}", entry[k], step)
    for k, v in entry.items():
        if k.startswith("bench_") and v is not None:
            writer.add_scalar(f"benchmark/{k[6:]}", v, step)
    for ct in model.cell_types:
        probs = model.softmax(ct).detach().cpu()
        for e, ops in enumerate(model.edge_ops[ct]):
            writer.add_scalars(f"alpha/{ct}/edge{e:02d}", {op: float(probs[e, k]) for k, op in enumerate(ops)}, step)
    writer.flush()
