#!/bin/bash
# CPU profile of the NAS-Bench-201 pipeline: search -> project -> table lookup, darts and blank, 2 seeds.
# Small supernet (C=8, 2 cells per stage, 16x16 images, 2000 weight / 1000 alpha images of CIFAR-10,
# 5 epochs, proj_intv 1) so that all four runs fit in well under an hour on a 2-core CPU; two runs at
# a time, one thread each. Usage: bash exp_scripts/cpu-nb201-profile.sh [extra search.py flags]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../cifar10}
BENCH=${BENCH:-../shared/benchmarks/nb201_12epoch.csv}
OUT=${OUT:-searchs/cpu-nb201-profile}
mkdir -p "$OUT"
[ -d "$DATA/train" ] || { echo "unpack CIFAR-10 first: ../shared/tools/unpack-cifar10 $DATA" >&2; exit 1; }
one() {  # method seed
    local dir="$OUT/$1-$2"
    nice -n 5 $PY search.py --space nb201 --method "$1" --seed "$2" --init_channels 8 --layers 2 \
        --image_size 16 --batch_size 64 --lr 0.025 --epochs 5 --dataset folder --data_path "$DATA" \
        --limit_train 2000 --limit_valid 1000 --save_path "$OUT" --name "$1-$2" --threads 1 \
        --benchmark "$BENCH" --metric cifar10_test_acc --device cpu "${@:3}"
    nice -n 5 $PY project.py --resume_expid "$dir" --proj_intv 1 --edge_decision random --crit acc \
        --seed "$2" --benchmark "$BENCH" --metric cifar10_test_acc --threads 1 --device cpu
}
start=$(date +%s)
for seed in 0 1; do
    one darts "$seed" "$@" > "$OUT-darts-$seed.out" 2>&1 &
    one blank "$seed" "$@" > "$OUT-blank-$seed.out" 2>&1 &
    wait
done
echo "wall seconds: $(( $(date +%s) - start ))"
$PY - "$OUT" <<'PYEOF'
import json, sys, pathlib
print(f"{'run':<10} {'argmax':>8} {'projected':>10}  argmax | projected")
for d in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    p = d / "projection.json"
    if p.is_file():
        r = json.loads(p.read_text())
        print(f"{d.name:<10} {r['argmax_benchmark']:>8.2f} {r['benchmark']:>10.2f}  {r['argmax_genotype']} | {r['genotype']}")
PYEOF
