#!/usr/bin/env bash
# The seed program three ways on the same generated data, side by side in one run:
# the Rust example (examples/seed_rnn), rntk's Python package running
# tests/scripts/seed_program.py unchanged (python -m rntk.compat), and CNTK 2.7 running the
# same script (make_fixtures_seed.py, its oracle wrapper). Rounds interleave the three,
# every process under the bench lock; each is timed whole (start-up, imports, reading,
# training, the test pass) by /usr/bin/time: wall seconds and CPU seconds (user + sys).
# Then, in the same run, the per-call probe python_overhead.py (train_minibatch overhead,
# one-sequence eval). Medians and ratios at the end.
#
#   crates/rntk-py/bench/seed_compare.sh [ROUNDS]      (from the repository root)
#
# Environment: PYTHON (a Python with the rntk package installed; default
# target/ci-venv/bin/python, made by .ci/python-tests.sh), SKIP_CNTK=1 to leave CNTK out,
# OUT (logs; default a temporary directory).
set -euo pipefail
ROUNDS="${1:-5}"
ROOT="$(pwd)"
PY="${PYTHON:-$ROOT/target/ci-venv/bin/python}"
CNTK="${CNTK_PY:-/work/shared/bench/cntk/py}"
OUT="${OUT:-$(mktemp -d)}"
DATA="$OUT/data"
mkdir -p "$DATA"
"$PY" crates/rntk-py/tests/timeseries_data.py "$DATA" > /dev/null
cargo build --release --example seed_rnn -q
EX="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/seed_rnn"
SCRIPT="$ROOT/crates/rntk-py/tests/scripts/seed_program.py"
echo "data $DATA; python $("$PY" -c 'import sys; print(sys.version.split()[0])'); logs $OUT"

one() { # name round command...
    local who="$1" r="$2"; shift 2
    (cd "$DATA" && flock /tmp/bench.lock /usr/bin/time -f "TIME %e %U %S" "$@" \
        > "$OUT/$who.$r.out" 2> "$OUT/$who.$r.err") || { echo "$who failed:"; tail -5 "$OUT/$who.$r.err"; exit 1; }
    local t; t=$(grep '^TIME' "$OUT/$who.$r.err" | tail -1)
    echo "$who round $r: $t  (load $(cut -d' ' -f1 /proc/loadavg))"
    echo "$who $t" >> "$OUT/times"
}

for r in $(seq "$ROUNDS"); do
    one rust "$r" "$EX" --train train.ctf --test test.ctf
    one python "$r" "$PY" -m rntk.compat "$SCRIPT"
    if [ -z "${SKIP_CNTK:-}" ]; then
        one cntk "$r" env CNTK_THREADS=1 "$CNTK" "$ROOT/crates/rntk-py/tests/make_fixtures_seed.py"
    fi
done
# the same final lines (the Rust example and the script print the same progress text)
tail -1 "$OUT/rust.1.out"; tail -1 "$OUT/python.1.out"

echo "== per call (same run)"
flock /tmp/bench.lock "$PY" crates/rntk-py/bench/python_overhead.py --reps 15 --inner 200 | tee "$OUT/overhead.txt"

python3 - "$OUT/times" <<'PY'
import statistics, sys
t = {}
for line in open(sys.argv[1]):
    who, _, wall, user, sys_ = line.split()
    t.setdefault(who, []).append((float(wall), float(user) + float(sys_)))
med = {w: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for w, v in t.items()}
for w, (wall, cpu) in med.items():
    print('%-7s wall %.3f s, CPU %.3f s (medians of %d)' % (w, wall, cpu, len(t[w])))
if 'python' in med and 'rust' in med:
    print('python / rust: wall %.2fx, CPU %.2fx' % (med['python'][0] / med['rust'][0], med['python'][1] / med['rust'][1]))
if 'cntk' in med and 'python' in med:
    print('cntk / python: wall %.1fx, CPU %.1fx' % (med['cntk'][0] / med['python'][0], med['cntk'][1] / med['python'][1]))
PY
