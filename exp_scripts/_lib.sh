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
