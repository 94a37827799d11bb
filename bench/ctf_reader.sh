#!/usr/bin/env bash
# CTF reader benchmark: rntk (ctf_bench example) against CNTK 2.7's MinibatchSource
# on the same generated files, in one session. Usage: bench/ctf_reader.sh [DIR] [RUNS]
set -euo pipefail
DIR=${1:-/tmp/rntk-ctf-bench}
RUNS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --release --example ctf_bench -q
B=$CARGO_TARGET_DIR/release/examples/ctf_bench
CNTK=${CNTK_PY:-/work/shared/bench/cntk/py}
mkdir -p "$DIR"
for k in dense sparse; do
  [ -f "$DIR/$k.ctf" ] || "$B" gen $k "$DIR/$k.ctf" 200
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)  cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
for r in $(seq "$RUNS"); do
  for k in dense sparse; do
    echo "load: $(cut -d' ' -f1 /proc/loadavg)"
    flock /tmp/bench.lock env RAYON_NUM_THREADS=1 /usr/bin/time -f "  cpu %U+%S s" "$B" parse $k "$DIR/$k.ctf" 2>&1 | sed 's/^/rntk-1thread /'
    flock /tmp/bench.lock /usr/bin/time -f "  cpu %U+%S s" "$B" read $k "$DIR/$k.ctf" 2>&1 | sed 's/^/rntk-source /'
    for t in 1 2; do
      echo "load: $(cut -d' ' -f1 /proc/loadavg)"
      flock /tmp/bench.lock "$CNTK" "$ROOT/bench/cntk_ctf_read.py" $k "$DIR/$k.ctf" --threads $t 2>&1 | grep '^cntk'
    done
  done
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
