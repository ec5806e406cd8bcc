#!/bin/bash
# DARTS-PT's exp_scripts/blank-201.sh (ruocwang/darts-pt): 'blank' (fixed alphas, weights only) supernet search on
# NAS-Bench-201 (100 epochs, C=16, 5 cells per stage, batch 64: search.py's nb201 defaults).
#    bash blank-201.sh [--seed 0] [--dataset cifar10] [--gpu auto|N|cpu] [any search.py flag]
# Run folder: experiments/nasbench201/search-blank-201-<seed>[-<dataset>], seed 0 by default as DARTS-PT's scripts
# (its README's search-blank-201-1 is the run of --seed 1). Run from exp_scripts/ or the repo root.
set -euo pipefail
source "$(dirname "$0")/_lib.sh"
search_recipe blank nb201 0 "$@"
