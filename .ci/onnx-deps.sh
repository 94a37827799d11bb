#!/usr/bin/env bash
# Makes the venv with `onnx` and `onnxruntime` from PyPI that the ONNX tests use as
# oracles (tests/onnx/ort_eval.py: onnx.checker full check, onnxruntime outputs).
# crates/rntk/tests/onnx_support finds it at ~/.cache/rntk-onnx-venv (or at
# $RNTK_ONNX_PYTHON); with CI set a missing venv fails the tests instead of skipping.
set -euo pipefail
VENV="${RNTK_ONNX_VENV:-$HOME/.cache/rntk-onnx-venv}"
if "$VENV/bin/python" -c "import onnx, onnxruntime, numpy" >/dev/null 2>&1; then
    exit 0
fi
python3 -m venv "$VENV"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install --quiet \
    "onnx==1.23.2" "onnxruntime==1.32.0" "numpy>=1.26"
