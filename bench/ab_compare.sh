#!/usr/bin/env bash
# Before/after in one session: two builds of rntk's bench programs (A and B: seed_bench,
# workload_bench, ctf_bench) and the peers (CNTK 2.7, PyTorch) on the same synth.py data,
# every run under `flock /tmp/bench.lock`, rounds interleaved (A and B swap order each
# round), then medians, the load of every run, and whether A and B print the same losses
# (every digit of the progress text and the RESULT losses) and the same minibatch hashes.
#
#   A=/work/baseline-7764923 bench/ab_compare.sh      # B = this checkout's release build
#   A=DIR_A B=DIR_B ROUNDS=5 SKIP="torch" bench/ab_compare.sh
#
# The programs: P1 the seed program (seed_bench, as bench/seed_compare.sh runs it), P2 lm
# and P3 slots (workload_bench at WL_THREADS, default 1, as bench/workloads_compare.sh),
# the CTF reader (ctf_bench parse at 1 thread and read, as bench/ctf_reader.sh, on CTF_DIR's
# dense.ctf and sparse.ctf, made once). Peers at 1 thread, their fastest setting here.
# Environment: A, B (folders holding the three binaries), ROUNDS (3), OUT (logs; default
# ${XDG_CACHE_HOME:-~/.cache}/rntk-bench-out/ab), SKIP ("cntk torch" leaves peers out),
# SHARED_BENCH (../shared/bench), CTF_DIR (/tmp/rntk-ctf-bench), CTF_MIB (200), PEER_ROUNDS
# (default ROUNDS: the peers run in the first PEER_ROUNDS rounds only; on a loaded machine
# their runs take most of the time, and the before/after pair is what this script is for).
# The table goes to $OUT/table.md and stdout.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SB="${SHARED_BENCH:-$ROOT/../shared/bench}"
if [ ! -d "$SB" ] && [ -z "${SHARED_BENCH:-}" ]; then
    SB="$(cd "$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir)/.." && pwd)/../shared/bench"
fi
SB="$(cd "$SB" && pwd)"
: "${A:?A=folder with the 'before' seed_bench, workload_bench, ctf_bench}"
ROUNDS="${ROUNDS:-3}"
PEER_ROUNDS="${PEER_ROUNDS:-$ROUNDS}"
OUT="${OUT:-${XDG_CACHE_HOME:-$HOME/.cache}/rntk-bench-out/ab}"
WL_THREADS="${WL_THREADS:-1}"
SKIP="${SKIP:-}"
CTF_DIR="${CTF_DIR:-/tmp/rntk-ctf-bench}"
mkdir -p "$OUT" "$CTF_DIR"
rm -f "$OUT"/*.log

if [ -z "${B:-}" ]; then
    echo "== building B (release) from $ROOT at $(git -C "$ROOT" rev-parse --short HEAD)"
    (cd "$ROOT" && cargo build --release -p rntk --example seed_bench --example workload_bench \
        --example ctf_bench -q)
    B="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples"
fi
echo "A = $A"; echo "B = $B"

export BENCH_DATA_DIR="$OUT/data"
for d in timeseries lm slots; do
    mkdir -p "$BENCH_DATA_DIR/$d"
    python3 "$SB/data/synth.py" "$d" "$BENCH_DATA_DIR/$d" > /dev/null
    printf 'synth %s seed=1\n' "$d" > "$BENCH_DATA_DIR/$d/.stamp"
done
for k in dense sparse; do
    [ -f "$CTF_DIR/$k.ctf" ] || "$B/ctf_bench" gen "$k" "$CTF_DIR/$k.ctf" "${CTF_MIB:-200}"
done
TORCH_PY="${ANCHORS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/anchors-venv}/bin/python"
case " $SKIP " in *" torch "*) ;; *) [ -x "$TORCH_PY" ] || bash "$SB/torch/setup.sh" ;; esac
peer() { # name round
    [ "$2" -le "$PEER_ROUNDS" ] || return 1
    case " $SKIP " in *" $1 "*) return 1 ;; *) return 0 ;; esac
}

run() { # log-name command...
    local log="$OUT/$1.log"; shift
    echo "== $(basename "$log" .log)  (load $(cut -d' ' -f1-3 /proc/loadavg))"
    { echo "LOAD_BEFORE $(cut -d' ' -f1 /proc/loadavg)"
      flock /tmp/bench.lock /usr/bin/time -f 'TIME_CPU %U %S MAXRSS_KIB %M' "$@" 2>&1
    } > "$log" || { echo "failed, see $log"; tail -5 "$log"; }
}

rntk() { # A|B round
    local v="$1" r="$2" D="$BENCH_DATA_DIR" bin
    bin="$A"; [ "$v" = B ] && bin="$B"
    run "seed.$v.$r" "$bin/seed_bench" --train "$D/timeseries/train.ctf" --test "$D/timeseries/test.ctf" --infer-seconds 0.2
    for w in lm slots; do
        RAYON_NUM_THREADS="$WL_THREADS" run "$w.$v.$r" "$bin/workload_bench" "$w" "$D/$w/train.ctf" "$D/$w/test.ctf"
    done
    for k in dense sparse; do
        RAYON_NUM_THREADS=1 run "ctfparse-$k.$v.$r" "$bin/ctf_bench" parse "$k" "$CTF_DIR/$k.ctf"
        run "ctfread-$k.$v.$r" "$bin/ctf_bench" read "$k" "$CTF_DIR/$k.ctf"
    done
}

for v in A B; do
    bin="$A"; [ "$v" = B ] && bin="$B"
    for k in dense sparse; do
        "$bin/ctf_bench" hash "$k" "$CTF_DIR/$k.ctf" > "$OUT/hash-$k.$v.txt"
    done
done

for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then rntk A "$r"; rntk B "$r"; else rntk B "$r"; rntk A "$r"; fi
    D="$BENCH_DATA_DIR"
    if peer cntk "$r"; then
        run "seed.cntk.$r" "$SB/cntk/py" "$SB/cntk/seed_rnn.py" --threads 1 --eval-seconds 3
        for w in lm slots; do run "$w.cntk.$r" "$SB/cntk/py" "$SB/cntk/bench_$w.py" --threads 1; done
        for k in dense sparse; do
            run "ctfread-$k.cntk.$r" "$SB/cntk/py" "$ROOT/bench/cntk_ctf_read.py" "$k" "$CTF_DIR/$k.ctf" --threads 1
        done
    fi
    if peer torch "$r"; then
        run "seed.torch.$r" "$TORCH_PY" "$SB/torch/seed_rnn.py" --variant padded --epoch-unit sequences \
            --epoch-size 12434 --threads 1
        for w in lm slots; do run "$w.torch.$r" "$TORCH_PY" "$SB/torch/bench_$w.py" --threads 1; done
    fi
done

python3 "$ROOT/bench/ab_table.py" "$OUT" | tee "$OUT/table.md"
