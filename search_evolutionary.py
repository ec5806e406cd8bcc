"""PertNAS population search: members value every op of every edge by perturb-val, then one cell is chosen.

    torchrun --nnodes=1 --nproc_per_node=4 search_evolutionary.py --seed 2 --save ./ --note evolutionary \
        --npop 4 --distributed --cluster local --train_path <folder with cifar_train.beton, cifar_test.beton>

By default (as PertNAS) the members' 14 x ops valuation matrices are averaged across ranks and the cell
is selected once, on rank 0; ``--population independent`` lets each member select its own cell and
reports the best. Without ffcv or --train_path the toolkit's loader reads --dataset/--data_path (the
test split validates, as PertNAS). Rerunning the same command resumes at the last decision.
Logic: nas/pertnas/ (search.py: decisions, population.py: members and sharing, run.py: the run).
"""

from __future__ import annotations

import argparse
import os
from typing import Sequence

from nas.cli import add_runtime_args, run_cli
from nas.data import add_data_args
from nas.pertnas.run import POPULATIONS, search_main
from nas.pertnas.search import OP_LISTS, RESTORE_MODES


def build_parser() -> argparse.ArgumentParser:
    """PertNAS' flags (SE 44-68) plus the toolkit's data, resume and scoring flags."""
    p = argparse.ArgumentParser(description="PertNAS: discrete perturbation population search (torchrun)")
    p.add_argument("--seed", type=int, default=2, help="run seed: members' initial ops and training (default 2)")
    p.add_argument("--save", default="./", help="parent folder; the run goes to SAVE/search-NOTE (default ./)")
    p.add_argument("--note", default="try", help="run name (default %(default)s)")
    p.add_argument("--npop", type=int, default=4, help="population size, spread over the ranks (default 4)")
    p.add_argument("--population", default="shared", choices=POPULATIONS,
                   help="shared (PertNAS): mean valuation of all members, one selection on rank 0; independent: "
                        "each member selects its own cell, the best validation accuracy is reported")
    p.add_argument("--distributed", action="store_true",
                   help="join the torchrun job (works with one process too; without torchrun: one process)")
    p.add_argument("--cluster", default="local", choices=("local", "slurm", "tacc"),
                   help="local: torchrun env vars; slurm/tacc: SLURM_PROCID/SLURM_LOCALID/SLURM_NTASKS")
    p.add_argument("--train_path", default=None, help="folder with cifar_train.beton and cifar_test.beton (FFCV)")
    p.add_argument("--workers", type=int, default=8, help="FFCV loader worker threads (default 8)")
    p.add_argument("--cifar100", action="store_true", help="same as --dataset cifar100 (PertNAS flag)")
    p.add_argument("--image_size", type=int, default=None, help="resize images once (toolkit loader only)")
    add_runtime_args(p)
    add_data_args(p)
    g = p.add_argument_group("search budget (PertNAS defaults)")
    g.add_argument("--batch_size", type=int, default=256)
    g.add_argument("--learning_rate", "--lr", type=float, default=0.2176, help="used as lr/2.5 and lr/3 (SE)")
    g.add_argument("--learning_rate_min", type=float, default=0.001)
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--weight_decay", type=float, default=3e-4)
    g.add_argument("--init_channels", type=int, default=16)
    g.add_argument("--layers", type=int, default=5, help="cells in the search network (default 5)")
    g.add_argument("--nodes", type=int, default=4, help="intermediate nodes per cell (only 4 is supported)")
    g.add_argument("--ops", default="pertnas", choices=list(OP_LISTS),
                   help="pertnas (default, PertNAS' 9 entries: adds sep_conv_7x7, dil_conv_5x5 twice; a cell with "
                        "sep_conv_7x7 cannot be scored by NAS-Bench-301, augment.py trains it) or darts (the 7 "
                        "DARTS ops, all NAS-Bench-301 ops)")
    g.add_argument("--op_cap", type=int, default=1, help="random ops per edge at the start (default 1)")
    g.add_argument("--epochs_per_step", type=int, default=5, help="training epochs before each decision (5)")
    g.add_argument("--finetune_steps", type=int, default=50,
                   help="fine-tune steps before measuring perturb acc; each fine-tune makes steps+extra+1 updates")
    g.add_argument("--finetune_extra", default="20,80,130",
                   help="extra fine-tune steps in the expand, op-selection and topology phases (default 20,80,130)")
    g.add_argument("--perturb_restore", default="copy", choices=RESTORE_MODES,
                   help="copy: restore the weights before each op's fine-tune; alias: PertNAS' aliasing bug "
                        "(weights never restored, fine-tunes accumulate across ops)")
    g.add_argument("--max_train_steps", type=int, default=None, help="cap on steps per training epoch")
    g.add_argument("--cutout_length", type=int, default=8, help="cutout in training (PertNAS FFCV: 8; 0 = off)")
    g.add_argument("--fast", action="store_true", help="one batch per epoch and no fine-tune (debugging)")
    g.add_argument("--no_amp", action="store_true", help="float32 on CUDA too (AMP is on by default on CUDA)")
    o = p.add_argument_group("run")
    o.add_argument("--overwrite", action="store_true", help="restart a run folder that holds different settings")
    o.add_argument("--stop_after", type=int, default=None,
                   help="stop each member (and the selection) after N decisions; rerun to continue")
    o.add_argument("--quiet", action="store_true", help="no progress bars, log to the log files only")
    o.add_argument("--wandb", "--use_wandb", dest="wandb", action="store_true",
                   help="log to Weights & Biases with your own login (WANDB_API_KEY or `wandb login`)")
    o.add_argument("--wandb_project", default="pertnas")
    o.add_argument("--nb301_models", default=os.environ.get("NB301_MODELS"),
                   help="NAS-Bench-301 model folder (nb_models_1.0) to score the cell (env NB301_MODELS)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run or resume the search; rank 0 prints and saves the cell."""
    return search_main(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
