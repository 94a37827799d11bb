"""The table of bench/ab_compare.sh: medians of A (before), B (after) and the peers per
program, B/A, B against the faster peer, the 1-minute load of every run, and whether A
and B printed the same losses (deterministic progress lines and RESULT losses) and the
same minibatch hashes.  Usage: python3 bench/ab_table.py OUT"""
import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1]
med = lambda xs: statistics.median(xs) if xs else float('nan')
# lines that carry timings, loads or sizes of the run rather than its numbers
VOLATILE = re.compile(r'samples/s|wall|time|RSS|load|throughput|inference|MiB|cpu|RESULT|'
                      r'LOAD_BEFORE|TIME_CPU|threads|seconds|\bus\b|primed|slow|first minibatch',
                      re.I)


def runs(prog, impl):
    rs = []
    for p in sorted(glob.glob(os.path.join(out, '%s.%s.*.log' % (prog, impl)))):
        text = open(p).read()
        res = [l for l in text.splitlines() if l.startswith('RESULT ')]
        r = json.loads(res[-1][7:]) if res else {}
        m = re.search(r'LOAD_BEFORE ([0-9.]+)', text)
        r['_load'] = float(m.group(1)) if m else float('nan')
        m = re.search(r'TIME_CPU ([0-9.]+) ([0-9.]+)', text)
        r['_cpu'] = float(m.group(1)) + float(m.group(2)) if m else float('nan')
        r['_text'] = [l for l in text.splitlines() if l.strip() and not VOLATILE.search(l)]
        m = re.search(r'= ([0-9.]+) MiB/s', text) or re.search(r'\(([0-9.]+) MiB/s\)', text)
        r['_mibs'] = float(m.group(1)) if m else float('nan')
        r['_failed'] = not res and not m
        # work per CPU-second: the measure least disturbed by other jobs on a shared machine
        m = re.search(r'cpu [0-9.]+ s \(([0-9.]+) MiB/s\)', text)  # CNTK's reader
        mib = re.search(r': ([0-9.]+) MiB in', text)
        if r.get('cpu_seconds') and r.get('samples'):
            r['_cps'] = r['samples'] / r['cpu_seconds']
        elif r.get('load', {}).get('own_cpus') and r.get('timed_s'):
            r['_cps'] = r['timed_samples'] / (r['load']['own_cpus'] * r['timed_s'])
        elif m:
            r['_cps'] = float(m.group(1))
        elif mib and r['_cpu'] > 0:
            r['_cps'] = float(mib.group(1)) / r['_cpu']
        elif r.get('label_samples') and r['_cpu'] > 0:
            r['_cps'] = r['label_samples'] / r['_cpu']
        else:
            r['_cps'] = float('nan')
        rs.append(r)
    return rs


def fmt(x, digits):
    return ('%.' + str(digits) + 'f') % x if x == x else '-'


def same(prog, keys):
    a, b = runs(prog, 'A'), runs(prog, 'B')
    if not a or not b:
        return 'no runs'
    texts = {tuple(r['_text']) for r in a + b}
    vals = {tuple(r.get(k) for k in keys) for r in a + b}
    if len(texts) == 1 and len(vals) == 1:
        return 'same (%d lines, %s)' % (len(a[0]['_text']), ', '.join(
            '%s %s' % (k, v) for k, v in zip(keys, next(iter(vals)))))
    return 'DIFFERENT: %s' % (vals if len(vals) > 1 else 'progress text')


# (program, value, higher is better, unit, decimals, peers' value, loss keys)
PROGS = [
    ('seed', lambda r: r.get('train_seconds', float('nan')), False, 's (train wall)', 3,
     lambda r: r.get('train_seconds', r.get('wall_s', float('nan'))),
     ['final_epoch_loss', 'test_metric']),
    ('lm', lambda r: r.get('samples_per_s', float('nan')), True, 'samples/s', 0,
     lambda r: r.get('samples_per_s', float('nan')),
     ['final_loss', 'final_loss_mean10', 'test_loss']),
    ('slots', lambda r: r.get('samples_per_s', float('nan')), True, 'samples/s', 0,
     lambda r: r.get('samples_per_s', float('nan')),
     ['final_loss', 'final_loss_mean10', 'test_loss']),
    ('ctfparse-dense', lambda r: r['_mibs'], True, 'MiB/s (1 thread)', 0, None, []),
    ('ctfparse-sparse', lambda r: r['_mibs'], True, 'MiB/s (1 thread)', 0, None, []),
    ('ctfread-dense', lambda r: r['_mibs'], True, 'MiB/s (MinibatchSource)', 0,
     lambda r: r['_mibs'], []),
    ('ctfread-sparse', lambda r: r['_mibs'], True, 'MiB/s (MinibatchSource)', 0,
     lambda r: r['_mibs'], []),
]

print('| program | unit | A before (runs) | B after (runs) | B/A | CNTK 2.7 | PyTorch | B / faster peer | '
      'per CPU-second: A, B (B/A); CNTK | load (1 min) per run | A and B print |')
print('|---|---|---|---|---:|---:|---:|---:|---|---|---|')
for prog, val, higher, unit, d, pval, keys in PROGS:
    a, b = runs(prog, 'A'), runs(prog, 'B')
    if not a and not b:
        continue
    va, vb = [val(r) for r in a], [val(r) for r in b]
    ma, mb = med(va), med(vb)
    ratio = (mb / ma) if higher else (ma / mb)
    peers = {}
    for impl in ('cntk', 'torch'):
        ps = runs(prog, impl)
        if ps and pval:
            peers[impl] = med([pval(r) for r in ps])
    best = [v for v in peers.values() if v == v]
    if best:
        fp = max(best) if higher else min(best)
        vs = (mb / fp) if higher else (fp / mb)
        vs = '%.2fx' % vs
    else:
        vs = '-'
    loads = ', '.join(fmt(r['_load'], 1) for r in a + b + sum(
        (runs(prog, i) for i in ('cntk', 'torch')), []))
    printed = same(prog, keys) if keys else ''
    ca, cb = med([r['_cps'] for r in a]), med([r['_cps'] for r in b])
    cc = med([r['_cps'] for r in runs(prog, 'cntk')])
    print('| %s | %s | **%s** (%s) | **%s** (%s) | %.3f | %s | %s | %s | %s, %s (%.3f); %s | %s | %s |' % (
        prog, unit, fmt(ma, d), ', '.join(fmt(x, d) for x in va), fmt(mb, d),
        ', '.join(fmt(x, d) for x in vb), ratio,
        fmt(peers.get('cntk', float('nan')), d), fmt(peers.get('torch', float('nan')), d), vs,
        fmt(ca, 0), fmt(cb, 0), cb / ca, fmt(cc, 0), loads, printed))
print()
print('B/A > 1: B is faster. Per CPU-second: seed = label samples per CPU-second of the whole '
      'process (reader, training, test pass, a short inference probe); lm/slots = timed samples '
      'per CPU-second of the timed part (all threads); CTF = MiB per CPU-second of the process.')
for k in ('dense', 'sparse'):
    h = {}
    for v in ('A', 'B'):
        p = os.path.join(out, 'hash-%s.%s.txt' % (k, v))
        h[v] = open(p).read().split(': ', 1)[-1].strip() if os.path.exists(p) else '?'
    print('* minibatch hash %s: A %s, B %s: %s' % (k, h['A'], h['B'],
                                                   'same' if h['A'] == h['B'] else 'DIFFERENT'))
failed = [os.path.basename(p) for p in glob.glob(os.path.join(out, '*.log'))
          if not re.search(r'RESULT |MiB/s', open(p).read())]
if failed:
    print('* runs without a result: %s' % ', '.join(sorted(failed)))
