#!/bin/bash
# DARTS-PT perturbation-based selection on a DARTS-space blank supernet (exp_scripts/blank-proj-sota.sh of ruocwang/darts-pt). Extra flags pass through, e.g. --seed 1 --dataset cifar100.
set -euo pipefail
cd "$(dirname "$0")/.."
expid=${resume_expid:-searchs/search-blank-sota-s5-2}
${PY:-python} project.py --resume_expid "$expid" --edge_decision random --crit_normal acc --crit_reduce acc --crit_edge acc --proj_intv 5 "$@"
