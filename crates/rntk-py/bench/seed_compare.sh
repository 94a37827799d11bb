#!/usr/bin/env bash
# The seed program three ways on the same generated data, interleaved, under the bench
# lock: CNTK 2.7 running tests/scripts/seed_program.py, rntk's Python package running the
# same script unchanged (python -m rntk.compat), and the Rust example (examples/seed_rnn).
# Wall-clock seconds per process.  Usage: seed_compare.sh [REPS] (run from the repository root)
set -euo pipefail
REPS="${1:-3}"
ROOT="$(pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
DATA="$(mktemp -d)"
"$PY" crates/rntk-py/tests/timeseries_data.py "$DATA"
cargo build --release --example seed_rnn -q
EX="$ROOT/target/release/examples/seed_rnn"
for r in $(seq "$REPS"); do
    for who in rntk-python rntk-rust cntk; do
        cd "$DATA"
        s=$(date +%s.%N)
        case $who in
            rntk-python) flock /tmp/bench.lock "$PY" -m rntk.compat "$ROOT/crates/rntk-py/tests/scripts/seed_program.py" > /dev/null ;;
            rntk-rust) flock /tmp/bench.lock "$EX" --train train.ctf --test test.ctf > /dev/null ;;
            cntk) CNTK_THREADS=1 flock /tmp/bench.lock /work/shared/bench/cntk/py "$ROOT/crates/rntk-py/tests/make_fixtures_seed.py" > /dev/null 2>&1 ;;
        esac
        e=$(date +%s.%N)
        echo "$who run $r: $(echo "$e - $s" | bc) s  (load $(cut -d' ' -f1 /proc/loadavg))"
        cd "$ROOT"
    done
done
rm -rf "$DATA"
