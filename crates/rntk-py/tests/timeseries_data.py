"""Solar-like time-series data as CTF (the seed tutorial's shape): each day has 8..20
cumulative readings; each sequence is a prefix of a day (3..14 steps) and its target the
day's total, on the sequence's first row. Deterministic (numpy's legacy RandomState)."""

import os
import sys

import numpy as np


def sequences(n_samples, seed):
    rs = np.random.RandomState(seed)
    xs, ys, total = [], [], 0
    while total < n_samples:
        day_len = rs.randint(8, 21)
        peak = 0.5 + rs.rand()
        readings = np.cumsum(np.sin(np.linspace(0.1, np.pi - 0.1, day_len)) * peak) / 10.0
        for t in range(3, min(14, day_len) + 1):
            if total + t > n_samples:
                t = n_samples - total
                if t < 1:
                    break
            xs.append(readings[:t].astype(np.float32))
            ys.append(np.float32(readings[-1]))
            total += t
            if total >= n_samples:
                break
    return xs, ys


def write_ctf(path, xs, ys):
    with open(path, 'w') as f:
        for i, (x, y) in enumerate(zip(xs, ys)):
            for t, v in enumerate(x):
                if t == 0:
                    f.write('%d\t|features %.6g\t|target %.6g\n' % (i, v, y))
                else:
                    f.write('%d\t|features %.6g\n' % (i, v))


def write(outdir):
    os.makedirs(outdir, exist_ok=True)
    write_ctf(os.path.join(outdir, 'train.ctf'), *sequences(12434, 1))
    write_ctf(os.path.join(outdir, 'test.ctf'), *sequences(2000, 2))


if __name__ == '__main__':
    write(sys.argv[1] if len(sys.argv) > 1 else '.')
