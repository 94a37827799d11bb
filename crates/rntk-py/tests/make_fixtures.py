"""Records the real CNTK 2.7's output of the tutorial ports (tests/tutorials/*.py, and
tests/variants/*.py by name) as fixtures. Run with the CNTK oracle:
``shared/bench/cntk/py tests/make_fixtures.py [NAME ...]``.

For each script: its stdout (``fixtures/<name>.cntk.txt``), run as written in a fresh
temporary directory. rntk draws CNTK's random numbers from ``set_fixed_random_seed``, so
the tests compare rntk's output with these directly."""

from __future__ import print_function

import io
import os
import runpy
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TUT = os.path.join(HERE, 'tutorials')
VAR = os.path.join(HERE, 'variants')
FIX = os.path.join(HERE, 'fixtures')


def record(name):
    # cntk.tests.test_utils imports pytest (for its own fixtures only); the oracle's
    # Python has none, and the tutorials only call set_device_from_pytest_env.
    import types
    sys.modules.setdefault('pytest', types.ModuleType('pytest'))
    sys.modules['pytest'].fixture = lambda *a, **k: (a[0] if a and callable(a[0]) else (lambda f: f))
    cwd = os.getcwd()
    tmp = tempfile.mkdtemp()
    os.chdir(tmp)
    buf = io.StringIO()
    old = sys.stdout
    sys.stdout = buf
    try:
        path = os.path.join(TUT, name + '.py')
        if not os.path.exists(path):
            path = os.path.join(VAR, name + '.py')
        runpy.run_path(path, run_name='__main__')
    finally:
        sys.stdout = old
        os.chdir(cwd)
        shutil.rmtree(tmp)
    with open(os.path.join(FIX, name + '.cntk.txt'), 'w') as f:
        f.write(buf.getvalue())
    print(name, 'recorded:', len(buf.getvalue().splitlines()), 'lines')


if __name__ == '__main__':
    names = sys.argv[1:] or sorted(f[:-3] for f in os.listdir(TUT) if f.endswith('.py'))
    for n in names:
        record(n)
