#!/usr/bin/env python3
"""The BENCHMARKS.md table of bench/distributed/scaling.sh: per workload and setting, each
run's load before it and wall samples/s, the medians and their ratio to 1 process, samples
per CPU-second of all processes, and the communication time per minibatch on rank 0.
    python3 bench/distributed/scaling.py OUTDIR"""
import glob
import json
import os
import statistics
import sys

out = sys.argv[1]
rows = {}
for f in sorted(glob.glob(os.path.join(out, '*.json'))):
    name = os.path.basename(f)[:-5]
    try:
        r = json.load(open(f))
    except ValueError:
        continue
    w, n, mode, rep = name.rsplit('-', 3)
    rows.setdefault((w, mode), []).append((int(rep), r))
names = {'seed': 'P1 seed', 'lm': 'P2 lm', 'slots': 'P3 slots'}
label = {'single': '1 process', 'dp': '2 processes, data parallel 32-bit',
         '1bit': '2 processes, 1-bit SGD', 'bm': '2 processes, block momentum'}
print('| workload | setting | load before each run | wall samples/s (each run) | median, vs 1 process '
      '| samples per CPU-second (all processes), vs 1 | comm per minibatch (rank 0) |')
print('|---|---|---|---|---|---|---|')
for w in ['seed', 'lm', 'slots']:
    base = rows.get((w, 'single'))
    if not base:
        continue
    bw = statistics.median(r['samples_per_s'] for _, r in base)
    bc = statistics.median(r['samples_per_cpu_s'] for _, r in base)
    for mode in ['single', 'dp', '1bit', 'bm']:
        rs = sorted(rows.get((w, mode), []), key=lambda x: x[0])
        if not rs:
            continue
        wall = statistics.median(r['samples_per_s'] for _, r in rs)
        cpu = statistics.median(r['samples_per_cpu_s'] for _, r in rs)
        comm = statistics.median(1000 * r['comm_seconds'] / r['minibatches'] for _, r in rs)
        print('| %s | %s | %s | %s | **%.0f** (%.2f×) | %.0f (%.2f×) | %s |' % (
            names[w], label[mode], ', '.join('%.1f' % r['load_before'] for _, r in rs),
            ', '.join('%.0f' % r['samples_per_s'] for _, r in rs), wall, wall / bw, cpu, cpu / bc,
            '–' if mode == 'single' else '%.2f ms' % comm))
