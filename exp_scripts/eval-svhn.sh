#!/bin/bash
# DARTS-PT's exp_scripts/eval-svhn.sh: train a genotype from scratch on SVHN with the DARTS protocol at 16 channels
# and 8 cells, as DARTS-PT's script (augment.py --param DARTS --init_channels 16 --layers 8).
#    bash eval-svhn.sh --arch NAME [--seed 2] [--batch_size 96] [--learning_rate 0.025] [--gpu auto|N|cpu] [augment.py flags]
# --arch is a name from genotypes.py / genotypes_published.txt (e.g. darts_pt_s3_1) or Genotype(...) text. Run folder:
# experiments/sota/<dataset>/eval/eval-svhn-<arch>-<seed> (for genotype text, g<checksum> stands for <arch>).
# Rerunning the same command resumes it (DARTS-PT's --resume_expid/--resume_epoch are not needed).
set -euo pipefail
source "$(dirname "$0")/_lib.sh"
eval_recipe svhn "--init_channels 16 --layers 8" "$@"
