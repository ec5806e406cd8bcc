#!/bin/bash
# CPU profile of the NAS-Bench-201 pipeline through the DARTS-PT recipes: darts-201.sh / blank-201.sh, then
# darts-proj-201.sh / blank-proj-201.sh, seeds 0 and 1, and the cells' NAS-Bench-201 accuracies: the argmax cell's and
# the projected cell's, after 12 epochs (--benchmark, the cheap signal) and 200 epochs (--truth, what papers report).
# Small supernet (C=8, 2 cells per stage, 16x16 images, 2000 weight / 1000 alpha images of CIFAR-10, 5 epochs,
# proj_intv 1) so that all four runs fit in well under an hour on a 2-core CPU; two runs at a time, one thread each.
#     bash exp_scripts/cpu-nb201-profile.sh [extra search.py flags]
# DATA: CIFAR-10 (cifar-10-batches-py/ or train/<class>/ JPEGs; default ../cifar10); BENCH and TRUTH default to
# ../shared/benchmarks/nb201_{12,200}epoch.csv when present; OUT (default experiments/cpu-nb201-profile) receives
# OUT/nasbench201/search-<darts|blank>-201-<seed>/ and one .out log per run.
set -euo pipefail
source "$(dirname "$0")/_lib.sh"  # ROOT and PY (the repository's interpreter)
cd "$ROOT"
DATA=${DATA:-../cifar10}
BENCH=${BENCH:-../shared/benchmarks/nb201_12epoch.csv}
TRUTH=${TRUTH:-../shared/benchmarks/nb201_200epoch.csv}
OUT=${OUT:-experiments/cpu-nb201-profile}
mkdir -p "$OUT"
if [ ! -d "$DATA/train" ] && [ ! -d "$DATA/cifar-10-batches-py" ]; then
    echo "cpu-nb201-profile.sh: no CIFAR-10 in $DATA; unpack it first: ../shared/tools/unpack-cifar10 $DATA" >&2
    exit 1
fi
tables=()
[ -f "$BENCH" ] && tables+=(--benchmark "$BENCH" --metric cifar10_test_acc)
[ -f "$TRUTH" ] && tables+=(--truth "$TRUTH" --truth_metric cifar10_test_acc)
common=(--save_path "$OUT" --data_path "$DATA" --limit_train 2000 --limit_valid 1000 --threads 1 --device cpu --quiet
        "${tables[@]}")
one() {  # method seed [search.py flags]
    nice -n 5 bash exp_scripts/"$1"-201.sh --seed "$2" --init_channels 8 --layers 2 --image_size 16 --epochs 5 \
        "${common[@]}" "${@:3}"
    nice -n 5 bash exp_scripts/"$1"-proj-201.sh --seed "$2" --proj_intv 1 "${common[@]}"
}
start=$(date +%s)
for seed in 0 1; do
    one darts "$seed" "$@" > "$OUT/darts-$seed.out" 2>&1 &
    a=$!
    one blank "$seed" "$@" > "$OUT/blank-$seed.out" 2>&1 &
    b=$!
    if ! wait "$a" || ! wait "$b"; then
        echo "cpu-nb201-profile.sh: a run failed; see the end of $OUT/{darts,blank}-$seed.out" >&2
        exit 1
    fi
done
echo "wall seconds: $(( $(date +%s) - start ))"
"$PY" - "$OUT/nasbench201" <<'PYEOF'
import json, pathlib, sys
def f(v):
    return "-" if v is None else f"{v:.2f}"
print("NAS-Bench-201 CIFAR-10 test accuracy (%) after 12 epochs (signal) and 200 epochs (truth)")
print(f"{'run':<20} {'argmax 12':>9} {'argmax 200':>10} {'proj 12':>8} {'proj 200':>9}  argmax | projected")
for d in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    p = d / "projection.json"
    if p.is_file():
        r = json.loads(p.read_text())
        print(f"{d.name:<20} {f(r.get('argmax_bench_signal')):>9} {f(r.get('argmax_bench_truth')):>10} "
              f"{f(r.get('bench_signal')):>8} {f(r.get('bench_truth')):>9}  {r['argmax_genotype']} | {r['genotype']}")
PYEOF
