#!/bin/bash
# DARTS-PT's exp_scripts/sdarts-adv-sota.sh (DARTS-PT ships no such script; its code path is --perturb_alpha
# pgd_linf): SDARTS-ADV (PGD attack on the alphas) supernet search in a DARTS space, S5 by default (50 epochs, C=16, 8
# cells, batch 64: search.py's defaults).
#    bash sdarts-adv-sota.sh [--space s1..s5] [--dataset cifar10|cifar100|svhn] [--seed 2] [--gpu auto|N|cpu] [search.py flags]
# Run folder: experiments/sota/<dataset>/search-sdarts-adv-sota-<space>-<seed>. Run from exp_scripts/ or the repo
# root.
set -euo pipefail
source "$(dirname "$0")/_lib.sh"
search_recipe sdarts-adv s5 2 "$@"
