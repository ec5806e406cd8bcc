#!/bin/bash
# DARTS-PT evaluation on SVHN (DARTS protocol) (exp_scripts/eval-svhn.sh of ruocwang/darts-pt). Extra flags pass through, e.g. --seed 1 --dataset cifar100.
set -euo pipefail
cd "$(dirname "$0")/.."
${PY:-python} augment.py --param DARTS --dataset svhn --arch "${arch:?set arch=NAME}" --seed 2 "$@"
