#!/usr/bin/env bash
# Workloads P2 lm and P3 slots (issue #7): rntk vs CNTK 2.7 vs PyTorch, trained on the
# same synth.py data in one session, each run under `flock /tmp/bench.lock`, runs
# interleaved (round 1: every program on lm, then on slots; round 2: ...), then medians.
#
#   bench/workloads_compare.sh                  # 3 rounds, peers at 1 and 2 threads
#   ROUNDS=5 PEER_THREADS="1" bench/workloads_compare.sh
#   BENCHES=slots SKIP=torch bench/workloads_compare.sh
#
# rntk: `workload_bench lm|slots` (examples/workload_bench.rs) with CNTK's settings
# (learner, minibatch sizes, 3 untimed + 50 / 80 timed minibatches) on the CTF files;
# RNTK_THREADS (default "2") sets RAYON_NUM_THREADS. CNTK: bench/cntk/bench_{lm,slots}.py
# --threads T on the same files ($BENCH_DATA_DIR). PyTorch: bench/torch/bench_{lm,slots}.py
# --threads T (its own settings: SGD lr 1 for lm over one sweep, Adam for slots over 10
# epochs; same synth.py data, in memory). samples/s are label time steps per second of
# the timed part; peak RSS is VmHWM (rntk) or /usr/bin/time's maximum RSS (peers).
#
# Environment: SHARED_BENCH (default ../shared/bench from the repository root), OUT
# (default ${XDG_CACHE_HOME:-~/.cache}/rntk-bench-out/workloads), CARGO_TARGET_DIR,
# PEER_THREADS (default "1 2"), SKIP ("cntk torch" to leave peers out), BENCHES ("lm slots").
# The table goes to $OUT/table.md and stdout.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SB="${SHARED_BENCH:-$ROOT/../shared/bench}"
if [ ! -d "$SB" ] && [ -z "${SHARED_BENCH:-}" ]; then
    # a git worktree elsewhere: ../shared/bench beside the main checkout
    SB="$(cd "$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir)/.." && pwd)/../shared/bench"
fi
SB="$(cd "$SB" && pwd)"
ROUNDS="${ROUNDS:-3}"
OUT="${OUT:-${XDG_CACHE_HOME:-$HOME/.cache}/rntk-bench-out/workloads}"
PEER_THREADS="${PEER_THREADS:-1 2}"
RNTK_THREADS="${RNTK_THREADS:-2}"
SKIP="${SKIP:-}"
BENCHES="${BENCHES:-lm slots}"
mkdir -p "$OUT"

# CNTK's scripts read $BENCH_DATA_DIR/<name>/{train,test}.ctf (common.ensure_data accepts
# the folder when its stamp says "synth <name> seed=1").
export BENCH_DATA_DIR="$OUT/data"
for b in $BENCHES; do
    mkdir -p "$BENCH_DATA_DIR/$b"
    python3 "$SB/data/synth.py" "$b" "$BENCH_DATA_DIR/$b"
    printf 'synth %s seed=1\n' "$b" > "$BENCH_DATA_DIR/$b/.stamp"
    sha256sum "$BENCH_DATA_DIR/$b/train.ctf" "$BENCH_DATA_DIR/$b/test.ctf"
done

echo "== building workload_bench (release)"
(cd "$ROOT" && cargo build --release --example workload_bench -q)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/workload_bench"

TORCH_PY="${ANCHORS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/anchors-venv}/bin/python"
case " $SKIP " in *" torch "*) ;; *)
    [ -x "$TORCH_PY" ] || bash "$SB/torch/setup.sh" ;;
esac

run() { # log-name command...
    local log="$OUT/$1.log"; shift
    echo "== $(basename "$log" .log)  (load $(cut -d' ' -f1-3 /proc/loadavg))"
    flock /tmp/bench.lock /usr/bin/time -f 'MAXRSS_KIB %M' "$@" > "$log" 2>&1 \
        || { echo "failed, see $log"; tail -5 "$log"; return 0; }
    grep -oE '"samples_per_s": ?[0-9.]+' "$log" | tail -1  || true
}

for r in $(seq 1 "$ROUNDS"); do
    for b in $BENCHES; do
        D="$BENCH_DATA_DIR/$b"
        for t in $RNTK_THREADS; do
            RAYON_NUM_THREADS="$t" run "rntk.$b.t$t.$r" "$BIN" "$b" "$D/train.ctf" "$D/test.ctf" --quiet
        done
        for t in $PEER_THREADS; do
            case " $SKIP " in *" cntk "*) ;; *)
                run "cntk.$b.t$t.$r" "$SB/cntk/py" "$SB/cntk/bench_$b.py" --threads "$t" ;;
            esac
            case " $SKIP " in *" torch "*) ;; *)
                run "torch.$b.t$t.$r" "$TORCH_PY" "$SB/torch/bench_$b.py" --threads "$t" ;;
            esac
        done
    done
done

python3 - "$OUT" <<'EOF' | tee "$OUT/table.md"
import collections, glob, json, os, re, statistics, sys
out = sys.argv[1]
runs = collections.defaultdict(list)
for p in sorted(glob.glob(os.path.join(out, '*.log'))):
    m = re.match(r'(rntk|cntk|torch)\.(lm|slots)\.t(\d+)\.(\d+)\.log$', os.path.basename(p))
    if not m:
        continue
    text = open(p).read()
    res = [l for l in text.splitlines() if l.startswith('RESULT ')]
    if not res:
        continue
    r = json.loads(res[-1][7:])
    rss = re.findall(r'MAXRSS_KIB (\d+)', text)
    load = r.get('loadavg_1min')
    if load is None and r.get('env', {}).get('loadavg'):
        load = r['env']['loadavg'][0]
    # samples per CPU-second of the timed part (all threads): steadier than wall time on
    # a shared machine. PyTorch reports its own CPU use only as an average over the
    # loop (own_cpus), so its value is approximate.
    if r.get('cpu_seconds'):
        cps = r['samples'] / r['cpu_seconds']
    elif r.get('load', {}).get('own_cpus'):
        cps = r['timed_samples'] / (r['load']['own_cpus'] * r['timed_s'])
    else:
        cps = float('nan')
    runs[(m.group(2), m.group(1), int(m.group(3)))].append({
        'cps': cps,
        'sps': r['samples_per_s'], 'loss': r.get('final_loss_mean10', r.get('final_loss')),
        'test': r.get('test_loss'), 'rss': int(rss[-1]) / 1024 if rss else float('nan'),
        'load': load, 'samples': r.get('samples', r.get('timed_samples'))})
med = lambda xs: statistics.median(xs) if xs else float('nan')
for bench in ('lm', 'slots'):
    keys = sorted(k for k in runs if k[0] == bench)
    if not keys:
        continue
    print('\n### %s\n' % bench)
    print('| impl | threads | samples/s median (runs) | samples per CPU-second | peak RSS MiB | final loss (mean of last 10 / torch: its own) | test loss | timed samples | load (1 min) |')
    print('|---|---:|---|---:|---:|---:|---:|---:|---|')
    best = {}
    for k in keys:
        rs = runs[k]
        s = med([x['sps'] for x in rs])
        best.setdefault(k[1], 0.0)
        best[k[1]] = max(best[k[1]], s)
        print('| %s | %d | **%.0f** (%s) | %.0f | %.0f | %.4f | %s | %s | %s |' % (
            k[1], k[2], s, ', '.join('%.0f' % x['sps'] for x in rs), med([x['cps'] for x in rs]),
            med([x['rss'] for x in rs]),
            med([x['loss'] for x in rs]),
            '%.4f' % med([x['test'] for x in rs]) if rs[0]['test'] is not None else '-',
            rs[0]['samples'], ', '.join('%.1f' % x['load'] for x in rs if x['load'] is not None)))
    peers = [best[p] for p in ('cntk', 'torch') if p in best]
    if 'rntk' in best and peers:
        print('\nrntk (best thread count) / faster peer (best thread count), medians: **%.2fx**' % (best['rntk'] / max(peers)))
        # the same ratio within each round (runs of one round ran minutes apart), then the median
        per_round = []
        for i in range(min(len(v) for k, v in runs.items() if k[0] == bench)):
            b = lambda impl: max(runs[k][i]['sps'] for k in keys if k[1] == impl)
            per_round.append(b('rntk') / max(b(p) for p in ('cntk', 'torch') if p in best))
        print('per-round ratios: %s; median **%.2fx**' % (', '.join('%.2f' % x for x in per_round), med(per_round)))
EOF
