"""Sequence ops (CNTK's ``cntk.sequence`` / ``cntk.ops.sequence``)."""

from .. import _np as np

from .. import _rntk
from ..variables import Variable, Axis, _wrap_output, sanitize_input, _operands, _axes_handle
from .functions import Function

__all__ = ['input_variable', 'input', 'past_value', 'future_value', 'delay', 'first', 'last',
           'is_first', 'is_last', 'slice', 'reduce_sum', 'reduce_max', 'softmax', 'where',
           'gather', 'scatter', 'broadcast_as', 'unpack']


def input_variable(shape, dtype='float32', needs_gradient=False, is_sparse=False,
                   sequence_axis=Axis.default_dynamic_axis(), name=''):
    """An input with a batch axis and a sequence axis."""
    s = (shape,) if np.is_scalar(shape) else tuple(shape)
    v = Variable.__new__(Variable)
    from ..variables import _dtype_name
    v._v = _rntk.input_variable([int(d) for d in s], _dtype_name(dtype), is_sparse, needs_gradient,
                                sequence_axis._axes, name)
    return v


input = input_variable


def _init(initial_state, x):
    if initial_state is None:
        initial_state = 0.0
    return sanitize_input(initial_state, x.dtype)


def past_value(x, initial_state=None, time_step=1, name=''):
    xv = sanitize_input(x)
    return _wrap_output(_rntk.delay(xv, _init(initial_state, xv), int(time_step)), name)


def future_value(x, initial_state=None, time_step=1, name=''):
    xv = sanitize_input(x)
    return _wrap_output(_rntk.delay(xv, _init(initial_state, xv), -int(time_step)), name)


def delay(x, initial_state=None, time_step=1, name=''):
    xv = sanitize_input(x)
    return _wrap_output(_rntk.delay(xv, _init(initial_state, xv), int(time_step)), name)


def _u(fn, nm):
    def f(x, name=''):
        return _wrap_output(fn(sanitize_input(x)), name)
    f.__name__ = nm
    return f


first = _u(_rntk.seq_first, 'first')
last = _u(_rntk.seq_last, 'last')
is_first = _u(_rntk.seq_is_first, 'is_first')
is_last = _u(_rntk.seq_is_last, 'is_last')
reduce_sum = _u(_rntk.seq_reduce_sum, 'reduce_sum')
reduce_max = _u(_rntk.seq_reduce_max, 'reduce_max')
softmax = _u(_rntk.seq_softmax, 'softmax')


def where(condition, name=''):
    return _wrap_output(_rntk.seq_where(sanitize_input(condition)), name)


def slice(seq, begin_index, end_index, name=''):
    return _wrap_output(_rntk.seq_slice(sanitize_input(seq), int(begin_index), int(end_index)), name)


def gather(seq, condition, new_sequence_axis_typeinfo=None, name=''):
    return _wrap_output(_rntk.seq_gather(*_operands(seq, condition)), name)


def scatter(seq, condition, new_sequence_axis_typeinfo=None, name=''):
    return _wrap_output(_rntk.seq_scatter(*_operands(seq, condition)), name)


def broadcast_as(operand, broadcast_as_operand, name=''):
    return _wrap_output(_rntk.seq_broadcast_as(*_operands(operand, broadcast_as_operand)), name)


def unpack(x, padding_value, no_mask_output=False, name=''):
    a, m = _rntk.seq_unpack(sanitize_input(x), float(padding_value))
    if no_mask_output:
        return _wrap_output(a, name)
    return Function(_rntk.combine([a, m], name))
