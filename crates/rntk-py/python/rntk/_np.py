"""numpy, imported on first use.

``from . import _np as np`` behaves like ``import numpy as np``, except that numpy (about
0.1 s of CPU) is imported only when an attribute is first read. A script that never hands
rntk numpy data — the seed program reads CTF files and trains in Rust — then never pays
for it; a script that does has imported numpy itself already. Each attribute is cached
in this module after its first read, so later reads are plain module lookups."""

import numbers
import sys


def __getattr__(name):
    import numpy
    value = getattr(numpy, name)
    globals()[name] = value
    return value


def loaded():
    """Whether numpy has been imported in this process (by anyone)."""
    return 'numpy' in sys.modules


def is_scalar(x):
    """``np.isscalar(x)``; Python numbers and strings answered without importing numpy
    (a numpy scalar means numpy is loaded already)."""
    if isinstance(x, (numbers.Number, str, bytes)):
        return True
    if not loaded():
        return False
    return (globals().get('isscalar') or __getattr__('isscalar'))(x)


def is_array(x):
    """``isinstance(x, np.ndarray)``: never true before numpy is loaded."""
    if not loaded():
        return False
    return isinstance(x, globals().get('ndarray') or __getattr__('ndarray'))
