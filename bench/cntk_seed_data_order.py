"""Run the peer's seed program (../shared/bench/cntk/seed_rnn.py) with the training
source's randomization seed set from DATA_SEED (seed_rnn.py leaves CNTK's default, 0,
so its --seed changes only the initial weights). For BENCHMARKS.md: how much the
test metric depends on the data order.

    DATA_SEED=3 ../shared/bench/cntk/py bench/cntk_seed_data_order.py SEED_RNN_PY [args...]
"""
import os
import runpy
import sys

import cntk.io

_orig_init = cntk.io.MinibatchSource.__init__


def _seeded(self, *args, **kwargs):
    if kwargs.get('randomize'):
        kwargs.setdefault('randomization_seed', int(os.environ.get('DATA_SEED', '0')))
    _orig_init(self, *args, **kwargs)


cntk.io.MinibatchSource.__init__ = _seeded
script = sys.argv[1]
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name='__main__')
