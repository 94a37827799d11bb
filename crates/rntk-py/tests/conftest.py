import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, 'scripts')
FIXTURES = os.path.join(HERE, 'fixtures')


def run_compat(script, cwd, args=(), env=None, timeout=600):
    """Run a CNTK script unchanged under ``python -m rntk.compat``; returns stdout."""
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([sys.executable, '-m', 'rntk.compat', os.path.join(SCRIPTS, script)] + list(args),
                       cwd=str(cwd), env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError('%s failed (%d):\n%s\n%s' % (script, p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    return p.stdout


@pytest.fixture
def compat():
    return run_compat
