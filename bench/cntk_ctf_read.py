#!/usr/bin/env python3
"""CNTK 2.7's CTF reader on the ctf_bench files: MinibatchSource(randomize=False,
max_sweeps=1) with a trivial consumer, one thread. Prints wall and CPU time.

    /work/shared/bench/cntk/py bench/cntk_ctf_read.py dense  /path/dense.ctf  [--threads 1]
    /work/shared/bench/cntk/py bench/cntk_ctf_read.py sparse /path/sparse.ctf
"""
from __future__ import print_function
import os, resource, sys, time
import cntk as C
from cntk.io import CTFDeserializer, MinibatchSource, StreamDefs, StreamDef

kind, path = sys.argv[1], sys.argv[2]
threads = int(sys.argv[sys.argv.index('--threads') + 1]) if '--threads' in sys.argv else 1
C.cntk_py.set_max_num_cputhreads(threads)
if kind == 'dense':
    sd = StreamDefs(features=StreamDef(field='features', shape=40),
                    labels=StreamDef(field='labels', shape=10))
else:
    sd = StreamDefs(features=StreamDef(field='features', shape=10000, is_sparse=True),
                    labels=StreamDef(field='labels', shape=10000, is_sparse=True))
t0 = time.time()
c0 = time.process_time()
src = MinibatchSource(CTFDeserializer(path, sd), randomize=False, max_sweeps=1)
samples = seqs = 0
while True:
    mb = src.next_minibatch(2048)
    if not mb:
        break
    d = mb[src.streams.features]
    samples += d.num_samples
    seqs += d.num_sequences
    del mb, d
wall = time.time() - t0
cpu = time.process_time() - c0
mib = os.path.getsize(path) / 1048576.0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print('cntk %s %s: %.1f MiB wall %.2f s (%.0f MiB/s) cpu %.2f s (%.0f MiB/s); %d sequences %d samples; threads %d; peak RSS %.0f MiB'
      % (kind, path, mib, wall, mib / wall, cpu, mib / cpu, seqs, samples, threads, rss))
