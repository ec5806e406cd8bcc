#!/bin/bash
# DARTS-PT perturbation-based selection on a NAS-Bench-201 blank supernet (exp_scripts/blank-proj-201.sh of ruocwang/darts-pt). Extra flags pass through, e.g. --seed 1 --dataset cifar100.
set -euo pipefail
cd "$(dirname "$0")/.."
expid=${resume_expid:-searchs/search-blank-201-0}
${PY:-python} project.py --resume_expid "$expid" --edge_decision random --crit acc --proj_intv 5 "$@"
