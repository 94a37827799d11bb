"""Start-up cost of the package: ``import rntk`` and the seed program do not import numpy
(about 0.1 s of CPU per process) or other modules they do not need; ``rntk._np`` stands
in for numpy until something hands rntk numpy data."""

import os
import subprocess
import sys

import numpy as np

import timeseries_data
from conftest import SCRIPTS
from rntk import _np


def _modules_after(code, cwd=None):
    p = subprocess.run([sys.executable, '-c', code + '\nimport sys\nprint(" ".join(sorted(sys.modules)))'],
                       cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return set(p.stdout.splitlines()[-1].split())


def test_import_rntk_does_not_import_numpy_or_inspect():
    mods = _modules_after('import rntk, rntk.compat')
    assert 'rntk' in mods
    for m in ('numpy', 'inspect', 'importlib.abc', 'importlib.resources'):
        assert m not in mods, m


def test_seed_program_runs_without_numpy(tmp_path):
    timeseries_data.write(str(tmp_path))
    script = os.path.join(SCRIPTS, 'seed_program.py')
    mods = _modules_after('import rntk.compat\nrntk.compat.main([%r])' % script, cwd=str(tmp_path))
    assert 'numpy' not in mods


def test_lazy_numpy_is_numpy():
    assert _np.float32 is np.float32 and _np.asarray is np.asarray
    for x in (3, 2.5, True, 'a', b'b', np.int64(4), np.float32(1.5), (1, 2), [3], np.zeros(2), None):
        assert _np.is_scalar(x) == np.isscalar(x), x
    assert _np.is_array(np.zeros(2)) and not _np.is_array([1.0]) and not _np.is_array(3)
