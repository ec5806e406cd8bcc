#!/bin/bash
# DARTS-PT's exp_scripts/sdarts-adv-proj-sota.sh: perturbation-based selection (projection) of a sdarts-adv-sota.sh
# supernet. DARTS-PT ships no such script.
#    bash sdarts-adv-proj-sota.sh [--space s5] [--dataset cifar10] [--seed 2] [--resume_expid NAME] [--crit acc|loss]
# --resume_expid defaults to the folder sdarts-adv-sota.sh makes with the same --space, --dataset and --seed
# (DARTS-PT's default is fixed to s5). --resume_epoch E projects checkpoint_<E>.pt (kept every 10 epochs); without it, the
# search's last checkpoint (DARTS-PT: 50).
set -euo pipefail
dataset=cifar10
seed=2
gpu=auto
space=s5
resume_epoch=
resume_expid=
crit=acc
source "$(dirname "$0")/_lib.sh"
parse_flags "dataset seed gpu space resume_epoch resume_expid crit" "$@"
run project.py --resume_expid "${resume_expid:-search-sdarts-adv-sota-$space-$seed}" \
    ${resume_epoch:+--resume_epoch "$resume_epoch"} --space "$space" --dataset "$dataset" --edge_decision random \
    --crit_normal "$crit" --crit_reduce "$crit" --crit_edge "$crit" --proj_intv 5 --seed "$seed" $(device_flags) \
    "${PASS[@]}"
