#!/usr/bin/env bash
# Issue #17: loss curves of the distributed learners on P2 lm and P3 slots against
# single-worker training, and the throughput of 1 vs 2 processes (1 thread each).
#   bash bench/distributed/curves.sh OUTDIR [MINIBATCHES]
# Needs Open MPI (mpirun) and a release build with --features mpi; writes
# OUTDIR/<workload>-<mode>.json (each run's RESULT line) and, with plot.py,
# docs/distributed-curves.png. Every run is under the benchmark lock.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?OUTDIR}
n=${2:-150}
mkdir -p "$out"
data="$out/data"
[ -f "$data/lm/train.ctf" ] || python3 ../shared/bench/data/synth.py lm "$data/lm" --quiet
[ -f "$data/slots/train.ctf" ] || python3 ../shared/bench/data/synth.py slots "$data/slots" --quiet
cargo build --release --features mpi --example workload_bench -p rntk
bin=target/release/examples/workload_bench
mpirun=(mpirun --oversubscribe --allow-run-as-root -x RAYON_NUM_THREADS=1)
for w in lm slots; do
    common=("$w" "$data/$w/train.ctf" "$data/$w/test.ctf" --minibatches "$n" --warmup 0
            --test-minibatches 0 --losses --quiet --chunk-bytes 65536)
    run() { # name, then the command (a result already there is kept)
        local name=$1; shift
        [ -s "$out/$w-$name.json" ] && return 0
        echo "== $w $name" >&2
        flock /tmp/bench.lock "$@" | grep -a '^RESULT ' | sed 's/^RESULT //' > "$out/$w-$name.json"
    }
    run single env RAYON_NUM_THREADS=1 "$bin" "${common[@]}"
    run dp "${mpirun[@]}" -np 2 "$bin" "${common[@]}" --distributed dp
    run 1bit "${mpirun[@]}" -np 2 "$bin" "${common[@]}" --distributed 1bit
    # block momentum: the minibatch size is per worker, so half as many steps
    run bm "${mpirun[@]}" -np 2 "$bin" "${common[@]/#$n/$((n / 2))}" --distributed bm
    # against the gaps CNTK's defaults leave: 1-bit SGD after a warm start of 20
    # minibatches on one data stream; block momentum without Nesterov, or with the
    # block learning rate that makes Nesterov's steady-state step (1 + μ)·η_b = 1
    mb=$([ "$w" = lm ] && echo 700 || echo 1000)
    run 1bit-warm "${mpirun[@]}" -np 2 "$bin" "${common[@]}" --distributed 1bit \
        --distributed-after $((20 * mb))
    run bm-nonesterov "${mpirun[@]}" -np 2 "$bin" "${common[@]/#$n/$((n / 2))}" --distributed bm \
        --no-nesterov
    run bm-blocklr "${mpirun[@]}" -np 2 "$bin" "${common[@]/#$n/$((n / 2))}" --distributed bm \
        --block-lr 0.6667
done
