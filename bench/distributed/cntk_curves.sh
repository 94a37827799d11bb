#!/usr/bin/env bash
# The real CNTK 2.7's distributed learners on the loss-curve runs of curves.sh (the oracle
# for the 1-bit SGD gap): 1 worker, 2 workers 32-bit, 1-bit SGD, 1-bit with a warm start.
#   bash bench/distributed/cntk_curves.sh OUTDIR DATADIR
# DATADIR holds lm/ and slots/ (synth.py; curves.sh's OUTDIR/data). Needs
# ../shared/bench/cntk (SHARED=/work/shared by default) and Open MPI; writes
# OUTDIR/<workload>-<mode>.json for plot.py's third argument.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?OUTDIR}
data=${2:?DATADIR}
py=${SHARED:-/work/shared}/bench/cntk/py
mkdir -p "$out"
mpirun=(mpirun -np 2 --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS=1)
s=bench/distributed/cntk_curves.py
run() { # name, then the command (a result already there is kept)
    local name=$1; shift
    [ -s "$out/$name.json" ] && return 0
    echo "== $name" >&2
    "$@" --merge-prefix "$out/$name" 2>"$out/$name.err" | grep -a '^RESULT ' | sed 's/^RESULT //' > "$out/$name.json"
    rm -f "$out/$name.rank"* "$out/$name.err"
}
for w in slots lm; do
    warm=$([ "$w" = lm ] && echo 14000 || echo 20000)   # 20 minibatches
    run "$w-single" env OMP_NUM_THREADS=1 "$py" $s "$w" "$data/$w" --mode single
    run "$w-dp" "${mpirun[@]}" "$py" $s "$w" "$data/$w" --mode dp
    run "$w-1bit" "${mpirun[@]}" "$py" $s "$w" "$data/$w" --mode 1bit
    run "$w-1bit-warm" "${mpirun[@]}" "$py" $s "$w" "$data/$w" --mode 1bit --distributed-after "$warm"
done
