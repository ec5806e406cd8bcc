"""Single-path one-shot supernet training (aw_nas' estimator study: one sampled architecture per step).

    python train_oneshot.py --save experiments/oneshot-nb201-0 --data_path data/      # aw_nas' NB201 preset
    python train_oneshot.py --save runs/toy --dataset folder --data_path /work/cifar10 --image_size 16 \\
        --init_channels 8 --layers 1 --limit_train 4000 --limit_valid 1000 --epochs 3 --batch_size 128
    python zero_shot.py --space nb201 --all --measures --oneshot experiments/oneshot-nb201-0 --out oneshot.csv

The preset (``--preset awnas``) is aw_nas' ``nb201/deiso_plateaulr.yaml``: NB201 supernet of 17 layers
(5 cells, residual block, 5, residual block, 5; cell BN affine=False), 16 channels, dropout 0.1, batch 512
from the first 80% of the training split, SGD 0.05/0.9/5e-4, clip 5, ReduceLROnPlateau(0.5, 30) on the
epoch's mean training loss, 1,400 epochs, ``--sampling deiso`` (uniform over the valid isomorphism classes;
``uniform``: over all cells, same validity filter). Every flag overrides the preset. Writes checkpoint.pt
(every epoch, with the history), checkpoint_<E>.pt every --save_every epochs, oneshot.json, oneshot.log;
rerunning the same command continues.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Sequence

from nas.cli import add_runtime_args, get_logger, run_cli, setup_threads
from nas.device import resolve_device
from nas.supernet.singlepath import SAMPLINGS, UNUSED_GRADS, SinglePathConfig, run_singlepath

PRESETS = {"awnas": SinglePathConfig()}  # the dataclass defaults are aw_nas' NB201 settings
HELP = {
    "space": "nb201 (default) or a DARTS space (darts, s1..s5) for NB301-style studies",
    "sampling": f"{' or '.join(SAMPLINGS)}: path sampling (aw_nas: deiso); DARTS spaces: uniform",
    "check_valid": "reject cells without a conv on an input->output path (aw_nas check_valid_arch; NB201 only)",
    "train_portion": "train on the first part of the training split, derive on the rest (aw_nas 0.8)",
    "layers": "NB201: cells per stage (5 = aw_nas' 17 layers); DARTS: cells",
    "unused_grads": f"{' or '.join(UNUSED_GRADS)}: zero = torch<1.5 zero_grad() as aw_nas ran (weight decay and "
                    "momentum keep moving unsampled ops); none = only the sampled path steps",
    "plateau_patience": "ReduceLROnPlateau patience in epochs (aw_nas 30)",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train_oneshot.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--save", required=True, help="run folder")
    p.add_argument("--preset", default="awnas", choices=sorted(PRESETS), help="settings to start from")
    for f in dataclasses.fields(SinglePathConfig):
        kind = type(f.default) if f.default is not None else (float if f.name == "train_portion" else int)
        if kind is bool:
            p.add_argument(f"--{f.name}", action=argparse.BooleanOptionalAction, default=None, help=HELP.get(f.name))
        else:
            p.add_argument(f"--{f.name}", type=kind, default=None,
                           help=f"{HELP.get(f.name, '')} (preset: {f.default})".strip())
    p.add_argument("--save_every", type=int, default=50, help="keep checkpoint_<E>.pt every N epochs (aw_nas 50)")
    p.add_argument("--max_steps", type=int, default=None, help="stop each epoch after N steps (smoke tests)")
    p.add_argument("--overwrite", action="store_true", help="start over in an existing run folder")
    add_runtime_args(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(SinglePathConfig)
             if getattr(args, f.name) is not None}
    cfg = dataclasses.replace(PRESETS[args.preset], **given)
    cfg.check()
    device = resolve_device(args.device)
    setup_threads(args.threads)
    logger = get_logger("train_oneshot")
    logger.info("%s", cfg)
    run_singlepath(cfg, args.save, device=device, overwrite=args.overwrite, save_every=args.save_every,
                   logger=logger, max_steps=args.max_steps)
    print(f"run folder: {args.save}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
