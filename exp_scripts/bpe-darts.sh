#!/bin/bash
# BPE's DARTS arm (Zheng et al. 2020; its README: python search.py --name=DARTS_BPE1 --batch_size=128 --w_lr=0.03
# --layers=6 --init_channels=8 --epochs=10 --cutout_length=0 --image_size=16): pt.darts' second-order search
# at the BPE1 (default) or BPE2 budget, whose numbers come from param_setting.py (--param).
#     bash exp_scripts/bpe-darts.sh [BPE1|BPE2 | --param BPE1|BPE2] [any search.py flag]
# Run folder: experiments/DARTS_<param> (BPE's --name). Run from exp_scripts/ or the repo root.
set -euo pipefail
param=BPE1
if [ $# -gt 0 ] && [[ $1 != --* ]]; then  # the positional budget of earlier versions of this script
    param=$1
    shift
fi
source "$(dirname "$0")/_lib.sh"
parse_flags "param" "$@"
case "$param" in
    BPE1 | BPE2) ;;
    *) echo "bpe-darts.sh: error: the budget must be BPE1 or BPE2, got $param" >&2; exit 2 ;;
esac
# no --method: search.py then follows BPE's protocol (second order, 'none' in the space, best-epoch genotype)
run search.py --name "DARTS_$param" --param "$param" "${PASS[@]}"
