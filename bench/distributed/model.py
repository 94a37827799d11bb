#!/usr/bin/env python3
"""Issue #17: a model on paper of data-parallel scaling over N machines.
    python3 bench/distributed/model.py [P1_SPS P2_SPS P3_SPS]
Per minibatch, each worker computes m/N samples at r samples/s (the measured
single-process, 1-thread rate) and then exchanges the gradient:
  * ring all-reduce of 32-bit gradients: 2 (N-1)/N * 4 P bytes per worker, plus
    2 (N-1) latencies of 20 us;
  * rntk's 1-bit SGD (an all-gather of every worker's 1-bit message, then a local sum):
    (N-1) * Q bytes received per worker, Q = P/8 + 8 bytes per column, plus (N-1) latencies;
  * CNTK's 1-bit SGD (reduce-scatter + all-gather of 1-bit shards): 2 (N-1)/N * Q.
Without overlap, efficiency = compute / (compute + exchange); a workload stops scaling
where the exchange time passes the compute time (efficiency < 50%)."""
import sys

LAT = 20e-6
# name, parameters, 1-bit columns (elements / last axis, summed), minibatch samples as the
# trainer and the measured rates count them (labels): the seed model has one label per
# sequence, and its minibatch of 140 time steps holds ~18 sequences of 3-14 steps
work = [
    ("P1 seed", 1036, 1 + 15 + 1 + 15 + 1, 18),
    ("P2 lm", 4_651_600, 10000 + 2 * (200 + 200 + 1) + 200 + 1, 700),
    ("P3 slots", 721_479, 943 + 150 + 300 + 1 + 300 + 1, 1000),
]
rates = [float(x) for x in sys.argv[1:4]] if len(sys.argv) > 3 else [20000.0, 2500.0, 6000.0]

def ring(bytes_, n):
    return 2 * (n - 1) / n * bytes_, 2 * (n - 1)

print("| workload | params | 32-bit grad | N | compute/mb | " + " | ".join(
    f"{g} Gb/s: 32-bit / rntk 1-bit / CNTK 1-bit" for g in (10, 25, 100)) + " |")
print("|---|---|---|---|---|" + "---|" * 3)
for (name, p, cols, m), r in zip(work, rates):
    full = 4 * p
    q = p / 8 + 8 * cols
    for n in (2, 4, 8, 16, 64):
        comp = m / n / r
        cells = []
        for gbps in (10, 25, 100):
            bw = gbps * 1e9 / 8
            b32, h32 = ring(full, n)
            t32 = b32 / bw + h32 * LAT
            t1 = (n - 1) * q / bw + (n - 1) * LAT
            bc, hc = ring(q, n)
            tc = bc / bw + hc * LAT
            eff = lambda t: 100 * comp / (comp + t)
            cells.append(f"{1e3 * t32:.2f} / {1e3 * t1:.2f} / {1e3 * tc:.2f} ms "
                         f"({eff(t32):.0f}/{eff(t1):.0f}/{eff(tc):.0f}%)")
        print(f"| {name} | {p:,} | {full / 1e6:.1f} MB | {n} | {1e3 * comp:.3f} ms | "
              + " | ".join(cells) + " |")
