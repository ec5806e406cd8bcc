#!/usr/bin/env bash
# The one-call GPU check of issue 9 (CUDA graphs, work queue, supernet graphs, zero-shot at scale).
# Run on the device machine from the repository root, in ONE call (about 8-9 minutes):
#     run(command="bash bench/gpu_check.sh", timeout_s=600)
# Needs only what the device image has (python3 with torch, tensorboard, pytest); no dataset: the bench
# synthesizes CIFAR-like random images (speeds are real, accuracies mean nothing). Results land in $OUT.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD" PYTHONDONTWRITEBYTECODE=1
OUT="${OUT:-/tmp/gpu_check_out}"; mkdir -p "$OUT"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  echo "== CUDA tests: graphed step == eager (5 steps, fp32, 1e-5), graphed resume == uninterrupted, supernet graphs"
  timeout 120 python3 -m pytest -q -p no:cacheprovider -o addopts="" -k graphed -rs \
      tests/test_cudagraph.py tests/test_supernets.py 2>&1 | tail -25
  echo "== bench/gpu_throughput.py (full size, time limit 390 s)"
  timeout 440 python3 bench/gpu_throughput.py --time_limit 390 --json "$OUT/gpu_throughput.json" 2>&1
} 2>&1 | tee "$OUT/gpu_check.log"
