#!/usr/bin/env bash
# NVRTC for the CUDA kernels' compile test (crates/rntk-cuda/tests/nvrtc.rs): CUDA
# 13.0's libnvrtc.so.13 from PyPI into a venv; prints the directory to put on
# LD_LIBRARY_PATH. No GPU or driver needed.
set -euo pipefail
venv="${RNTK_NVRTC_VENV:-$HOME/.cache/rntk-nvrtc-venv}"
[ -x "$venv/bin/pip" ] || python3 -m venv "$venv" >&2
"$venv/bin/pip" install -q "nvidia-cuda-nvrtc==13.0.*" >&2
dirname "$(find "$venv" -name 'libnvrtc.so.13' | head -1)"
