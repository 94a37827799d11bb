"""``Trainer`` (CNTK's ``cntk.train.Trainer``): ``train_minibatch`` goes straight to Rust."""

from .. import _rntk
from ..ops.functions import Function
from ..variables import Variable

__all__ = ['Trainer']


def _var(x):
    if x is None:
        return None
    if isinstance(x, Function):
        return x._f.outputs()[0]
    return x._v


def _criterion(criterion):
    if isinstance(criterion, (tuple, list)):
        loss = criterion[0]
        metric = criterion[1] if len(criterion) > 1 else None
        return _var(loss), _var(metric)
    if isinstance(criterion, Function):
        outs = criterion._f.outputs()
        return outs[0], (outs[1] if len(outs) > 1 else None)
    return _var(criterion), None


def _list(x):
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


class Trainer(object):
    """``Trainer(model, criterion, parameter_learners, progress_writers=None)``:
    ``criterion`` is ``(loss, metric)``, ``(loss, None)``, a loss, or a Function with a
    loss and a metric output; learners and writers a list or a single object."""

    def __init__(self, model, criterion, parameter_learners, progress_writers=None):
        loss, metric = _criterion(criterion)
        self._learners = _list(parameter_learners)
        self._writers = _list(progress_writers)
        self._model = model
        self._loss, self._metric = loss, metric
        self._t = _rntk.Trainer(_var(model) if model is not None else None, loss, metric,
                                [l._l for l in self._learners], [w._w for w in self._writers])
        self._tm = self._t.train_minibatch

    def train_minibatch(self, arguments, outputs=None, device=None, is_sweep_end=None):
        """One update on the minibatch; ``True`` if a learner updated (with ``outputs``:
        ``(True, {output: value})``)."""
        return self._tm(arguments, outputs, is_sweep_end)

    def test_minibatch(self, arguments, device=None):
        """The average metric over the minibatch (no update)."""
        return self._t.test_minibatch(arguments)

    previous_minibatch_loss_average = property(lambda self: self._t.previous_minibatch_loss_average)
    previous_minibatch_evaluation_average = property(
        lambda self: self._t.previous_minibatch_evaluation_average)
    previous_minibatch_sample_count = property(lambda self: self._t.previous_minibatch_sample_count)
    total_number_of_samples_seen = property(lambda self: self._t.total_number_of_samples_seen)

    @property
    def model(self):
        return self._model

    @property
    def loss_function(self):
        return Function._from_var(self._loss)

    @property
    def evaluation_function(self):
        return None if self._metric is None else Function._from_var(self._metric)

    @property
    def parameter_learners(self):
        return self._learners

    def summarize_training_progress(self):
        self._t.summarize_training_progress()

    def summarize_test_progress(self):
        self._t.summarize_test_progress()

    def _checkpoint_model(self):
        m = self._model if self._model is not None else self.loss_function
        return m._f if isinstance(m, Function) else Function._from_var(m._v)._f

    def save_checkpoint(self, filename, external_state={}):
        """The model at ``filename``, trainer state at ``filename.ckp``."""
        self._t.save_checkpoint(str(filename), self._checkpoint_model())

    def restore_from_checkpoint(self, filename):
        self._t.restore_from_checkpoint(str(filename), self._checkpoint_model())
        return {}

    def print_node_timing(self):
        pass
