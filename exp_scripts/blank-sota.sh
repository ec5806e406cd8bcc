#!/bin/bash
# DARTS-PT blank supernet on S5 (or --space s1..s4) (exp_scripts/blank-sota.sh of ruocwang/darts-pt). Extra flags pass through, e.g. --seed 1 --dataset cifar100.
set -euo pipefail
cd "$(dirname "$0")/.."
${PY:-python} search.py --space "${space:-s5}" --method blank --epochs 50 --init_channels 16 --layers 8 --batch_size 64 --lr 0.025 --seed 2 --name "search-blank-sota-${space:-s5}-2" "$@"
