# shellcheck shell=bash
# Shared by the recipes in exp_scripts/ (sourced, not run). A recipe sets its defaults, then
#     source "$(dirname "$0")/_lib.sh"; parse_flags "dataset seed gpu" "$@"
# parse_flags reads DARTS-PT's flag style (exp_scripts/*.sh of ruocwang/darts-pt, lines 7-13): `--name value`
# (or --name=value) sets the shell variable `name` when the recipe lists it; every other argument is kept in
# PASS, in order, and handed to the Python script after the recipe's own flags (argparse: the last one wins).
# `run SCRIPT.py ARGS...` prints the command and runs it from the repository root with the project's
# interpreter: $PY if set, else the repository's .venv/bin/python, else python3. DRY_RUN=1 only prints it.
# Relative paths given on the command line are taken from the repository root, as DARTS-PT's recipes take
# them from the code folder they cd into; run folders go to <repo>/experiments/ (DARTS-PT's ../experiments).

ID=$(basename "$0")
ID=${ID%.*}  # the recipe's name: DARTS-PT passes it as --save, and run folders are named after it
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${PY:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
PASS=()

parse_flags() {  # parse_flags "known variable names" ARGS...
    local known=" $1 " arg name value has
    shift
    while [ $# -gt 0 ]; do
        arg=$1
        shift
        if [[ $arg != --* ]]; then
            PASS+=("$arg")
            continue
        fi
        if [[ $arg == *=* ]]; then
            name=${arg%%=*} value=${arg#*=} has=1
        elif [ $# -gt 0 ] && [[ $1 != --* ]]; then
            name=$arg value=$1 has=1
            shift
        else
            name=$arg value= has=0
        fi
        name=${name#--}
        if [[ $known == *" ${name//-/_} "* ]]; then
            if [ "$has" = 0 ]; then
                echo "$ID.sh: error: --$name needs a value" >&2
                exit 2
            fi
            printf -v "${name//-/_}" '%s' "$value"
        elif [[ $arg == *=* ]]; then
            PASS+=("$arg")
        else
            PASS+=("--$name")
            if [ "$has" = 1 ]; then PASS+=("$value"); fi
        fi
    done
}

device_flags() {  # DARTS-PT's --gpu: auto (the default), an index, or cpu
    case "${gpu:-auto}" in
        auto | "") ;;
        cpu) echo "--device cpu" ;;
        *) echo "--device cuda:$gpu" ;;
    esac
}

run() {  # run SCRIPT.py ARGS...
    cd "$ROOT"
    printf '+ %s' "$PY"
    printf ' %q' "$@"
    printf '\n'
    if [ "${DRY_RUN:-0}" = 1 ]; then exit 0; fi
    exec "$PY" "$@"
}

# ----------------------------------------------------------------------------- the recipes' bodies
# Each DARTS-PT recipe (kept under its own name, as DARTS-PT's README calls it) is one call of these.

search_recipe() {  # search_recipe METHOD SPACE SEED ARGS...: DARTS-PT's <method>-201.sh (SPACE nb201) / -sota.sh
    local method=$1
    space=$2 seed=$3 dataset=cifar10 gpu=auto
    shift 3
    if [ "$space" = nb201 ]; then parse_flags "dataset seed gpu" "$@"; else parse_flags "dataset seed gpu space" "$@"; fi
    run search.py --space "$space" --method "$method" --dataset "$dataset" --save "$ID" --seed "$seed" \
        $(device_flags) "${PASS[@]}"
}

project_201_recipe() {  # project_201_recipe SEARCH_RECIPE ARGS...: DARTS-PT's <method>-proj-201.sh
    local recipe=$1 suffix=
    dataset=cifar10 seed=0 gpu=auto space= resume_epoch= resume_expid=
    shift
    parse_flags "dataset seed gpu space resume_epoch resume_expid" "$@"
    [ "$dataset" = cifar10 ] || suffix=-$dataset
    run project.py --resume_expid "${resume_expid:-search-$recipe-$seed$suffix}" \
        ${resume_epoch:+--resume_epoch "$resume_epoch"} --dataset "$dataset" ${space:+--space "$space"} \
        --edge_decision random --crit acc --proj_intv 5 --seed "$seed" $(device_flags) "${PASS[@]}"
}

project_sota_recipe() {  # project_sota_recipe SEARCH_RECIPE ARGS...: DARTS-PT's <method>-proj-sota.sh
    local recipe=$1
    dataset=cifar10 seed=2 gpu=auto space=s5 resume_epoch= resume_expid= crit=acc
    shift
    parse_flags "dataset seed gpu space resume_epoch resume_expid crit" "$@"
    run project.py --resume_expid "${resume_expid:-search-$recipe-$space-$seed}" \
        ${resume_epoch:+--resume_epoch "$resume_epoch"} --space "$space" --dataset "$dataset" --edge_decision random \
        --crit_normal "$crit" --crit_reduce "$crit" --crit_edge "$crit" --proj_intv 5 --seed "$seed" $(device_flags) \
        "${PASS[@]}"
}

eval_recipe() {  # eval_recipe DATASET "EXTRA AUGMENT FLAGS" ARGS...: DARTS-PT's eval.sh / eval-c100.sh / eval-svhn.sh
    local extra=$2 tag
    dataset=$1 seed=2 gpu=auto arch= batch_size=96 learning_rate=0.025 resume_expid= resume_epoch= save_path=experiments
    shift 2
    parse_flags "dataset seed gpu arch batch_size learning_rate resume_expid resume_epoch save_path" "$@"
    if [ -z "$arch" ]; then
        echo "$ID.sh: error: give --arch NAME (genotypes.py / genotypes_published.txt) or --arch 'Genotype(...)'" >&2
        exit 2
    fi
    if [ -n "$resume_expid$resume_epoch" ]; then
        echo "$ID.sh: note: --resume_expid/--resume_epoch are not needed: the same command resumes its run folder" >&2
    fi
    if [[ $arch =~ ^[A-Za-z0-9_.-]+$ ]]; then tag=$arch; else tag=g$(printf '%s' "$arch" | cksum | cut -d' ' -f1); fi
    # shellcheck disable=SC2086  # EXTRA is a list of flags
    run augment.py --param DARTS $extra --arch "$arch" --dataset "$dataset" --seed "$seed" \
        --batch_size "$batch_size" --lr "$learning_rate" --save_path "$save_path/sota/$dataset/eval" \
        --name "$ID-$tag-$seed" $(device_flags) "${PASS[@]}"
}
