"""Training budgets as frozen data: the single source of BPE1, BPE2 and the DARTS protocol.

BPE1/BPE2 follow the BPE paper (Zheng et al., CVPR 2020, Table 4) and its ``param_setting.py``;
the fields it leaves unset (momentum, weight decay, clipping, auxiliary head, drop path) keep the
defaults of BPE's ``augment.py`` (pt.darts' AugmentConfig), which its BPE runs did not override.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass


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
    precision: int = 32  # 16 -> autocast (bf16 on CPU, fp16 on CUDA)
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    aux_weight: float = 0.4
    drop_path_prob: float = 0.2
    lr_min: float = 0.0

    def replace(self, **changes) -> Budget:
        """A copy with some fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


BPE1 = Budget(epochs=10, batch_size=128, lr=0.03, layers=6, init_channels=8, image_size=16, cutout_length=0)
BPE2 = Budget(epochs=30, batch_size=128, lr=0.03, layers=16, init_channels=16, image_size=16, cutout_length=0)
# The DARTS evaluation protocol (Liu et al. 2019), as BPE's augment.py defaults and DARTS-PT's train.py.
DARTS_EVAL = Budget(epochs=600, batch_size=96, lr=0.025, layers=20, init_channels=36, image_size=32,
                    cutout_length=16)

PARAMS: dict[str, Budget] = {"BPE1": BPE1, "BPE2": BPE2, "DARTS": DARTS_EVAL}

# Legacy dict form of BPE's param_setting.py, for code that reads ``param_BPE1['epochs']``.
param_BPE1 = {"epochs": 10, "batchsize": 128, "lr": 0.03, "layers": 6, "channel": 8, "imagesize": 16,
              "fp": 32, "cutout": 0}
param_BPE2 = {"epochs": 30, "batchsize": 128, "lr": 0.03, "layers": 16, "channel": 16, "imagesize": 16,
              "fp": 32, "cutout": 0}


def get_budget(name: str) -> Budget:
    """The preset called ``name`` (case-insensitive); ValueError lists the allowed names."""
    for key, budget in PARAMS.items():
        if key.lower() == name.lower():
            return budget
    raise ValueError(f"unknown --param {name!r}; allowed: {', '.join(PARAMS)}")


def add_budget_args(parser: argparse.ArgumentParser, *, default: str | None = "BPE1") -> None:
    """``--param NAME`` plus one flag per Budget field; flags override the preset."""
    g = parser.add_argument_group("budget (--param preset, then any field overrides it)")
    g.add_argument("--param", default=default, help=f"budget preset: {', '.join(PARAMS)} (default {default})")
    for f in dataclasses.fields(Budget):
        g.add_argument(f"--{f.name}", type=type(f.default) if f.default is not dataclasses.MISSING else
                       (int if f.type in ("int", int) else float), default=None, help=argparse.SUPPRESS
                       if f.name in ("lr_min",) else f"override {f.name}")
    # BPE's own spellings of two fields
    g.add_argument("--w_lr", dest="lr", type=float, default=None, help="alias of --lr (search.py's name)")
    g.add_argument("--fp", dest="precision", type=int, default=None, help="alias of --precision")


def budget_from_args(args: argparse.Namespace) -> Budget:
    """Resolve ``--param`` and the override flags into one Budget."""
    base = get_budget(args.param) if args.param else None
    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(Budget)}
    if base is None:
        missing = [k for k, v in overrides.items() if v is None and _required(k)]
        if missing:
            raise ValueError(f"without --param, give --{' --'.join(missing)}")
        return Budget(**{k: v for k, v in overrides.items() if v is not None})
    return base.replace(**overrides)


def _required(name: str) -> bool:
    f = {f.name: f for f in dataclasses.fields(Budget)}[name]
    return f.default is dataclasses.MISSING
