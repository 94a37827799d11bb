#!/usr/bin/env bash
# Data-parallel training over MPI (issue #17): Open MPI and libclang (the mpi crate's
# bindings) from Debian when missing, then the MPI tests, which start themselves under
# `mpirun -np 2 --oversubscribe --allow-run-as-root` (CI runs as root), and the Python
# package built with MPI running a CNTK script under mpirun.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for p in openmpi-bin libopenmpi-dev libclang-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Every cargo command selects the whole workspace with the same features, so that the
# dependencies' features unify alike and nothing is compiled twice (`-p rntk` then
# `-p rntk-cli` rebuilt gemm, prost-build and rntk in between).
MPI_FEATURES=rntk/mpi,rntk-cli/mpi,rntk-py/mpi
cargo clippy --workspace --all-targets --features "$MPI_FEATURES" -- -D warnings
cargo test --workspace --features "$MPI_FEATURES" --test mpi --test mpi_cli
# The Python package built with MPI (dev profile: the debug build of rntk with `mpi` above
# is reused) and its distributed tests, which run a CNTK script under mpirun -np 2.
VENV="${RNTK_PY_MPI_VENV:-$PWD/target/ci-mpi-venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$VENV/bin/python" -m pip install --quiet numpy pytest
MATURIN_PEP517_ARGS="--features mpi --profile dev" "$VENV/bin/python" -m pip install --quiet ./crates/rntk-py
(cd crates/rntk-py && "$VENV/bin/python" -m pytest -q tests/test_distributed.py)
