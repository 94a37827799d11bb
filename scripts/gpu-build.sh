#!/usr/bin/env bash
# Build, here (Rust, no GPU needed), everything scripts/gpu-check.sh runs on a GPU
# machine that has CUDA 13 libraries but no Rust toolchain: the rntk-cuda test
# binaries, the GPU benchmark and the rntk command, release, stripped, into gpu-bin/
# (ignored by git; the device tool carries it: carry=["gpu-bin"], 64 MiB at most,
# checked at the end). kernels_on_host is left out: it needs a C++ compiler and no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf gpu-bin && mkdir -p gpu-bin
cargo build --release -p rntk-cli -p rntk-cuda --example gpu_bench
cp target/release/rntk target/release/examples/gpu_bench gpu-bin/
# the test binaries' paths, from cargo's JSON messages
cargo test --release -p rntk-cuda --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys, shutil
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        if m["target"]["kind"] == ["test"] and m["target"]["name"] != "kernels_on_host":
            shutil.copy(m["executable"], "gpu-bin/" + m["target"]["name"])
'
strip gpu-bin/*
git rev-parse --short HEAD > gpu-bin/COMMIT 2>/dev/null || echo '?' > gpu-bin/COMMIT
ls -la gpu-bin
# the device tool carries at most 64 MiB in all
size=$(du -cb gpu-bin | tail -1 | cut -f1)
echo "gpu-bin: $size bytes (carry limit 67108864)"
[ "$size" -le 67108864 ] || { echo "gpu-bin is over the 64 MiB carry limit"; exit 1; }
