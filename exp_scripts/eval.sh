#!/bin/bash
# DARTS-PT evaluation: train a genotype (--arch NAME or text) with the DARTS protocol on CIFAR-10 (exp_scripts/eval.sh of ruocwang/darts-pt). Extra flags pass through, e.g. --seed 1 --dataset cifar100.
set -euo pipefail
cd "$(dirname "$0")/.."
${PY:-python} augment.py --param DARTS --dataset cifar10 --arch "${arch:?set arch=NAME}" --seed 2 "$@"
