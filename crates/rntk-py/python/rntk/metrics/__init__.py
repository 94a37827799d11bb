"""Metrics (CNTK's ``cntk.metrics``)."""

from .. import _rntk
from ..variables import _wrap_output, _operands
from ..losses import fmeasure

__all__ = ['classification_error', 'ndcg_at_1', 'edit_distance_error', 'fmeasure']


def classification_error(output_vector, target_vector, axis=-1, topN=1, name=''):
    """1 where the arg-max of the output misses the target (``topN``: not among the top N)."""
    o, t = _operands(output_vector, target_vector)
    return _wrap_output(_rntk.classification_error(o, t, int(axis), int(topN)), name)


def ndcg_at_1(output, gain, group, name=''):
    return _wrap_output(_rntk.ndcg_at_1(*_operands(output, gain, group)), name)


def edit_distance_error(*args, **kwargs):
    raise NotImplementedError('edit_distance_error: not in rntk yet')
