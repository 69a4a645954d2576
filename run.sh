#!/usr/bin/env bash
# One entry point for a fresh machine: builds .venv from pyproject.toml, at the versions of
# constraints.txt, when needed, then
#   ./run.sh demo [snakemake args]   runs the whole workflow on the embedded demo (2 cores)
#   ./run.sh test [pytest args]      runs the test suite
#   ./run.sh snakemake [args]        runs snakemake from the environment
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

VENV=${VLCP_VENV:-.venv}
PYTHON=${PYTHON:-python3}

ensure_env() {
    local stamp="$VENV/.vlcp-installed" want
    want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return
    fi
    if [[ ! -x "$VENV/bin/python" ]]; then
        echo "creating $VENV with $($PYTHON --version 2>&1)" >&2
        "$PYTHON" -m venv "$VENV"
    fi
    echo "installing vlcp and its dependencies into $VENV (first time: a few minutes)" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[test]"
    echo "$want" > "$stamp"
}

command=${1:-}
[[ $# -gt 0 ]] && shift
case "$command" in
    demo)
        ensure_env
        export PATH="$PWD/$VENV/bin:$PATH" HF_HUB_OFFLINE=1
        snakemake --configfile config/demo.yaml --cores "${VLCP_CORES:-2}" "$@"
        echo "demo finished: results in results/demo/" >&2
        ;;
    test)
        ensure_env
        export PATH="$PWD/$VENV/bin:$PATH" HF_HUB_OFFLINE=1
        exec python -m pytest "$@"
        ;;
    snakemake)
        ensure_env
        export PATH="$PWD/$VENV/bin:$PATH"
        exec snakemake "$@"
        ;;
    *)
        sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
