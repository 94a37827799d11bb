"""Records the real CNTK 2.7's output of the tutorial ports (tests/tutorials/*.py) as
fixtures. Run with the CNTK oracle: ``shared/bench/cntk/py tests/make_fixtures.py``.

For each script: its stdout (``fixtures/<name>.cntk.txt``), run as written in a fresh
temporary directory, and the initial parameter values CNTK drew (in the order of the
learners' parameters, ``fixtures/<name>.init.npz``), taken when the first Trainer is
made. rntk's tests feed those values to rntk's Trainer (RNTK_TEST_INITIAL_PARAMETERS)
to compare everything but the random draws until rntk draws CNTK's random numbers."""

from __future__ import print_function

import io
import os
import runpy
import shutil
import sys
import tempfile

import numpy as np

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
    import cntk as C
    saved = {}
    orig = C.Trainer.__init__

    def init(self, model, criterion, parameter_learners, progress_writers=None):
        ls = parameter_learners if isinstance(parameter_learners, (list, tuple)) else [parameter_learners]
        if 'values' not in saved:
            ps = [p for l in ls for p in l.parameters]
            saved['values'] = [np.array(p.value) for p in ps]
            saved['shapes'] = [tuple(p.shape) for p in ps]
        orig(self, model, criterion, parameter_learners, progress_writers)
    C.Trainer.__init__ = init
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
        C.Trainer.__init__ = orig
    with open(os.path.join(FIX, name + '.cntk.txt'), 'w') as f:
        f.write(buf.getvalue())
    if 'values' in saved:
        np.savez(os.path.join(FIX, name + '.init.npz'), *saved['values'])
    print(name, 'recorded:', len(buf.getvalue().splitlines()), 'lines,',
          len(saved.get('values', [])), 'parameters')


if __name__ == '__main__':
    names = sys.argv[1:] or sorted(f[:-3] for f in os.listdir(TUT) if f.endswith('.py'))
    for n in names:
        record(n)
