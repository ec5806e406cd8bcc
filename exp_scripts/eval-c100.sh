#!/bin/bash
# DARTS-PT's exp_scripts/eval-c100.sh: train a genotype from scratch on CIFAR-100 with the DARTS protocol at 16
# channels and 8 cells, as DARTS-PT's script (augment.py --param DARTS --init_channels 16 --layers 8).
#    bash eval-c100.sh --arch NAME [--seed 2] [--batch_size 96] [--learning_rate 0.025] [--gpu auto|N|cpu] [augment.py flags]
# --arch is a name from genotypes.py / genotypes_published.txt (e.g. darts_pt_s3_1) or Genotype(...) text. Run folder:
# experiments/sota/<dataset>/eval/eval-c100-<arch>-<seed> (for genotype text, g<checksum> stands for <arch>).
# Rerunning the same command resumes it (DARTS-PT's --resume_expid/--resume_epoch are not needed).
set -euo pipefail
dataset=cifar100
seed=2
gpu=auto
arch=
batch_size=96
learning_rate=0.025
resume_expid=
resume_epoch=
save_path=experiments
source "$(dirname "$0")/_lib.sh"
parse_flags "dataset seed gpu arch batch_size learning_rate resume_expid resume_epoch save_path" "$@"
if [ -z "$arch" ]; then
    echo "$ID.sh: error: give --arch NAME (genotypes.py / genotypes_published.txt) or --arch 'Genotype(...)'" >&2
    exit 2
fi
if [ -n "$resume_expid$resume_epoch" ]; then
    echo "$ID.sh: note: --resume_expid/--resume_epoch are not needed: the same command resumes its run folder" >&2
fi
if [[ $arch =~ ^[A-Za-z0-9_.-]+$ ]]; then tag=$arch; else tag=g$(printf '%s' "$arch" | cksum | cut -d' ' -f1); fi
run augment.py --param DARTS --init_channels 16 --layers 8 --arch "$arch" --dataset "$dataset" --seed "$seed" \
    --batch_size "$batch_size" --lr "$learning_rate" --save_path "$save_path/sota/$dataset/eval" \
    --name "$ID-$tag-$seed" $(device_flags) "${PASS[@]}"
