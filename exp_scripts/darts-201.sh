#!/bin/bash
# DARTS-PT's exp_scripts/darts-201.sh (ruocwang/darts-pt): DARTS (first order) supernet search on NAS-Bench-201 (100
# epochs, C=16, 5 cells per stage, batch 64: search.py's nb201 defaults).
#    bash darts-201.sh [--seed 0] [--dataset cifar10] [--gpu auto|N|cpu] [any search.py flag]
# Run folder: experiments/nasbench201/search-darts-201-<seed>[-<dataset>], seed 0 by default as DARTS-PT's scripts
# (its README's search-darts-201-1 is the run of --seed 1). Run from exp_scripts/ or the repo root.
set -euo pipefail
source "$(dirname "$0")/_lib.sh"
search_recipe darts nb201 0 "$@"
