#!/bin/bash
# DARTS-PT's exp_scripts/blank-proj-sota.sh: perturbation-based selection (projection) of a blank-sota.sh supernet.
# DARTS-PT's own blank-proj-sota.sh does not run (it calls --method blank-next --dev next); this is the intended one.
#    bash blank-proj-sota.sh [--space s5] [--dataset cifar10] [--seed 2] [--resume_expid NAME] [--crit acc|loss]
# --resume_expid defaults to the folder blank-sota.sh makes with the same --space, --dataset and --seed (DARTS-PT's
# default is fixed to s5). --resume_epoch E projects checkpoint_<E>.pt (kept every 10 epochs); without it, the
# search's last checkpoint (DARTS-PT: 50).
set -euo pipefail
source "$(dirname "$0")/_lib.sh"
project_sota_recipe blank-sota "$@"
