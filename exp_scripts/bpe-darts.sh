#!/bin/bash
# BPE's DARTS arm (Zheng et al. 2020 README): second-order DARTS search at the BPE1 (default) or BPE2 budget.
# Usage: bash exp_scripts/bpe-darts.sh [BPE1|BPE2] [extra search.py flags]
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-BPE1}; shift || true
case "$budget" in
  BPE1) ${PY:-python} search.py --name=DARTS_BPE1 --unrolled --batch_size=128 --w_lr=0.03 --layers=6 --init_channels=8 \
          --epochs=10 --cutout_length=0 --image_size=16 "$@" ;;
  BPE2) ${PY:-python} search.py --name=DARTS_BPE2 --unrolled --batch_size=128 --w_lr=0.03 --layers=16 --init_channels=16 \
          --epochs=30 --cutout_length=0 --image_size=16 "$@" ;;
  *) echo "bpe-darts.sh: error: budget must be BPE1 or BPE2, got $budget" >&2; exit 2 ;;
esac
