"""Primitive ops (CNTK's ``cntk.ops``), re-exported at the top level. Each takes
Variables, Functions, numpy arrays or numbers and returns a Function."""

from .. import _np as np

from .. import _rntk
from ..variables import Variable, Parameter, Constant, _wrap_output, _operands, sanitize_input, \
    _dtype_name, _axes_handle, Axis
from .functions import Function, CloneMethod, load_model
from . import sequence

__all__ = ['input_variable', 'input', 'placeholder', 'parameter', 'constant', 'combine', 'alias',
           'times', 'times_transpose', 'plus', 'minus', 'element_times', 'element_divide',
           'element_max', 'element_min', 'pow', 'negate', 'sigmoid', 'tanh', 'relu', 'elu',
           'leaky_relu', 'param_relu', 'softplus', 'exp', 'log', 'sqrt', 'square', 'abs',
           'reciprocal', 'floor', 'ceil', 'round', 'sin', 'cos', 'stop_gradient', 'softmax',
           'log_softmax', 'hardmax', 'reduce_sum', 'reduce_mean', 'reduce_max', 'reduce_min',
           'reduce_log_sum_exp', 'splice', 'slice', 'reshape', 'transpose', 'swapaxes', 'clip',
           'element_select', 'dropout', 'one_hot', 'gather', 'equal', 'not_equal', 'less',
           'less_equal', 'greater', 'greater_equal', 'log_add_exp', 'argmax', 'argmin', 'assign',
           'cast', 'convolution', 'convolution_transpose', 'pooling', 'unpooling', 'roipooling',
           'random_sample', 'random_sample_inclusion_frequency', 'MAX_POOLING', 'AVG_POOLING', 'MAX_UNPOOLING',
           'Function', 'CloneMethod', 'load_model', 'sequence', 'past_value', 'future_value',
           'labels_to_graph', 'forward_backward', 'to_sequence', 'sequence']

MAX_POOLING = 0
AVG_POOLING = 1
MAX_UNPOOLING = 0


def _shape(shape):
    if shape is None:
        return ()
    if np.is_scalar(shape):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def input_variable(shape, dtype='float32', needs_gradient=False, is_sparse=False,
                   dynamic_axes=[Axis.default_batch_axis()], name=''):
    """An input with a batch axis (``dynamic_axes`` may add a sequence axis)."""
    from ..layers import _defaults
    if dtype is None:
        dtype = _defaults.get('dtype', 'float32')
    return Variable(_shape(shape), dtype, needs_gradient, is_sparse, dynamic_axes, name)


def input(shape, dtype='float32', needs_gradient=False, is_sparse=False,
          dynamic_axes=[Axis.default_batch_axis()], name=''):
    """Deprecated spelling of ``input_variable``."""
    return input_variable(shape, dtype, needs_gradient, is_sparse, dynamic_axes, name)


def placeholder(shape=None, dynamic_axes=None, name=''):
    """A placeholder. rntk's placeholders need a known shape; without one this returns
    a deferred stand-in that ``@Function`` and ``replace_placeholders`` resolve."""
    if shape is None:
        return _DeferredPlaceholder(name, dynamic_axes)
    axes = _axes_handle(dynamic_axes)
    return Variable(_rntk.placeholder(list(_shape(shape)), 'float32', axes, name))


class _DeferredPlaceholder(object):
    """``C.placeholder()`` without a shape: the variable it is later bound to."""

    def __init__(self, name, dynamic_axes):
        self.name, self.dynamic_axes = name, dynamic_axes

    def __repr__(self):
        return "Placeholder('%s', shape unknown)" % self.name


def parameter(shape=None, init=None, dtype=None, device=None, name=''):
    """A learnable parameter; ``init`` is a number (default 0), an array or an
    initializer; -1 in ``shape`` is inferred at first use."""
    return Parameter(shape, init, dtype, device, name)


def constant(value=None, shape=None, dtype=None, device=None, name=''):
    """A constant tensor."""
    return Constant(value, shape, dtype, device, name)


def combine(*operands, **kw):
    """One Function whose outputs are the given Variables/Functions' outputs."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = operands[0]
    hs = []
    for o in operands:
        if isinstance(o, Function):
            hs.extend(v._v for v in o.outputs)
        else:
            hs.append(sanitize_input(o))
    return Function(_rntk.combine(hs, kw.get('name', '')))


def alias(x, name=''):
    return Function._from_var(_rntk.alias(sanitize_input(x), name))


def _u(fn):
    def op(x, name=''):
        return _wrap_output(fn(sanitize_input(x)), name)
    return op


def _b(fn):
    def op(left, right, name=''):
        return _wrap_output(fn(*_operands(left, right)), name)
    return op


negate = _u(_rntk.negate)
sigmoid = _u(_rntk.sigmoid)
tanh = _u(_rntk.tanh)
relu = _u(_rntk.relu)
elu = _u(_rntk.elu)
softplus = _u(_rntk.softplus)
exp = _u(_rntk.exp)
log = _u(_rntk.log)
sqrt = _u(_rntk.sqrt)
square = _u(_rntk.square)
abs = _u(_rntk.abs)
reciprocal = _u(_rntk.reciprocal)
floor = _u(_rntk.floor)
sin = _u(_rntk.sin)
cos = _u(_rntk.cos)
stop_gradient = _u(_rntk.stop_gradient)
hardmax = _u(_rntk.hardmax)
for _f, _n in [(negate, 'negate'), (sigmoid, 'sigmoid'), (tanh, 'tanh'), (relu, 'relu'), (elu, 'elu'),
               (softplus, 'softplus'), (exp, 'exp'), (log, 'log'), (sqrt, 'sqrt'), (square, 'square'),
               (abs, 'abs'), (reciprocal, 'reciprocal'), (floor, 'floor'), (sin, 'sin'), (cos, 'cos'),
               (stop_gradient, 'stop_gradient'), (hardmax, 'hardmax')]:
    _f.__name__ = _n
    _f.__doc__ = 'Element-wise %s (CNTK: ``C.%s(x, name="")``).' % (_n, _n)
    _f._rntk_activation = _n if _n in ('sigmoid', 'tanh', 'relu', 'softplus', 'elu') else None

plus = _b(_rntk.plus)
minus = _b(_rntk.minus)
element_times = _b(_rntk.element_times)
element_divide = _b(_rntk.element_divide)
element_max = _b(_rntk.element_max)
element_min = _b(_rntk.element_min)
pow = _b(_rntk.pow)
equal = _b(_rntk.equal)
not_equal = _b(_rntk.not_equal)
less = _b(_rntk.less)
less_equal = _b(_rntk.less_equal)
greater = _b(_rntk.greater)
greater_equal = _b(_rntk.greater_equal)
log_add_exp = _b(_rntk.log_add_exp)
times_transpose = _b(_rntk.times_transpose)


def ceil(x, name=''):
    return negate(floor(negate(x)), name)


def round(x, name=''):
    return floor(plus(x, 0.5), name)


def leaky_relu(x, alpha=0.01, name=''):
    return _wrap_output(_rntk.leaky_relu(sanitize_input(x), alpha), name)


def param_relu(alpha, x, name=''):
    """``x`` for x > 0, ``alpha * x`` otherwise, ``alpha`` a parameter."""
    xv = sanitize_input(x)
    pos = relu(Variable(xv))
    neg = element_times(alpha, element_min(Variable(xv), 0.0))
    return plus(pos, neg, name)


def times(left, right, output_rank=1, infer_input_rank_to_map=-1, name=''):
    """Matrix product ``left · right`` contracting ``right``'s leading axes."""
    a, b = _operands(left, right)
    return _wrap_output(_rntk.times(a, b, output_rank, infer_input_rank_to_map), name)


def _axis_arg(axis):
    if axis is None:
        return None
    if isinstance(axis, Axis):
        return axis
    if isinstance(axis, (list, tuple)):
        return [int(a) for a in axis]
    return [int(axis)]


def softmax(x, axis=None, name=''):
    """Softmax along ``axis`` (None: over all static axes)."""
    xv = sanitize_input(x)
    if axis is None and len(xv.shape) > 1:
        shp = xv.shape
        flat = _rntk.reshape(xv, [int(np.prod(shp))])
        return _wrap_output(_rntk.reshape(_rntk.softmax(flat, -1), list(shp)), name)
    return _wrap_output(_rntk.softmax(xv, -1 if axis is None else int(axis)), name)


def log_softmax(x, axis=None, name=''):
    return _wrap_output(_rntk.log_softmax(sanitize_input(x), -1 if axis is None else int(axis)), name)


def _reduce(op):
    def f(x, axis=None, keepdims=True, name=''):
        xv = sanitize_input(x)
        if isinstance(axis, Axis):
            if axis.name == 'allAxes':
                return _wrap_output(_rntk.reduce_all(op if op != 'log_sum_exp' else 'sum', xv), name)
            if axis.is_sequence_axis:
                return getattr(sequence, 'reduce_' + ('sum' if op == 'sum' else 'max'))(Variable(xv), name)
            axis = None
        return _wrap_output(_rntk.reduce(op, xv, _axis_arg(axis), keepdims), name)
    f.__name__ = 'reduce_' + op
    f.__doc__ = 'Reduce (%s) over ``axis`` (None: all static axes; Axis.all_axes(): everything).' % op
    return f


reduce_sum = _reduce('sum')
reduce_mean = _reduce('mean')
reduce_max = _reduce('max')
reduce_min = _reduce('min')
reduce_log_sum_exp = _reduce('log_sum_exp')


def splice(*inputs, **kw):
    """Concatenate along a static ``axis`` (default -1)."""
    axis = kw.get('axis', -1)
    name = kw.get('name', '')
    if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
        inputs = inputs[0]
    return _wrap_output(_rntk.splice(_operands(*inputs), int(axis)), name)


def slice(x, axis, begin_index, end_index, strides=None, name=''):
    if isinstance(axis, (list, tuple)):
        xv = sanitize_input(x)
        for i, a in enumerate(axis):
            xv = _rntk.slice(xv, int(a), int(begin_index[i]), int(end_index[i]),
                             1 if strides is None else int(strides[i]))
        return _wrap_output(xv, name)
    if isinstance(axis, Axis) and axis.is_sequence_axis:
        return sequence.slice(x, begin_index, end_index, name)
    return _wrap_output(_rntk.slice(sanitize_input(x), int(axis), int(begin_index), int(end_index),
                                    1 if strides is None else int(strides)), name)


def reshape(x, shape, begin_axis=None, end_axis=None, name=''):
    s = [int(d) for d in ((shape,) if np.is_scalar(shape) else shape)]
    return _wrap_output(_rntk.reshape(sanitize_input(x), s), name)


def transpose(x, perm=None, name=''):
    xv = sanitize_input(x)
    if perm is None:
        perm = list(range(len(xv.shape)))[::-1]
    return _wrap_output(_rntk.transpose(xv, [int(p) for p in perm]), name)


def swapaxes(x, axis1=0, axis2=1, name=''):
    return _wrap_output(_rntk.swapaxes(sanitize_input(x), int(axis1), int(axis2)), name)


def clip(x, min_value, max_value, name=''):
    a, lo, hi = _operands(x, min_value, max_value)
    return _wrap_output(_rntk.clip(a, lo, hi), name)


def element_select(flag, value_if_true, value_if_false, name=''):
    return _wrap_output(_rntk.element_select(*_operands(flag, value_if_true, value_if_false)), name)


def dropout(x, dropout_rate=0.0, keep_prob=None, seed=None, name=''):
    from .. import initializer
    rate = dropout_rate if keep_prob is None else 1.0 - keep_prob
    s = initializer._next_seed() if seed is None else int(seed)
    return _wrap_output(_rntk.dropout(sanitize_input(x), float(rate), s), name)


def one_hot(x, num_classes, sparse_output=False, axis=-1, name=''):
    return _wrap_output(_rntk.one_hot(sanitize_input(x), int(num_classes)), name)


def gather(reference, indices, axis=None, name=''):
    return _wrap_output(_rntk.gather(*_operands(reference, indices)), name)


def argmax(x, axis=None, name=''):
    raise NotImplementedError('argmax: not an rntk op yet; use hardmax or numpy on eval results')


def argmin(x, axis=None, name=''):
    raise NotImplementedError('argmin: not an rntk op yet')


def assign(ref, input, name=''):
    """CNTK's ``assign(param, value)``: a function whose evaluation copies ``input`` into
    the parameter ``ref``. rntk runs the assignment at ``eval()`` time."""
    return _Assign(ref, input)


class _Assign(object):
    def __init__(self, ref, value):
        self.ref, self.value = ref, value

    def eval(self, arguments=None, *a, **kw):
        v = self.value.eval(arguments) if hasattr(self.value, 'eval') else np.asarray(self.value)
        self.ref.value = np.asarray(v).reshape(self.ref.shape)
        return self.ref.value


def cast(node_input, dtype, name=''):
    xv = sanitize_input(node_input)
    if _dtype_name(dtype) == xv.dtype:
        return alias(Variable(xv), name)
    raise NotImplementedError('cast between float32 and float64 inside a graph: not yet in rntk')


def _axes_list(v, what):
    """A CNTK per-axis argument (a scalar or a tuple/list) as a list, Python axis order."""
    if isinstance(v, (list, tuple)):
        out = list(v)
    else:
        out = [v]
    if not out:
        raise ValueError('%s: needs at least one entry' % what)
    return out


def _pool_kind(pooling_type):
    if pooling_type in (MAX_POOLING, 'max'):
        return 'max'
    if pooling_type in (AVG_POOLING, 'average'):
        return 'average'
    raise ValueError('pooling_type %r: expected C.MAX_POOLING or C.AVG_POOLING' % (pooling_type,))


def convolution(convolution_map, operand, strides=(1,), sharing=[True], auto_padding=[True],
                sequential=False, dilation=(1,), reduction_rank=1, groups=1,
                max_temp_mem_size_in_samples=0, name=''):
    """Convolution of ``operand`` (C, spatial...) with the filter ``convolution_map``
    (O, C/groups, k...). ``strides``, ``auto_padding`` and ``dilation`` are per axis of
    the operand (channel first); a shorter list repeats as in CNTK. ``sequential=True``
    runs the first filter axis along the sequence axis."""
    if not all(_axes_list(sharing, 'sharing')):
        raise ValueError('convolution: sharing=False is not supported (CNTK 2.7 refuses it too)')
    w, x = _operands(convolution_map, operand)
    return _wrap_output(_rntk.convolution(
        w, x, [int(s) for s in _axes_list(strides, 'strides')],
        [bool(p) for p in _axes_list(auto_padding, 'auto_padding')],
        [int(d) for d in _axes_list(dilation, 'dilation')], int(groups), int(reduction_rank),
        bool(sequential), None, False), name)


def convolution_transpose(convolution_map, operand, strides=(1,), sharing=[True],
                          auto_padding=[True], output_shape=None, dilation=(1,), reduction_rank=1,
                          max_temp_mem_size_in_samples=0, name=''):
    """Transposed convolution: ``convolution_map`` is (C, O, k...), the filter of the
    convolution it transposes; ``output_shape`` fixes the output's (spatial) shape."""
    if not all(_axes_list(sharing, 'sharing')):
        raise ValueError('convolution_transpose: sharing=False is not supported')
    w, x = _operands(convolution_map, operand)
    out = None if output_shape is None else [int(s) for s in _shape(output_shape)]
    return _wrap_output(_rntk.convolution(
        w, x, [int(s) for s in _axes_list(strides, 'strides')],
        [bool(p) for p in _axes_list(auto_padding, 'auto_padding')],
        [int(d) for d in _axes_list(dilation, 'dilation')], 1, int(reduction_rank), False, out,
        True), name)


def pooling(operand, pooling_type, pooling_window_shape, strides=(1,), auto_padding=[False],
            ceil_out_dim=False, include_pad=False, name=''):
    """Max or average pooling (``C.MAX_POOLING`` / ``C.AVG_POOLING``) of a window over the
    operand's trailing axes."""
    return _wrap_output(_rntk.pooling(
        sanitize_input(operand), _pool_kind(pooling_type),
        [int(k) for k in _shape(pooling_window_shape)],
        [int(s) for s in _axes_list(strides, 'strides')],
        [bool(p) for p in _axes_list(auto_padding, 'auto_padding')], bool(ceil_out_dim),
        bool(include_pad)), name)


def unpooling(operand, pooling_input, unpooling_type, unpooling_window_shape, strides=(1,),
              auto_padding=[False], name=''):
    """Max unpooling: each value of ``operand`` goes to the first maximum of its window of
    ``pooling_input`` (the input of the max pooling it undoes)."""
    if unpooling_type not in (MAX_UNPOOLING, 'max'):
        raise ValueError('unpooling_type %r: only C.MAX_UNPOOLING exists' % (unpooling_type,))
    u, x = _operands(operand, pooling_input)
    return _wrap_output(_rntk.unpooling(
        u, x, [int(k) for k in _shape(unpooling_window_shape)],
        [int(s) for s in _axes_list(strides, 'strides')],
        [bool(p) for p in _axes_list(auto_padding, 'auto_padding')]), name)


def roipooling(operand, rois, pooling_type, roi_output_shape, spatial_scale, name=''):
    """ROI pooling (Fast R-CNN): each box (x1, y1, x2, y2) of ``rois`` (R, 4) — pixels of
    the original image, mapped onto ``operand`` (C, H, W) by ``spatial_scale`` — max-pooled
    into ``roi_output_shape`` (height, width) bins: (R, C, height, width) per sample.
    Only ``C.MAX_POOLING``, as in CNTK."""
    if _pool_kind(pooling_type) != 'max':
        raise ValueError('roipooling: only C.MAX_POOLING exists (as in CNTK)')
    out = [int(d) for d in _shape(roi_output_shape)]
    if len(out) != 2:
        raise ValueError('roipooling: roi_output_shape %r must be (height, width)'
                         % (roi_output_shape,))
    x, r = _operands(operand, rois)
    return _wrap_output(_rntk.roipooling(x, r, out[0], out[1], float(spatial_scale)), name)


def random_sample(*args, **kwargs):
    raise NotImplementedError('random_sample: not an rntk op yet')


def random_sample_inclusion_frequency(*args, **kwargs):
    raise NotImplementedError('random_sample_inclusion_frequency: not an rntk op yet')


def labels_to_graph(*args, **kwargs):
    raise NotImplementedError('labels_to_graph (CTC/HTK training): not in rntk yet')


def forward_backward(*args, **kwargs):
    raise NotImplementedError('forward_backward (CTC): not in rntk yet')


def to_sequence(*args, **kwargs):
    raise NotImplementedError('to_sequence: not in rntk yet')


past_value = sequence.past_value
future_value = sequence.future_value
