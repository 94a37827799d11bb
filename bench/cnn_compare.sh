#!/usr/bin/env bash
# P4 (tutorial 103D LeNet on 28x28 digits) and P5 (ResNet-20 on 32x32 colour images) (issue
# 15): rntk vs CNTK 2.7 vs PyTorch training throughput in images/s, plus inference at
# batch 1 and 64, in one session, each run under `flock /tmp/bench.lock`, runs interleaved
# (round 1: every program on lenet, then on resnet20; round 2: ...), then medians.
#
#   bench/cnn_compare.sh                        # 3 rounds, peers at 1 and 2 threads
#   ROUNDS=5 PEER_THREADS="2" bench/cnn_compare.sh
#   BENCHES=resnet20 SKIP=cntk bench/cnn_compare.sh
#
# Every program trains the same model with the same settings on random images held in
# memory (speed does not depend on content): rntk `cnn_bench lenet|resnet20 --infer`
# (examples/cnn_bench.rs), CNTK `bench/cntk/bench_cnn.py --model M --threads T --infer`,
# PyTorch `bench/torch/bench_cnn.py --model M --threads T --infer` (float32, oneDNN). The
# first 3 minibatches are not timed; LeNet times 60 minibatches of 64, ResNet-20 8.
# Peak RSS is VmHWM (rntk) or /usr/bin/time's maximum RSS (peers).
#
# Environment: SHARED_BENCH (default ../shared/bench from the repository root), OUT
# (default ${XDG_CACHE_HOME:-~/.cache}/rntk-bench-out/cnn), CARGO_TARGET_DIR,
# PEER_THREADS (default "1 2"), RNTK_THREADS (default "2"), SKIP ("cntk torch" to leave
# peers out), BENCHES ("lenet resnet20"). The table goes to $OUT/table.md and stdout.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SB="${SHARED_BENCH:-$ROOT/../shared/bench}"
if [ ! -d "$SB" ] && [ -z "${SHARED_BENCH:-}" ]; then
    SB="$(cd "$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir)/.." && pwd)/../shared/bench"
fi
SB="$(cd "$SB" && pwd)"
ROUNDS="${ROUNDS:-3}"
OUT="${OUT:-${XDG_CACHE_HOME:-$HOME/.cache}/rntk-bench-out/cnn}"
PEER_THREADS="${PEER_THREADS:-1 2}"
RNTK_THREADS="${RNTK_THREADS:-2}"
SKIP="${SKIP:-}"
BENCHES="${BENCHES:-lenet resnet20}"
mkdir -p "$OUT"
rm -f "$OUT"/*.log

echo "== building cnn_bench (release)"
(cd "$ROOT" && cargo build --release -p rntk --example cnn_bench -q)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/cnn_bench"

TORCH_PY="${ANCHORS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/anchors-venv}/bin/python"
case " $SKIP " in *" torch "*) ;; *)
    [ -x "$TORCH_PY" ] || bash "$SB/torch/setup.sh" ;;
esac

run() { # log-name command...
    local log="$OUT/$1.log"; shift
    echo "== $(basename "$log" .log)  (load $(cut -d' ' -f1-3 /proc/loadavg))"
    flock /tmp/bench.lock /usr/bin/time -f 'MAXRSS_KIB %M' "$@" > "$log" 2>&1 \
        || { echo "failed, see $log"; tail -5 "$log"; return 0; }
    grep -oE '"images_per_s": ?[0-9.]+' "$log" | tail -1 || true
}

for r in $(seq 1 "$ROUNDS"); do
    for b in $BENCHES; do
        for t in $RNTK_THREADS; do
            RAYON_NUM_THREADS="$t" run "rntk.$b.t$t.$r" "$BIN" "$b" --infer
        done
        for t in $PEER_THREADS; do
            case " $SKIP " in *" cntk "*) ;; *)
                run "cntk.$b.t$t.$r" "$SB/cntk/py" "$SB/cntk/bench_cnn.py" --model "$b" --threads "$t" --infer ;;
            esac
            case " $SKIP " in *" torch "*) ;; *)
                run "torch.$b.t$t.$r" "$TORCH_PY" "$SB/torch/bench_cnn.py" --model "$b" --threads "$t" --infer ;;
            esac
        done
    done
done

python3 - "$OUT" <<'EOF' | tee "$OUT/table.md"
import collections, glob, json, os, re, statistics, sys
out = sys.argv[1]
runs = collections.defaultdict(list)
for p in sorted(glob.glob(os.path.join(out, '*.log'))):
    m = re.match(r'(rntk|cntk|torch)\.(lenet|resnet20)\.t(\d+)\.(\d+)\.log$', os.path.basename(p))
    if not m:
        continue
    text = open(p).read()
    res = [l for l in text.splitlines() if l.startswith('RESULT ')]
    if not res:
        continue
    r = json.loads(res[-1][7:])
    rss = re.findall(r'MAXRSS_KIB (\d+)', text)
    runs[(m.group(2), m.group(1), int(m.group(3)))].append({
        'ips': r['images_per_s'], 'cpu_ms': r.get('cpu_per_image_ms', float('nan')),
        'b1': r.get('infer_b1_ms', float('nan')), 'b64': r.get('infer_b64_ms', float('nan')),
        'rss': int(rss[-1]) / 1024 if rss else float('nan'), 'loss': r.get('last_loss')})
med = lambda xs: statistics.median(xs) if xs else float('nan')
for bench in ('lenet', 'resnet20'):
    keys = sorted(k for k in runs if k[0] == bench)
    if not keys:
        continue
    print('\n### %s\n' % bench)
    print('| impl | threads | images/s median (runs) | CPU ms per image | infer batch 1 ms | infer batch 64 ms | peak RSS MiB | last loss |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|')
    for k in keys:
        rs = runs[k]
        print('| %s | %d | %.1f (%s) | %.2f | %.3f | %.2f | %.0f | %s |' % (
            k[1], k[2], med([x['ips'] for x in rs]), ', '.join('%.0f' % x['ips'] for x in rs),
            med([x['cpu_ms'] for x in rs]), med([x['b1'] for x in rs]), med([x['b64'] for x in rs]),
            med([x['rss'] for x in rs]), rs[-1]['loss']))
    best = lambda impl: max([med([x['ips'] for x in runs[k]]) for k in keys if k[1] == impl] or [float('nan')])
    peers = [p for p in (best('cntk'), best('torch')) if p == p]
    if peers and best('rntk') == best('rntk'):
        print('\nrntk (best thread count) / faster peer (best thread count): %.2fx' % (best('rntk') / max(peers)))
EOF
