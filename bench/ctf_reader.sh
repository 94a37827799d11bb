#!/usr/bin/env bash
# CTF reader benchmark: rntk (ctf_bench example) against CNTK 2.7's MinibatchSource
# on the same generated files, in one session. Usage: bench/ctf_reader.sh [DIR] [RUNS]
# CTF_BENCH=path: a ctf_bench binary already built (else it is built here);
# CTF_BENCH_BEFORE=path: a second build (e.g. of main) measured in the same rounds,
# after a check that both deliver the same values (ctf_bench hash).
set -euo pipefail
DIR=${1:-/tmp/rntk-ctf-bench}
RUNS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${CTF_BENCH:-}" ]; then
  cargo build --release --example ctf_bench -q
  CTF_BENCH=$CARGO_TARGET_DIR/release/examples/ctf_bench
fi
B=$CTF_BENCH
A=${CTF_BENCH_BEFORE:-}
CNTK=${CNTK_PY:-/work/shared/bench/cntk/py}
mkdir -p "$DIR"
for k in dense sparse; do
  [ -f "$DIR/$k.ctf" ] || "$B" gen $k "$DIR/$k.ctf" 200
  if [ -n "$A" ]; then
    h=$(flock /tmp/bench.lock "$B" hash $k "$DIR/$k.ctf")
    hb=$(flock /tmp/bench.lock "$A" hash $k "$DIR/$k.ctf")
    echo "hash $k: $h (before: $hb)"
    [ "$h" = "$hb" ] || { echo "hashes differ" >&2; exit 1; }
  fi
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)  cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
rntk_round() { # label binary kind
  flock /tmp/bench.lock env RAYON_NUM_THREADS=1 /usr/bin/time -f "  cpu %U+%S s" "$2" parse $3 "$DIR/$3.ctf" 2>&1 | sed "s/^/$1-1thread /"
  flock /tmp/bench.lock /usr/bin/time -f "  cpu %U+%S s" "$2" read $3 "$DIR/$3.ctf" 2>&1 | sed "s/^/$1-source /"
}
for r in $(seq "$RUNS"); do
  for k in dense sparse; do
    echo "load: $(cut -d' ' -f1 /proc/loadavg)"
    rntk_round rntk "$B" $k
    [ -z "$A" ] || rntk_round before "$A" $k
    for t in 1 2; do
      echo "load: $(cut -d' ' -f1 /proc/loadavg)"
      flock /tmp/bench.lock "$CNTK" "$ROOT/bench/cntk_ctf_read.py" $k "$DIR/$k.ctf" --threads $t 2>&1 | grep '^cntk'
    done
  done
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
