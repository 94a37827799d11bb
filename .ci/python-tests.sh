#!/usr/bin/env bash
# Builds the Python package (crates/rntk-py) with the README's command into a virtual
# environment made here, and runs its pytest suite (no CNTK needed: CNTK's outputs are
# committed fixtures).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${RNTK_PY_VENV:-target/ci-venv}"
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$VENV/bin/python" -m pip install --quiet numpy pytest
"$VENV/bin/python" -m pip install --quiet ./crates/rntk-py
cd crates/rntk-py
"$VENV/bin/python" -m pytest -q tests
