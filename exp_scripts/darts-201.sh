#!/bin/bash
# DARTS-PT DARTS search on NAS-Bench-201 (100 epochs, C=16, 5 cells per stage) (exp_scripts/darts-201.sh of ruocwang/darts-pt). Extra flags pass through, e.g. --seed 1 --dataset cifar100.
set -euo pipefail
cd "$(dirname "$0")/.."
${PY:-python} search.py --space nb201 --method darts --epochs 100 --init_channels 16 --layers 5 --batch_size 64 --lr 0.025 --seed 0 --train_portion 0.5 --name search-darts-201-0 "$@"
