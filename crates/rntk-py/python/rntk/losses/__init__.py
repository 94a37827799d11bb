"""Losses (CNTK's ``cntk.losses``)."""

from .. import _rntk
from ..variables import _wrap_output, _operands

__all__ = ['cross_entropy_with_softmax', 'squared_error', 'binary_cross_entropy',
           'weighted_binary_cross_entropy', 'cosine_distance', 'cosine_distance_with_negative_samples',
           'lambda_rank', 'hierarchical_softmax_layer', 'nce_loss', 'fmeasure']


def cross_entropy_with_softmax(output_vector, target_vector, axis=-1, name=''):
    """``log Σ exp(o) − t·o`` per sample."""
    o, t = _operands(output_vector, target_vector)
    return _wrap_output(_rntk.cross_entropy_with_softmax(o, t, int(axis)), name)


def squared_error(output, target, name=''):
    """``Σ (o − t)²`` per sample (no ½, no mean)."""
    return _wrap_output(_rntk.squared_error(*_operands(output, target)), name)


def binary_cross_entropy(output, target, name=''):
    return _wrap_output(_rntk.binary_cross_entropy(*_operands(output, target)), name)


def weighted_binary_cross_entropy(output, target, weight, name=''):
    return _wrap_output(_rntk.weighted_binary_cross_entropy(*_operands(output, target, weight)), name)


def cosine_distance(x, y, name=''):
    return _wrap_output(_rntk.cosine_distance(*_operands(x, y)), name)


def cosine_distance_with_negative_samples(*args, **kwargs):
    raise NotImplementedError('cosine_distance_with_negative_samples: not in rntk yet')


def lambda_rank(output, gain, group, name=''):
    return _wrap_output(_rntk.lambda_rank(*_operands(output, gain, group)), name)


def fmeasure(output, target, beta=1, name=''):
    o, t = _operands(output, target)
    return _wrap_output(_rntk.fmeasure(o, t, float(beta)), name)


def hierarchical_softmax_layer(*args, **kwargs):
    raise NotImplementedError('hierarchical_softmax_layer: not in rntk yet')


def nce_loss(*args, **kwargs):
    raise NotImplementedError('nce_loss: not in rntk yet')
