#!/usr/bin/env python3
"""Summary of bench/distributed/scaling.sh: per workload and setting, every repeat's load,
wall samples/s, samples per CPU-second (all processes) and communication time per
minibatch (rank 0, time inside the collectives), and the 2-vs-1 ratios of the medians.
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
    rows.setdefault((w, n, mode), []).append(r)
for w in ['seed', 'lm', 'slots']:
    base = rows.get((w, '1', 'single'))
    if not base:
        continue
    b_wall = statistics.median(r['samples_per_s'] for r in base)
    b_cpu = statistics.median(r['samples_per_cpu_s'] for r in base)
    for (ww, n, mode), rs in sorted(rows.items()):
        if ww != w:
            continue
        wall = statistics.median(r['samples_per_s'] for r in rs)
        cpu = statistics.median(r['samples_per_cpu_s'] for r in rs)
        comm = statistics.median(1000 * r['comm_seconds'] / r['minibatches'] for r in rs)
        loads = ', '.join('%.1f' % r['load_before'] for r in rs)
        each = ', '.join('%.0f' % r['samples_per_s'] for r in rs)
        print('%-5s %s %-6s wall %8.0f samples/s (%s; %.2fx)  per CPU-s %8.0f (%.2fx)  '
              'comm %.3f ms/mb  load %s'
              % (w, n, mode, wall, each, wall / b_wall, cpu, cpu / b_cpu, comm, loads))
