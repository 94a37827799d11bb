#!/usr/bin/env bash
# The seed program (issue #5): rntk vs CNTK 2.7 vs PyTorch, trained on the same
# synth.py `timeseries` data in one session, each run under `flock /tmp/bench.lock`,
# runs interleaved (rntk, CNTK, PyTorch, rntk, ...), then medians.
#
#   bench/seed_compare.sh                 # 3 rounds on synth.py's data (BENCHMARKS.md)
#   ROUNDS=5 bench/seed_compare.sh
#   DATASET=builtin bench/seed_compare.sh # the seed example's built-in data instead
#
# Environment: SHARED_BENCH (default ../shared/bench from the repository root),
# OUT (logs; default ${XDG_CACHE_HOME:-~/.cache}/rntk-bench-out/seed_compare),
# CARGO_TARGET_DIR (as usual), TORCH_THREADS (default 1), SKIP="torch cntk" to leave
# peers out. CNTK runs with --threads 1, its fastest setting on this machine.
# PyTorch runs `--variant padded --epoch-unit sequences --epoch-size 12434` (CNTK's
# epoch: 12434 label samples = sequences); it reads synth.timeseries in memory (the
# values the CTF files hold before their 6-decimal rounding), not the files.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SB="${SHARED_BENCH:-$ROOT/../shared/bench}"
if [ ! -d "$SB" ] && [ -z "${SHARED_BENCH:-}" ]; then
    # a git worktree elsewhere: ../shared/bench beside the main checkout
    SB="$(cd "$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir)/.." && pwd)/../shared/bench"
fi
SB="$(cd "$SB" && pwd)"
ROUNDS="${ROUNDS:-3}"
DATASET="${DATASET:-synth}"
OUT="${OUT:-${XDG_CACHE_HOME:-$HOME/.cache}/rntk-bench-out/seed_compare}"
TORCH_THREADS="${TORCH_THREADS:-1}"
SKIP="${SKIP:-}"
mkdir -p "$OUT"

# CNTK's seed_rnn.py reads $BENCH_DATA_DIR/timeseries/{train,test}.ctf (common.ensure_data
# accepts the folder when its stamp says "synth timeseries seed=1").
export BENCH_DATA_DIR="$OUT/data-$DATASET"
DATA="$BENCH_DATA_DIR/timeseries"
mkdir -p "$DATA"

echo "== building seed_bench (release)"
(cd "$ROOT" && cargo build --release --example seed_bench -q)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/seed_bench"

if [ "$DATASET" = builtin ]; then
    "$BIN" --write-builtin "$DATA"
    case " $SKIP " in *" torch "*) ;; *) echo "(PyTorch left out: its script only knows synth.py's data)"; SKIP="$SKIP torch" ;; esac
else
    python3 "$SB/data/synth.py" timeseries "$DATA"
fi
printf 'synth timeseries seed=1\n' > "$DATA/.stamp"
sha256sum "$DATA/train.ctf" "$DATA/test.ctf"

TORCH_PY="${ANCHORS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/anchors-venv}/bin/python"
case " $SKIP " in *" torch "*) ;; *)
    [ -x "$TORCH_PY" ] || bash "$SB/torch/setup.sh" ;;
esac

run() { # name round command...
    local name="$1" r="$2"; shift 2
    local log="$OUT/$name.$r.log"
    echo "== $name round $r  (load $(cut -d' ' -f1-3 /proc/loadavg))"
    flock /tmp/bench.lock "$@" > "$log" 2>&1 || { echo "$name failed, see $log"; tail -5 "$log"; return 1; }
    grep '^RESULT' "$log" | tail -1
}

for r in $(seq 1 "$ROUNDS"); do
    run rntk "$r" "$BIN" --train "$DATA/train.ctf" --test "$DATA/test.ctf" --infer-seconds 2 --profile
    case " $SKIP " in *" cntk "*) ;; *)
        run cntk "$r" "$SB/cntk/py" "$SB/cntk/seed_rnn.py" --threads 1 --eval-seconds 3 ;;
    esac
    case " $SKIP " in *" torch "*) ;; *)
        run torch "$r" "$TORCH_PY" "$SB/torch/seed_rnn.py" --variant padded --epoch-unit sequences \
            --epoch-size 12434 --threads "$TORCH_THREADS" ;;
    esac
done

python3 - "$OUT" "$ROUNDS" <<'EOF'
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def results(name):
    rs = []
    for r in range(1, rounds + 1):
        p = os.path.join(out, '%s.%d.log' % (name, r))
        if os.path.exists(p):
            lines = [l for l in open(p) if l.startswith('RESULT ')]
            if lines:
                rs.append(json.loads(lines[-1][7:]))
    return rs
rows = {}
for name, wall, metric in (('rntk', 'train_seconds', 'test_metric'),
                           ('cntk', 'train_seconds', 'test_metric'),
                           ('torch', 'wall_s', 'test_mse')):
    rs = results(name)
    if rs:
        rows[name] = (statistics.median(r[wall] for r in rs), [r[wall] for r in rs],
                      [r[metric] for r in rs], rs)
print()
print('%-6s %12s  %-28s %s' % ('impl', 'median wall', 'runs (s)', 'test metric per run'))
for k, (m, ws, ms, _) in rows.items():
    print('%-6s %10.3f s  %-28s %s' % (k, m, ' '.join('%.3f' % w for w in ws), ' '.join('%.6f' % x for x in ms)))
if 'rntk' in rows:
    peers = [rows[k][0] for k in ('cntk', 'torch') if k in rows]
    if peers:
        print('rntk speed-up vs the faster peer: %.2fx (target >= 10x)' % (min(peers) / rows['rntk'][0]))
    rs = rows['rntk'][3]
    print('rntk inference: 1 sequence %.2f us (median of run medians), 256 sequences %.1f us'
          % (statistics.median(r['infer_1seq_us'] for r in rs), statistics.median(r['infer_256seq_us'] for r in rs)))
EOF
