"""Single-path one-shot supernet training, as aw_nas' estimator study (Ning et al., NeurIPS 2021) runs it.

aw_nas ``examples/research/surgery/nb201/deiso_plateaulr.yaml`` (/work/notes/pertnas_awnas_original.md B.1):
every training step samples ONE architecture (``mepa_samples: 1``) and trains the shared weights on the
batch with that path alone: here the NB201/DARTS supernet of ``models.supernets`` with one-hot op weights
and masks (an unsampled op is not run). Sampling (``--sampling``):

- ``deiso`` (aw_nas' preset): uniform over one representative per isomorphism class (6,466; aw_nas draws
  lines of ``non-isom5.txt``, nasbench_201.py 513-516), rejecting cells without a conv on an input->output
  path (``check_valid_arch``, 518-540): uniform over the 6,321 valid classes;
- ``uniform``: uniform over the 5^6 cells with the same rejection (aw_nas' ``deiso: false``); in the DARTS
  spaces a uniform genotype (2 inputs per node, an op each).

In the NB201 cell only the edges from input-reachable to output-reaching nodes run (aw_nas
``NB201SharedCell.forward``). SGD (lr 0.05, momentum 0.9, wd 5e-4), gradient-norm clip 5,
ReduceLROnPlateau(factor 0.5, patience 30) stepped once per epoch with the mean of the epoch's per-step
training losses (aw_nas steps it at the next epoch's start with the same value, mepa.py 856-858, 896-902),
batch 512 from the first 80% of the training split, 1,400 epochs. ``unused_grads="zero"`` reproduces
torch<1.5's ``zero_grad()`` (aw_nas requires torch<1.5): a parameter that ever had a gradient keeps a zero
one, so weight decay and momentum move the weights of unsampled ops every step; ``"none"`` skips them.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from genotypes import nb201_ops
from models.supernets import Supernet
from nas.checkpoint import (
    find_checkpoint,
    get_rng_state,
    load_checkpoint,
    python_rng_from_list,
    python_rng_to_list,
    save_checkpoint,
    set_rng_state,
)
from nas.data import TensorLoader, load_dataset
from nas.errors import ConfigError, NASError
from nas.io import atomic_write_json, log_to_file, read_json, run_metadata
from nas.nb201_iso import check_valid_arch, deiso_list, live_edges
from nas.rundir import CONFIG, RunFolder, config_record
from nas.seeds import child_seed
from nas.spaces import edge_index, get_space
from nas.supernet.search import build_supernet
from nas.train import train_epoch

log = logging.getLogger(__name__)

SAMPLINGS = ("deiso", "uniform")
UNUSED_GRADS = ("zero", "none")


@dataclass(frozen=True)
class SinglePathConfig:
    """Everything that decides a single-path training run (aw_nas' NB201 settings by default)."""

    space: str = "nb201"
    sampling: str = "deiso"
    check_valid: bool = True
    dataset: str = "cifar10"
    data_path: str = "data/"
    train_portion: float = 0.8  # aw_nas data_portion [0, 0.8, 0.2]: train on [0, 0.8), derive on [0.8, 1)
    limit_train: int | None = None
    limit_valid: int | None = None
    image_size: int = 32
    epochs: int = 1400
    batch_size: int = 512
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float = 5.0
    plateau_factor: float = 0.5
    plateau_patience: int = 30
    init_channels: int = 16
    layers: int = 5  # NB201: cells per stage (5 -> aw_nas' 17 layers = 5+1+5+1+5); DARTS: cells
    dropout: float = 0.1
    unused_grads: str = "zero"
    seed: int = 0

    def check(self) -> None:
        """ConfigError naming the bad field and the allowed values."""
        sp = get_space(self.space)
        for name, allowed in (("sampling", SAMPLINGS), ("unused_grads", UNUSED_GRADS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"unknown --{name} {getattr(self, name)!r}; allowed: {', '.join(allowed)}")
        if self.sampling == "deiso" and sp.kind != "nb201":
            raise ConfigError(f"--sampling deiso needs --space nb201, not {self.space!r}; allowed here: uniform")
        for name in ("epochs", "batch_size", "layers", "init_channels", "image_size", "plateau_patience"):
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0:
                raise ConfigError(f"--{name} must be a positive integer, got {v!r}")
        if not 0.0 < self.train_portion < 1.0:
            raise ConfigError(f"--train_portion must be in (0, 1), got {self.train_portion!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout!r}")


# ============================================================================= paths


class PathSampler:
    """One architecture per training step (see the module doc), from its own seeded Python RNG."""

    def __init__(self, cfg: SinglePathConfig):
        self.space = get_space(cfg.space)
        self.sampling, self.check_valid = cfg.sampling, cfg.check_valid
        self.rng = random.Random(child_seed(cfg.seed, "paths"))
        self.reps = deiso_list() if cfg.sampling == "deiso" else None

    def sample(self) -> Any:
        while True:  # rejection as aw_nas' NasBench201RSController.sample (609-623)
            if self.reps is not None:
                arch = self.reps[self.rng.randrange(len(self.reps))]
            else:
                arch = self.space.sample(self.rng)
            if self.space.kind != "nb201" or not self.check_valid or check_valid_arch(arch):
                return arch


def subnet_weights(model: Supernet, arch: Any) -> dict[str, torch.Tensor]:
    """One-hot op weights per cell type selecting ``arch`` in ``model`` (all other ops and edges off)."""
    out: dict[str, torch.Tensor] = {}
    if model.kind == "nb201":
        picks = {"cell": list(enumerate(nb201_ops(arch)))}  # NB201 edge order is the arch string's order
    else:
        picks = {ct: [(edge_index(node, src), op) for node, pairs in enumerate(getattr(arch, ct))
                      for op, src in pairs] for ct in model.cell_types}
    for ct in model.cell_types:
        w = torch.zeros(model.n_edges, model.n_ops)
        for e, op in picks[ct]:
            cands = model.edge_ops[ct][e]
            if op not in cands:
                raise ValueError(f"op {op!r} is not a candidate of {ct} edge {e} in this supernet; "
                                 f"allowed: {', '.join(cands)}")
            w[e, cands.index(op)] = 1.0
        out[ct] = w
    return out


def path_of(model: Supernet, arch: Any, device: torch.device | str = "cpu"
            ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(op weights on ``device``, masks on the CPU) that make ``model`` compute ``arch`` alone; in the NB201
    cell the edges aw_nas does not run (not on an input->output path) are masked too."""
    w = subnet_weights(model, arch)
    if model.kind == "nb201":
        live = torch.tensor(live_edges(arch)).unsqueeze(1)
        w["cell"] = w["cell"] * live
    masks = {ct: t > 0 for ct, t in w.items()}
    return {ct: t.to(device) for ct, t in w.items()}, masks


class SinglePathForward(nn.Module):
    """``model`` restricted to the current path: what the one training loop calls as ``model(x)``.

    ``record_loss`` keeps each step's mean loss (the plateau scheduler's input is their unweighted mean,
    as aw_nas' ``np.mean`` over steps) without a host sync per step.
    """

    def __init__(self, model: Supernet, unused_grads: str = "none"):
        super().__init__()
        self.model = model
        self.unused_grads = unused_grads
        self.weights: dict[str, torch.Tensor] | None = None
        self.masks: dict[str, torch.Tensor] | None = None
        self.target: torch.Tensor | None = None
        self.step_losses: list[torch.Tensor] = []
        self.params = model.weights()
        self.used = [False] * len(self.params)  # torch<1.5 zero_grad(): once a grad, always a (zero) grad

    def set_path(self, arch: Any, target: torch.Tensor | None = None) -> None:
        dev = next(self.model.parameters()).device
        self.weights, self.masks = path_of(self.model, arch, dev)
        self.target = target

    def mark_used(self) -> None:
        """Called before each step's zero_grad: the parameters that got a gradient so far."""
        for i, p in enumerate(self.params):
            if p.grad is not None:
                self.used[i] = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.unused_grads == "zero":
            for i, p in enumerate(self.params):
                if self.used[i] and p.grad is None:
                    p.grad = torch.zeros_like(p)
        logits = self.model(x, self.masks, self.weights)
        if self.training and self.target is not None:
            self.step_losses.append(F.cross_entropy(logits.detach().float(), self.target))
        return logits


def build_singlepath_model(cfg: SinglePathConfig, n_classes: int, in_channels: int, device: torch.device
                           ) -> Supernet:
    """The supernet of ``cfg`` (weights initialised from the run's seed)."""
    torch.manual_seed(child_seed(cfg.seed, "init"))
    return build_supernet(cfg.space, C=cfg.init_channels, layers=cfg.layers, n_classes=n_classes,
                          in_channels=in_channels, dropout=cfg.dropout).to(device)


def load_singlepath_data(cfg: SinglePathConfig, **overrides: Any) -> Any:
    """Training part (first ``train_portion``) and derive part (the rest) of the training split."""
    return load_dataset(cfg.dataset, overrides.get("data_path") or cfg.data_path, image_size=cfg.image_size,
                        valid=cfg.train_portion, limit_train=cfg.limit_train,
                        limit_valid=overrides.get("limit_valid", cfg.limit_valid))


def is_singlepath_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` was written by train_oneshot.py (rather than search.py)."""
    p, cfg = Path(run_dir) / "checkpoint.pt", Path(run_dir) / CONFIG
    if not p.is_file():
        return False
    saved = read_json(cfg) if cfg.is_file() else load_checkpoint(p)  # the small file when it is there
    return isinstance(saved, dict) and saved.get("trainer") == "singlepath"


def load_singlepath(run_dir: str | Path, *, epoch: int | None = None, device: torch.device | str = "cpu"
                    ) -> tuple[SinglePathConfig, dict]:
    """Config and checkpoint state of a single-path run (``epoch``: checkpoint_<E>.pt)."""
    # the last epoch is in checkpoint.pt whatever --save_every was
    state = load_checkpoint(find_checkpoint(Path(run_dir), epoch), map_location=device)
    fields = {f.name for f in dataclasses.fields(SinglePathConfig)}
    return SinglePathConfig(**{k: v for k, v in state["config"].items() if k in fields}), state


# ============================================================================= training


def run_singlepath(cfg: SinglePathConfig, run_dir: str | Path, *, device: torch.device, data=None,
                   overwrite: bool = False, save_every: int = 50, logger: logging.Logger | None = None,
                   max_steps: int | None = None, on_epoch: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train (or continue training) into ``run_dir``: checkpoint.pt with the history every epoch,
    checkpoint_<E>.pt every ``save_every`` epochs, oneshot.json; rerunning continues."""
    cfg.check()
    logger = logger or log
    started = time.time()
    folder = RunFolder(run_dir, {"trainer": "singlepath", **config_record(cfg)}, ignore=("epochs", "data_path"),
                       what=f"single-path run {run_dir}")
    with folder:
        folder.open(overwrite=overwrite)
        with log_to_file(logger, folder.path / "oneshot.log"):
            return _train(cfg, folder.path, device=device, data=data, save_every=save_every, logger=logger,
                          max_steps=max_steps, on_epoch=on_epoch, started=started)


def _train(cfg, run_dir: Path, *, device, data, save_every, logger, max_steps, on_epoch, started) -> dict[str, Any]:
    data = data if data is not None else load_singlepath_data(cfg)
    model = build_singlepath_model(cfg, data.n_classes, data.in_channels, device)
    net = SinglePathForward(model, cfg.unused_grads)
    optimizer = torch.optim.SGD(model.weights(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=cfg.plateau_factor,
                                                           patience=cfg.plateau_patience)
    sampler = PathSampler(cfg)
    loader = TensorLoader(data.train_x, data.train_y, batch_size=cfg.batch_size, shuffle=True, augment=True,
                          mean=data.mean, std=data.std, device=device, seed=child_seed(cfg.seed, "batches"))
    history: list[dict[str, Any]] = []
    start = 0
    latest = run_dir / "checkpoint.pt"
    if latest.is_file():
        state = load_checkpoint(latest, map_location=device)
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"])
            sampler.rng = python_rng_from_list(state["sampler_rng"])
            net.used = list(state["used"])
            history, start = list(state["history"]), int(state["epoch"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise NASError(f"{latest}: checkpoint does not fit this run ({type(exc).__name__}: {exc}); "
                           "use --overwrite or another folder") from None
        logger.info("resuming %s after epoch %d", run_dir, start)
    logger.info("single-path supernet %s (%s sampling): %.3fM weights, %d train images, %d epochs", cfg.space,
                cfg.sampling, sum(p.numel() for p in model.weights()) / 1e6, len(data.train_y), cfg.epochs)

    def before_step(x: torch.Tensor, y: torch.Tensor) -> None:
        net.mark_used()
        net.set_path(sampler.sample(), y)

    for epoch in range(start, cfg.epochs):
        loader.set_epoch(epoch)
        net.step_losses = []
        lr = optimizer.param_groups[0]["lr"]
        tr = train_epoch(net, loader, optimizer, grad_clip=cfg.grad_clip, params=model.weights(),
                         max_steps=max_steps, before_step=before_step)
        net.mark_used()  # the last step's gradients count too: a resumed run has none left to look at
        mean_loss = torch.stack(net.step_losses).mean().item()
        scheduler.step(mean_loss)  # = aw_nas' step at the next epoch's start with this epoch's losses
        history.append({"epoch": epoch, "lr": lr, "train_loss": mean_loss, "train_acc": tr["acc"],
                        "seconds": round(tr["seconds"], 2), "images_per_s": round(tr["n"] / tr["seconds"], 1)})
        logger.info("epoch %d/%d lr %.5f loss %.4f acc %.2f%% %.1f img/s", epoch + 1, cfg.epochs, lr, mean_loss,
                    tr["acc"], tr["n"] / tr["seconds"])
        ckpt = {"trainer": "singlepath", "epoch": epoch + 1, "config": dataclasses.asdict(cfg),
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": get_rng_state(), "sampler_rng": python_rng_to_list(sampler.rng), "used": list(net.used),
                "history": history}
        save_checkpoint(latest, ckpt)
        if save_every and (epoch + 1) % save_every == 0:
            save_checkpoint(run_dir / f"checkpoint_{epoch + 1}.pt", ckpt)
        if on_epoch is not None:
            on_epoch(epoch)
    rec = {"trainer": "singlepath", "space": cfg.space, "sampling": cfg.sampling, "epochs_done": len(history),
           "finished": len(history) >= cfg.epochs, "history": history,
           "run_metadata": run_metadata(cfg, seed=cfg.seed, started=started) | {"device": str(device)}}
    atomic_write_json(run_dir / "oneshot.json", rec)
    return rec
