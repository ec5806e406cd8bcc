#!/bin/bash
# DARTS-PT's exp_scripts/eval.sh: train a genotype from scratch on CIFAR-10 with the DARTS protocol: 600 epochs, 36
# channels, 20 cells, auxiliary head, cutout 16, batch 96, lr 0.025, drop path 0.2 (augment.py --param DARTS).
#    bash eval.sh --arch NAME [--seed 2] [--batch_size 96] [--learning_rate 0.025] [--gpu auto|N|cpu] [augment.py flags]
# --arch is a name from genotypes.py / genotypes_published.txt (e.g. darts_pt_s3_1) or Genotype(...) text. Run folder:
# experiments/sota/<dataset>/eval/eval-<arch>-<seed> (for genotype text, g<checksum> stands for <arch>). Rerunning the
# same command resumes it (DARTS-PT's --resume_expid/--resume_epoch are not needed).
set -euo pipefail
source "$(dirname "$0")/_lib.sh"
eval_recipe cifar10 "" "$@"
