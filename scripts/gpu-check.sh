#!/usr/bin/env bash
# On the GPU machine: run what scripts/gpu-build.sh built (no Rust needed there) and
# keep the output in bench/gpu-check.txt (also copied to $OUT when set):
#   1. every kernel compiled by NVRTC (the machine's CUDA 13), the no-GPU error path;
#   2. the GPU conformance suite: ops, layers, learners and training against the CPU
#      backend (<= 1e-5 relative, tests/gpu_conformance.rs says where wider and why);
#   3. the seed program trained by `rntk train --device gpu` to the CPU's test metric;
#   4. the benchmarks against cuDNN via PyTorch (bench/gpu/h200_cudnn_2026-11-26.csv,
#      measured on an H200: compare only on the same card).
# Usage: scripts/gpu-check.sh   (about 5 minutes; each step has its own time limit)
set -uo pipefail
cd "$(dirname "$0")/.."
log=bench/gpu-check.txt
bin=gpu-bin
[ -x $bin/gpu_conformance ] || { echo "run scripts/gpu-build.sh first (on a machine with Rust)"; exit 2; }
# CUDA libraries from PyTorch's wheels where that is how they are installed (cuda.md)
SP=$(python3 -c "import site; print(site.getsitepackages()[0])" 2>/dev/null || true)
export LD_LIBRARY_PATH="$SP/nvidia/cu13/lib:$SP/nvidia/cudnn/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export RNTK_REQUIRE_NVRTC=1
step() { echo; echo "== $1"; }
{
    echo "rntk GPU check, $(date -u +%FT%TZ), commit $(cat $bin/COMMIT 2>/dev/null || echo '?')"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi: none"
    step "1. kernels compile (NVRTC), no-GPU path"
    timeout 120 $bin/nvrtc --test-threads=1
    timeout 60 $bin/no_gpu
    step "2. conformance against the CPU backend"
    timeout 300 $bin/gpu_conformance --test-threads=1 --nocapture
    step "3. the seed program: rntk train --device gpu vs cpu (test metric)"
    d=$(mktemp -d)
    cp examples/seed.toml "$d/" && $bin/rntk gen-data timeseries "$d/timeseries" >/dev/null
    for dev in cpu gpu; do
        (cd "$d" && timeout 240 "$OLDPWD/$bin/rntk" train seed.toml --device $dev > "train-$dev.txt" 2>&1)
        echo "-- $dev: exit $?"; grep -E "Finished (Epoch|Evaluation)" "$d/train-$dev.txt" | tail -3
    done
    cpu_m=$(grep "Finished Evaluation" "$d/train-cpu.txt" | tail -1)
    gpu_m=$(grep "Finished Evaluation" "$d/train-gpu.txt" | tail -1)
    echo "test metric cpu: $cpu_m"; echo "test metric gpu: $gpu_m"
    step "4. benchmarks (median ms per training step; peer = cuDNN 9.19 via PyTorch 2.11 on an H200)"
    timeout 240 $bin/gpu_bench --peer bench/gpu/h200_cudnn_2026-11-26.csv
} 2>&1 | tee "$log"
[ -n "${OUT:-}" ] && cp "$log" "$OUT/"
echo "written: $log"
