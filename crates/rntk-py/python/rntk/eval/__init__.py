"""``Evaluator`` (CNTK's ``cntk.eval``)."""

from .. import _rntk
from ..train.trainer import _var, _list

__all__ = ['Evaluator']


class Evaluator(object):
    """Averages a metric over test minibatches and reports to progress writers."""

    def __init__(self, eval_function, progress_writers=None):
        self._writers = _list(progress_writers)
        v = _var(eval_function)
        self._t = _rntk.Trainer(None, v, None, [], [w._w for w in self._writers])

    def test_minibatch(self, arguments, device=None):
        return self._t.test_minibatch(arguments)

    def summarize_test_progress(self):
        self._t.summarize_test_progress()
