#!/bin/bash
# DARTS-PT's exp_scripts/blank-sota.sh: 'blank' (fixed alphas, weights only) supernet search in a DARTS space, S5 by
# default (50 epochs, C=16, 8 cells, batch 64: search.py's defaults).
#    bash blank-sota.sh [--space s1..s5] [--dataset cifar10|cifar100|svhn] [--seed 2] [--gpu auto|N|cpu] [search.py flags]
# Run folder: experiments/sota/<dataset>/search-blank-sota-<space>-<seed>. Run from exp_scripts/ or the repo root.
set -euo pipefail
source "$(dirname "$0")/_lib.sh"
search_recipe blank s5 2 "$@"
