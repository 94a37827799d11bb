"""``Evaluator`` (CNTK's ``cntk.eval``)."""

from .. import _rntk
from ..train.trainer import _var, _list

__all__ = ['Evaluator']


class Evaluator(object):
    """Averages a metric over test minibatches and reports to progress writers.

    As in CNTK, a progress writer counts the test minibatches and samples itself (across
    every Evaluator reporting to it, until a summary), while the metric of a summary is
    the summarizing Evaluator's own sum: tutorial 202 makes a new Evaluator per minibatch
    and prints ``Minibatch[1-9]: metric = <last minibatch's sum / all samples>``, and so
    does rntk. A ``ProgressPrinter(test_freq=n)`` prints CNTK's ``Evaluation
    Minibatch[a-b]: metric = ...`` line every n test minibatches (the writer's window of
    samples, the difference of the evaluator's metric sums)."""

    def __init__(self, eval_function, progress_writers=None):
        self._writers = _list(progress_writers)
        v = _var(eval_function)
        self._t = _rntk.Trainer(None, v, None, [], [])

    def test_minibatch(self, arguments, device=None):
        before = self._t.test_totals[1]
        avg = self._t.test_minibatch(arguments)
        samples = self._t.test_totals[1] - before
        if samples:
            metric = self._t.test_totals[2]
            for w in self._writers:
                n, k = getattr(w, '_test_window', (0, 0))
                w._test_window = (n + samples, k + 1)
                w._w.test_update(metric, n + samples, k + 1)
        return avg

    def summarize_test_progress(self):
        _, _, metric = self._t.test_totals
        self._t.summarize_test_progress()
        for w in self._writers:
            n, k = getattr(w, '_test_window', (0, 0))
            w._test_window = (0, 0)
            w._w.test_summary(metric / n if n else 0.0, n, k)
