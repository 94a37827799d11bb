#!/usr/bin/env bash
# Issue #17: throughput of 1 vs 2 processes (1 thread each) for P1 seed, P2 lm and P3
# slots, interleaved (1, 2, 1, 2, ...) so that both see the same machine load, with the
# 1-minute load average before each run. Data parallel 32-bit (buckets of 4 MiB, the
# default); MODES="dp 1bit bm" adds the other learners.
#   bash bench/distributed/scaling.sh OUTDIR [REPEATS]
# Writes OUTDIR/<workload>-<np>-<mode>-<repeat>.json (RESULT lines: samples_per_s = wall,
# samples_per_cpu_s over the CPU time of all processes, comm_seconds on rank 0) and
# prints a summary (python3 bench/distributed/scaling.py OUTDIR).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?OUTDIR}
reps=${2:-2}
modes=${MODES:-dp}
shared=${SHARED:-/work/shared}
mkdir -p "$out"
data="$out/data"
for w in timeseries lm slots; do
    [ -f "$data/$w/train.ctf" ] || python3 "$shared/bench/data/synth.py" "$w" "$data/$w" --quiet
done
cargo build --release --features mpi --example workload_bench -p rntk
bin=target/release/examples/workload_bench
mpirun=(mpirun --oversubscribe --allow-run-as-root -x RAYON_NUM_THREADS=1 -np 2)
args() { # workload -> data and minibatch counts (a few seconds each on a quiet core)
    case $1 in
        seed) echo "seed $data/timeseries/train.ctf $data/timeseries/test.ctf --minibatches 4000 --warmup 20 --chunk-bytes 16384" ;;
        lm) echo "lm $data/lm/train.ctf $data/lm/test.ctf --minibatches 30 --warmup 3 --chunk-bytes 65536" ;;
        slots) echo "slots $data/slots/train.ctf $data/slots/test.ctf --minibatches 60 --warmup 3 --chunk-bytes 65536" ;;
    esac
}
run() { # name, then the command
    local name=$1; shift
    [ -s "$out/$name.json" ] && return 0
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo "== $name (load $load, $(date -u +%T))" >&2
    flock /tmp/bench.lock "$@" --test-minibatches 0 --quiet | grep -a '^RESULT ' \
        | sed "s/^RESULT {/{\"load_before\":$load,/" > "$out/$name.json"
}
for r in $(seq 1 "$reps"); do
    for w in seed lm slots; do
        # shellcheck disable=SC2046
        run "$w-1-single-$r" env RAYON_NUM_THREADS=1 "$bin" $(args $w)
        for m in $modes; do
            # shellcheck disable=SC2046
            run "$w-2-$m-$r" "${mpirun[@]}" "$bin" $(args $w) --distributed "$m"
        done
    done
done
python3 bench/distributed/scaling.py "$out"
