#!/bin/bash
# DARTS-PT's exp_scripts/blank-proj-201.sh: perturbation-based selection (projection) of a blank-201.sh supernet.
#    bash blank-proj-201.sh [--resume_expid NAME] [--resume_epoch E] [--seed 0] [--dataset cifar10] [project.py flags]
# --resume_expid defaults to the folder blank-201.sh makes with the same --seed and --dataset (DARTS-PT's default,
# search-blank-201-1, predates its seed-0 default). --resume_epoch E projects checkpoint_<E>.pt (kept every 20
# epochs); without it, the search's last checkpoint (DARTS-PT: 100). The space is read from the checkpoint, so a
# DARTS-space run works too, as DARTS-PT's README calls it: --space s3 --dataset svhn --resume_expid
# search-blank-sota-s3-2.
set -euo pipefail
source "$(dirname "$0")/_lib.sh"
project_201_recipe blank-201 "$@"
