"""Training budgets as frozen data: the single source of BPE1, BPE2 and the DARTS protocol.

BPE1/BPE2 follow the BPE paper (Zheng et al., CVPR 2020, Table 4) and its ``param_setting.py``;
the fields it leaves unset (momentum, weight decay, clipping, auxiliary head, drop path) keep the
defaults of BPE's ``augment.py`` (pt.darts' AugmentConfig), which its BPE runs did not override.
Two behaviours of BPE's training loop are fields too, so that its presets reproduce it:
``scheduler_step="before"`` (its augment.py 97, 106-107 step the cosine scheduler at the start of each
epoch: the base lr is never used and the last epoch runs at lr_min) and ``reward="best"`` (its run_rl.py
298-307 score a cell by the best validation accuracy over its epochs).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass

from nas.errors import ConfigError

PRECISIONS = ("32", "16", "bf16")  # fp32 (TF32 convolutions on CUDA); half as BPE's --fp 16; bfloat16
REWARDS = ("best", "last")
SCHEDULER_STEPS = ("before", "after")
_CHOICES = {"precision": PRECISIONS, "reward": REWARDS, "scheduler_step": SCHEDULER_STEPS}  # field: allowed


@dataclass(frozen=True)
class Budget:
    """How an architecture is trained: every knob BPE varies plus the fixed protocol."""

    epochs: int
    batch_size: int
    lr: float
    layers: int
    init_channels: int
    image_size: int
    cutout_length: int
    precision: str = "32"
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    aux_weight: float = 0.4
    drop_path_prob: float = 0.2
    lr_min: float = 0.0
    scheduler_step: str = "before"  # BPE / pt.darts order; "after" is PyTorch's documented order
    reward: str = "best"  # what a budgeted estimator returns: the best epoch's accuracy (BPE) or the last

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", str(self.precision))
        self.check()

    def check(self) -> None:
        """``ConfigError`` naming the first bad field and what is allowed."""
        for name in ("epochs", "batch_size", "layers", "init_channels", "image_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"--{name} must be a positive integer, got {v!r}")
        for name in ("lr", "lr_min", "momentum", "weight_decay", "grad_clip", "aux_weight", "drop_path_prob"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"--{name} must be a finite number >= 0, got {v!r}")
        if self.lr <= 0:
            raise ConfigError(f"--lr must be positive, got {self.lr!r}")
        if self.cutout_length < 0:
            raise ConfigError(f"--cutout_length must be >= 0, got {self.cutout_length!r}")
        if self.drop_path_prob >= 1:
            raise ConfigError(f"--drop_path_prob must be below 1, got {self.drop_path_prob!r}")
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"unknown --{name} {getattr(self, name)!r}; allowed: {', '.join(allowed)}")

    def replace(self, **changes) -> Budget:
        """A copy with some fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


BPE1 = Budget(epochs=10, batch_size=128, lr=0.03, layers=6, init_channels=8, image_size=16, cutout_length=0)
BPE2 = BPE1.replace(epochs=30, layers=16, init_channels=16)
# The DARTS evaluation protocol (Liu et al. 2019), as BPE's augment.py defaults and DARTS-PT's train.py.
DARTS_EVAL = Budget(epochs=600, batch_size=96, lr=0.025, layers=20, init_channels=36, image_size=32,
                    cutout_length=16, reward="last")

PARAMS: dict[str, Budget] = {"BPE1": BPE1, "BPE2": BPE2, "DARTS": DARTS_EVAL}


def _legacy(b: Budget) -> dict:
    """BPE's own dict form (``param_BPE1['epochs']``), derived from the dataclass."""
    return {"epochs": b.epochs, "batchsize": b.batch_size, "lr": b.lr, "layers": b.layers,
            "channel": b.init_channels, "imagesize": b.image_size, "fp": int(b.precision), "cutout": b.cutout_length}


param_BPE1 = _legacy(BPE1)
param_BPE2 = _legacy(BPE2)


def get_budget(name: str) -> Budget:
    """The preset called ``name`` (case-insensitive); ConfigError lists the allowed names."""
    for key, budget in PARAMS.items():
        if key.lower() == name.lower():
            return budget
    raise ConfigError(f"unknown --param {name!r}; allowed: {', '.join(PARAMS)}")


_HELP = {"precision": "32 (fp32; TF32 convolutions on CUDA), 16 (half, BPE's --fp 16) or bf16",
         "reward": "what a budgeted estimator returns: best (BPE: best epoch's valid acc) or last",
         "scheduler_step": "before (BPE: cosine stepped at each epoch's start) or after (PyTorch's order)"}


def add_budget_args(parser: argparse.ArgumentParser, *, default: str | None = "BPE1") -> None:
    """``--param NAME`` plus one flag per Budget field; flags override the preset."""
    g = parser.add_argument_group("budget (--param preset, then any field overrides it)")
    g.add_argument("--param", default=default, help=f"budget preset: {', '.join(PARAMS)} (default {default})")
    for f in dataclasses.fields(Budget):
        if f.name in _CHOICES:
            g.add_argument(f"--{f.name}", type=str, default=None, help=_HELP[f.name])
            continue
        kind = int if f.type in ("int", int) else float
        g.add_argument(f"--{f.name}", type=kind, default=None,
                       help=argparse.SUPPRESS if f.name == "lr_min" else f"override {f.name}")
    # BPE's own spellings of two fields
    g.add_argument("--w_lr", dest="lr", type=float, default=None, help="alias of --lr (search.py's name)")
    g.add_argument("--fp", dest="precision", type=str, default=None, help="alias of --precision")


def budget_from_args(args: argparse.Namespace) -> Budget:
    """Resolve ``--param`` and the override flags into one Budget (ConfigError on a bad value)."""
    base = get_budget(args.param) if args.param else None
    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(Budget)}
    if base is None:
        missing = [k for k, v in overrides.items() if v is None and _required(k)]
        if missing:
            raise ConfigError(f"without --param, give --{' --'.join(missing)}")
        return Budget(**{k: v for k, v in overrides.items() if v is not None})
    return base.replace(**overrides)


def _required(name: str) -> bool:
    f = {f.name: f for f in dataclasses.fields(Budget)}[name]
    return f.default is dataclasses.MISSING
