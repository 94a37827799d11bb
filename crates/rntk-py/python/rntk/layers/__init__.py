"""CNTK's Layers library (``cntk.layers``). A layer is a deferred ``Function``: calling it
on a Variable applies it (creating its parameters the first time, sharing them after).
``with default_options(...)`` sets defaults that layer constructors read, innermost first;
an explicit argument always wins."""

import contextlib
import numpy as np

from .. import _rntk
from ..variables import Variable, Parameter, Constant, sanitize_input, _wrap_var
from ..ops.functions import Function
from ..ops import placeholder, splice, sequence
from .. import initializer as _initializer
from ..initializer import glorot_uniform, _to_init
from . import typing
from .typing import Tensor, SparseTensor, Sequence, SequenceOver, Signature, ParameterTensor

__all__ = ['default_options', 'default_options_for', 'Dense', 'Embedding', 'LSTM', 'GRU', 'RNNStep',
           'RNNUnit', 'Recurrence', 'RecurrenceFrom', 'Fold', 'UnfoldFrom', 'Dropout', 'Stabilizer',
           'LayerNormalization', 'BatchNormalization', 'Sequential', 'For', 'Label', 'Delay',
           'Activation', 'identity', 'ResNetBlock', 'SequentialClique', 'Convolution',
           'Convolution1D', 'Convolution2D', 'Convolution3D', 'ConvolutionTranspose',
           'ConvolutionTranspose1D', 'ConvolutionTranspose2D', 'ConvolutionTranspose3D',
           'MaxPooling', 'AveragePooling', 'GlobalMaxPooling', 'GlobalAveragePooling',
           'MaxUnpooling', 'AttentionModel', 'Tensor', 'SparseTensor', 'Sequence', 'SequenceOver',
           'Signature', 'Function', 'placeholder', 'glorot_uniform', 'Parameter', 'Constant',
           'splice', 'sequence', 'typing']

# ---------------------------------------------------------------- default_options
_stack = []
_defaults = {}


class _Sentinel(object):
    def __repr__(self):
        return 'default_override_or(...)'


def _opt(name, explicit, builtin, layer=None):
    """The value of option ``name``: the explicit argument, else the innermost
    ``default_options`` that sets it (and applies to ``layer``), else ``builtin``."""
    if explicit is not _NOT:
        return explicit
    for scope, only in reversed(_stack):
        if name in scope and (only is None or layer in only):
            return scope[name]
    return builtin


_NOT = _Sentinel()


@contextlib.contextmanager
def default_options(**kwargs):
    """``with default_options(init=..., activation=..., initial_state=..., ...):``"""
    _stack.append((kwargs, None))
    try:
        yield
    finally:
        _stack.pop()


@contextlib.contextmanager
def default_options_for(functions, **kwargs):
    """Defaults read only by the given layer constructors."""
    if not isinstance(functions, (list, tuple)):
        functions = [functions]
    names = set(getattr(f, '__name__', str(f)) for f in functions)
    _stack.append((kwargs, names))
    try:
        yield
    finally:
        _stack.pop()


def _activation(a):
    """What the Rust layers take: a name, or a callable on ``_rntk.Var``."""
    if a is None or a is identity:
        return 'identity'
    n = getattr(a, '_rntk_activation', None)
    if n:
        return n
    from .. import ops
    if a is ops.softmax:
        return 'softmax'
    if a is ops.leaky_relu:
        return 'leaky_relu'

    def call(h):
        return sanitize_input(a(Variable(h)))
    return call


def _layer(pylayer, name='', op='layer'):
    """A deferred Function applying an ``_rntk.Layer``."""
    def apply(x):
        return Function._from_var(pylayer.apply(sanitize_input(x)))
    f = Function._deferred_of(apply, lambda: pylayer.parameters(), name or op)
    f._layer = pylayer
    return f


def identity(keep):
    return keep


# ---------------------------------------------------------------- layers
def Dense(shape, activation=_NOT, init=_NOT, input_rank=None, map_rank=None, bias=_NOT,
          init_bias=_NOT, name=''):
    """Fully connected: ``activation(x · W + b)``."""
    shp = [int(shape)] if np.isscalar(shape) else [int(s) for s in shape]
    act = _opt('activation', activation, None, 'Dense')
    ini = _opt('init', init, glorot_uniform(), 'Dense')
    l = _rntk.dense(shp, _activation(act), _to_init(ini), bool(_opt('bias', bias, True, 'Dense')),
                    float(_opt('init_bias', init_bias, 0.0, 'Dense')), input_rank, map_rank, name)
    return _layer(l, name, 'Dense')


def Embedding(shape=None, init=_NOT, weights=None, name=''):
    """A lookup table: one-hot (or sparse) input times E."""
    ini = _opt('init', init, glorot_uniform(), 'Embedding')
    shp = None if shape is None else ([int(shape)] if np.isscalar(shape) else [int(s) for s in shape])
    w = None if weights is None else np.asarray(weights, dtype=np.float32)
    return _layer(_rntk.embedding(shp, _to_init(ini), w, name), name, 'Embedding')


class _StepFunction(Function):
    """A recurrent step (LSTM, GRU, RNNStep) for ``Recurrence``/``Fold``; called
    directly as ``step(h, [c,] x)`` it builds one step."""

    def __init__(self, step, name):
        self._init_deferred(self._apply, lambda: step.parameters(), name)
        self._step = step

    def _apply(self, *args):
        hs = [sanitize_input(a) for a in args]
        outs = self._step.step(hs[:-1], hs[-1])
        return Function(_rntk.combine(outs, ''))


def _cell(kind, layer_name, shape, cell_shape, activation, use_peepholes, init, init_bias,
          enable_self_stabilization, name):
    act = _opt('activation', activation, None, layer_name)
    a = None if act is None else _activation(act)
    ini = _opt('init', init, glorot_uniform(), layer_name)
    s = _rntk.recurrent_step(kind, int(shape), cell_shape, a,
                             bool(_opt('use_peepholes', use_peepholes, False, layer_name)),
                             _to_init(ini), float(_opt('init_bias', init_bias, 0.0, layer_name)),
                             bool(_opt('enable_self_stabilization', enable_self_stabilization, False,
                                       layer_name)), name)
    return _StepFunction(s, name)


def LSTM(shape, cell_shape=None, activation=_NOT, use_peepholes=_NOT, init=_NOT, init_bias=_NOT,
         enable_self_stabilization=_NOT, name=''):
    """The LSTM step (CNTK's gate order [i, g, f, o], one bias)."""
    return _cell('lstm', 'LSTM', shape, cell_shape, activation, use_peepholes, init, init_bias,
                 enable_self_stabilization, name)


def GRU(shape, cell_shape=None, activation=_NOT, init=_NOT, init_bias=_NOT,
        enable_self_stabilization=_NOT, name=''):
    """The GRU step."""
    return _cell('gru', 'GRU', shape, cell_shape, activation, False, init, init_bias,
                 enable_self_stabilization, name)


def RNNStep(shape, cell_shape=None, activation=_NOT, init=_NOT, init_bias=_NOT,
            enable_self_stabilization=_NOT, name=''):
    """The plain RNN step (sigmoid by default, as CNTK)."""
    return _cell('rnn_step', 'RNNStep', shape, cell_shape, activation, False, init, init_bias,
                 enable_self_stabilization, name)


def RNNUnit(*args, **kwargs):
    raise NameError("name 'RNNUnit' is not defined (CNTK 2.7 raises the same; use RNNStep)")


def _initial_state(v):
    if isinstance(v, (Variable, Function)):
        return sanitize_input(v)
    if isinstance(v, (tuple, list)):
        return [_initial_state(x) for x in v]
    if isinstance(v, np.ndarray):
        raise ValueError('initial_state: wrap a numpy array in C.Constant (as CNTK requires)')
    return float(v)


def _scan(step_function, go_backwards, initial_state, return_full_state, name, fold):
    layer = 'Fold' if fold else 'Recurrence'
    if not isinstance(step_function, _StepFunction):
        raise NotImplementedError(
            '%s over a Python step function: not yet in rntk; use LSTM, GRU or RNNStep' % layer)
    gb = bool(_opt('go_backwards', go_backwards, False, layer))
    init = _initial_state(_opt('initial_state', initial_state, 0.0, layer))
    l = _rntk.recurrence(step_function._step, gb, init, fold, name)

    def apply(x):
        xv = sanitize_input(x)
        if return_full_state:
            return Function(_rntk.combine(l.apply_full(xv), name))
        return Function._from_var(l.apply(xv))
    f = Function._deferred_of(apply, lambda: l.parameters(), name or layer)
    f._layer = l
    return f


def Recurrence(step_function, go_backwards=_NOT, initial_state=_NOT, return_full_state=False, name=''):
    """Scan a step over the sequence axis: one output per step."""
    return _scan(step_function, go_backwards, initial_state, return_full_state, name, False)


def Fold(folder_function, go_backwards=_NOT, initial_state=_NOT, return_full_state=False, name=''):
    """Scan a step over the sequence axis and keep only the final state."""
    return _scan(folder_function, go_backwards, initial_state, return_full_state, name, True)


def RecurrenceFrom(step_function, go_backwards=_NOT, return_full_state=False, name=''):
    raise NotImplementedError('RecurrenceFrom: not exposed in rntk\'s Python package yet '
                              '(rntk::layers::RecurrenceFrom exists in Rust)')


def UnfoldFrom(generator_function, until_predicate=None, length_increase=1, name=''):
    raise NotImplementedError('UnfoldFrom: not exposed in rntk\'s Python package yet '
                              '(rntk::layers::UnfoldFrom exists in Rust)')


def AttentionModel(*args, **kwargs):
    raise NotImplementedError('AttentionModel: not in rntk yet')


def Dropout(dropout_rate=None, keep_prob=None, seed=None, name=''):
    """Dropout during training (identity at evaluation)."""
    if dropout_rate is None and keep_prob is None:
        raise ValueError('Dropout: either dropout_rate or keep_prob must be specified')
    s = None if seed in (None, _initializer._SEED_SENTINEL) else int(seed)
    return _layer(_rntk.dropout_layer(None if dropout_rate is None else float(dropout_rate),
                                      None if keep_prob is None else float(keep_prob), s, name),
                  name, 'Dropout')


def Stabilizer(steepness=4, enable_self_stabilization=_NOT, name=''):
    en = bool(_opt('enable_self_stabilization', enable_self_stabilization, True, 'Stabilizer'))
    return _layer(_rntk.stabilizer(float(steepness), en, name), name, 'Stabilizer')


def LayerNormalization(initial_scale=1, initial_bias=0, epsilon=_NOT, name=''):
    eps = float(_opt('epsilon', epsilon, 1e-5, 'LayerNormalization'))
    return _layer(_rntk.layer_normalization(float(initial_scale), float(initial_bias), eps, name),
                  name, 'LayerNormalization')


def BatchNormalization(map_rank=_NOT, init_scale=1, normalization_time_constant=_NOT,
                       blend_time_constant=0, epsilon=_NOT, use_cntk_engine=_NOT,
                       disable_regularization=_NOT, name=''):
    mr = _opt('map_rank', map_rank, None, 'BatchNormalization')
    ntc = float(_opt('normalization_time_constant', normalization_time_constant, 5000,
                     'BatchNormalization'))
    eps = float(_opt('epsilon', epsilon, 1e-5, 'BatchNormalization'))
    return _layer(_rntk.batch_normalization(None if mr is None else int(mr), float(init_scale), ntc,
                                            float(blend_time_constant), eps, name),
                  name, 'BatchNormalization')


def Delay(T=1, initial_state=_NOT, name=''):
    init = float(_opt('initial_state', initial_state, 0.0, 'Delay'))
    return _layer(_rntk.delay_layer(int(T), init, name), name, 'Delay')


def Label(name):
    return _layer(_rntk.label(name), name, 'Label')


def Activation(activation=_NOT, name=''):
    act = _opt('activation', activation, None, 'Activation')
    if act is None or act is identity:
        return Sequential([], name)

    def apply(x):
        r = act(x)
        return r if isinstance(r, Function) else Function._from_var(sanitize_input(r))
    return Function._deferred_of(apply, lambda: [], name or 'Activation')


def _apply_item(item, args):
    """Apply one element of a Sequential to the current value(s)."""
    if isinstance(item, list):
        return _apply_item(Sequential(item), args)
    if isinstance(item, tuple):
        # parallel branches: each gets the same input; several outputs result
        outs = []
        for sub in item:
            r = _apply_item(sub, args)
            outs.extend(r.outputs if isinstance(r, Function) else [r])
        return tuple(outs)
    if item is None or item is identity:
        return args[0] if len(args) == 1 else tuple(args)
    return item(*args)


def Sequential(layers, name=''):
    """Apply ``layers`` one after the other (lists nest, tuples branch)."""
    if not isinstance(layers, (list, tuple)):
        layers = [layers]
    layers = list(layers)

    def apply(*args):
        cur = args
        for l in layers:
            r = _apply_item(l, cur)
            cur = r if isinstance(r, tuple) else (r,)
        if len(cur) == 1:
            r = cur[0]
            return r if isinstance(r, Function) else Function._from_var(sanitize_input(r))
        return Function(_rntk.combine([sanitize_input(c) for c in cur], name))

    def params():
        out = []
        for l in layers:
            if isinstance(l, Function):
                out.extend(p._v for p in l.parameters)
        return out
    f = Function._deferred_of(apply, params, name or 'Sequential')
    f._layers = layers
    return f


def For(what_range, constructor, name=''):
    """``Sequential`` of ``constructor(i)`` (or ``constructor()``) for each i."""
    import inspect
    takes = len(inspect.signature(constructor).parameters) > 0
    layers = [constructor(i) if takes else constructor() for i in what_range]
    return Sequential(layers, name)


def SequentialClique(functions, name=''):
    raise NotImplementedError('SequentialClique: not in rntk yet')


def ResNetBlock(f, name=''):
    def apply(x):
        return f(x) + x
    return Function._deferred_of(apply, lambda: [p._v for p in f.parameters], name or 'ResNetBlock')


def _issue15(what):
    def ctor(*args, **kwargs):
        raise NotImplementedError('%s: convolution and pooling layers are not in rntk yet '
                                  '(issue 15, convolutional networks, lands them in the core)' % what)
    ctor.__name__ = what
    return ctor


Convolution = _issue15('Convolution')
Convolution1D = _issue15('Convolution1D')
Convolution2D = _issue15('Convolution2D')
Convolution3D = _issue15('Convolution3D')
ConvolutionTranspose = _issue15('ConvolutionTranspose')
ConvolutionTranspose1D = _issue15('ConvolutionTranspose1D')
ConvolutionTranspose2D = _issue15('ConvolutionTranspose2D')
ConvolutionTranspose3D = _issue15('ConvolutionTranspose3D')
MaxPooling = _issue15('MaxPooling')
AveragePooling = _issue15('AveragePooling')
GlobalMaxPooling = _issue15('GlobalMaxPooling')
GlobalAveragePooling = _issue15('GlobalAveragePooling')
MaxUnpooling = _issue15('MaxUnpooling')
