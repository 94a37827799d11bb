"""CNTK's Layers library (``cntk.layers``). A layer is a deferred ``Function``: calling it
on a Variable applies it (creating its parameters the first time, sharing them after).
``with default_options(...)`` sets defaults that layer constructors read, innermost first;
an explicit argument always wins."""

import contextlib
from .. import _np as np

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
           'SequentialConvolution',
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
    shp = [int(shape)] if np.is_scalar(shape) else [int(s) for s in shape]
    act = _opt('activation', activation, None, 'Dense')
    ini = _opt('init', init, glorot_uniform(), 'Dense')
    l = _rntk.dense(shp, _activation(act), _to_init(ini), bool(_opt('bias', bias, True, 'Dense')),
                    float(_opt('init_bias', init_bias, 0.0, 'Dense')), input_rank, map_rank, name)
    return _layer(l, name, 'Dense')


def Embedding(shape=None, init=_NOT, weights=None, name=''):
    """A lookup table: one-hot (or sparse) input times E."""
    ini = _opt('init', init, glorot_uniform(), 'Embedding')
    shp = None if shape is None else ([int(shape)] if np.is_scalar(shape) else [int(s) for s in shape])
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
    if np.is_array(v):
        raise ValueError('initial_state: wrap a numpy array in C.Constant (as CNTK requires)')
    return float(v)


def _shape_of(v):
    if isinstance(v, (Variable, Function)):
        return tuple(v.shape)
    if np.is_array(v):
        return v.shape
    return None


def _python_step(step_function, layer, init=None):
    """A ``_rntk.Step`` over a Python step function ``f(*states, x) -> new states``.
    The state shapes come from the function's typed arguments (``@C.Function`` with
    ``@C.layers.Signature``, or a Function whose arguments have shapes), else from the
    initial states (Constants or Parameters), else they are inferred as CNTK does,
    from what the function returns (rntk runs it once on stand-in states when the
    recurrence is first applied; see ``rntk::layers::probe``)."""
    shapes = None
    if isinstance(step_function, Function) and step_function._f is not None:
        args = step_function.arguments
        if len(args) >= 2:
            shapes = [tuple(a.shape) for a in args[:-1]]
    if shapes is None and init is not None:
        inits = list(init) if isinstance(init, (tuple, list)) else [init]
        got = [_shape_of(v) for v in inits]
        if all(g is not None for g in got):
            shapes = got
    n = len(shapes) if shapes is not None else _count_states(step_function)
    if n <= 0:
        raise ValueError(
            '%s over a Python step function: rntk cannot tell how many states it has; type '
            'the function (@C.Function with @C.layers.Signature(Tensor[n], ..., Tensor[d])) '
            'or give initial_state=C.Constant(np.zeros(shape)) (a tuple for several states)'
            % layer)

    def call(states, x):
        return _outputs_of(step_function(*([Variable(h) for h in states] + [Variable(x)])))

    def params():
        return _step_params(step_function)
    return _rntk.python_step(call, params, None if shapes is None else [list(s) for s in shapes], n)


def _count_states(step_function):
    """The number of states of ``f(*states, x)``: its positional parameters but x."""
    import inspect
    fn = getattr(step_function, '_deferred', None) or step_function
    try:
        ps = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return -1
    if any(p.kind == p.VAR_POSITIONAL for p in ps):
        return -1
    return len([p for p in ps if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]) - 1


def _step_of(step_function, layer, init=None):
    if isinstance(step_function, _StepFunction):
        return step_function._step
    return _python_step(step_function, layer, init)


def _scan(step_function, go_backwards, initial_state, return_full_state, name, fold):
    layer = 'Fold' if fold else 'Recurrence'
    gb = bool(_opt('go_backwards', go_backwards, False, layer))
    init_opt = _opt('initial_state', initial_state, 0.0, layer)
    init = _initial_state(init_opt)
    step = _step_of(step_function, layer, init_opt)
    l = _rntk.recurrence(step, gb, init, fold, name)

    def apply(x):
        xv = sanitize_input(x)
        if return_full_state:
            return Function(_rntk.combine(l.apply_full(xv), name))
        return Function._from_var(l.apply(xv))
    f = Function._deferred_of(apply, lambda: l.parameters(), name or layer)
    f._layer = l
    return f


def Recurrence(step_function, go_backwards=_NOT, initial_state=_NOT, return_full_state=False, name=''):
    """Scan a step over the sequence axis: one output per step. ``step_function`` is
    LSTM/GRU/RNNStep, or a Python function / ``@C.Function`` ``f(*states, x) -> new
    states`` (its state shapes inferred from what it returns, as CNTK does)."""
    return _scan(step_function, go_backwards, initial_state, return_full_state, name, False)


def Fold(folder_function, go_backwards=_NOT, initial_state=_NOT, return_full_state=False, name=''):
    """Scan a step over the sequence axis and keep only the final state."""
    return _scan(folder_function, go_backwards, initial_state, return_full_state, name, True)


def _outputs_of(r):
    """The ``_rntk.Var`` outputs of what a Python graph function returned."""
    if isinstance(r, Function):
        return [o._v for o in r.outputs]
    if isinstance(r, (tuple, list)):
        return [sanitize_input(v) for v in r]
    return [sanitize_input(r)]


def _step_params(step):
    return [p._v for p in step.parameters] if isinstance(step, Function) else []


def RecurrenceFrom(step_function, go_backwards=_NOT, return_full_state=False, name=''):
    """A recurrence whose initial states are inputs: ``RecurrenceFrom(step)(h0, [c0,] x)``.
    An initial state is batch-only (one per sequence) or a sequence on another axis whose
    last item (first when going backwards) is used. ``step`` is LSTM/GRU/RNNStep or a
    Python function ``f(*states, x) -> new states`` (the states take the initial states'
    shapes)."""
    gb = bool(_opt('go_backwards', go_backwards, False, 'RecurrenceFrom'))
    built = []  # (step, _rntk.RecurrenceFrom), made on the first application

    def recurrence(initial_states):
        if not built:
            # a Python step takes its state shapes from the initial states given here
            step = _step_of(step_function, 'RecurrenceFrom', tuple(initial_states))
            built.append((step, _rntk.RecurrenceFrom(step, gb, name)))
        return built[0][1]

    def apply(*args):
        if len(args) < 2:
            raise TypeError('RecurrenceFrom(...) takes the initial state(s) and then x')
        vs = [sanitize_input(a) for a in args]
        outs = recurrence(args[:-1]).apply_from(vs[:-1], vs[-1])
        if return_full_state:
            return Function(_rntk.combine(outs, name))
        return Function._from_var(outs[0])
    def params():
        if built:
            return built[0][0].parameters()
        if isinstance(step_function, _StepFunction):
            return step_function._step.parameters()
        return _step_params(step_function)
    return Function._deferred_of(apply, params, name or 'RecurrenceFrom')


def UnfoldFrom(generator_function, until_predicate=None, length_increase=1, name=''):
    """A generator recurrence: ``UnfoldFrom(g)(initial_state, dynamic_axes_like)`` applies
    ``g`` to the state repeatedly (``g`` returns the output, which is the new state, or
    (output, new_state)), one item per item of ``dynamic_axes_like`` times
    ``length_increase``, stopping after the first item where ``until_predicate`` is 1."""
    def gen(h):
        return _outputs_of(generator_function(Variable(h)))

    def until(h):
        return _outputs_of(until_predicate(Variable(h)))
    u = _rntk.UnfoldFrom(gen, None if until_predicate is None else until,
                         float(length_increase), name)

    def apply(initial_state, dynamic_axes_like):
        return Function._from_var(u.apply_from(sanitize_input(initial_state),
                                               sanitize_input(dynamic_axes_like)))

    def params():
        return _step_params(generator_function) + \
            (_step_params(until_predicate) if until_predicate is not None else [])
    f = Function._deferred_of(apply, params, name or 'UnfoldFrom')
    f._layer = u
    return f


def AttentionModel(attention_dim, attention_span=None, attention_axis=None, init=_NOT,
                   go_backwards=_NOT, enable_self_stabilization=_NOT, name=''):
    """Additive attention (Bahdanau et al.), CNTK 2.7's default mode:
    ``AttentionModel(A)(encoder_hidden_state, decoder_hidden_state)`` gives, for every
    step of the decoder sequence, the attention-weighted sum of the encoder sequence of
    the same batch item (a sequence on the decoder's axis with the encoder's shape).
    Parameters as CNTK's, in its order: ``alpha``, ``W`` (h, A) for the encoder,
    ``alpha``, ``W`` (H, A) for the decoder, ``alpha``, ``W`` (A, 1) for the scores,
    ``alpha`` for the output (the alphas only with ``enable_self_stabilization``).

    Not supported (refused): the deprecated windowed mode (``attention_span`` /
    ``attention_axis``). ``go_backwards`` is accepted and, as in CNTK without a span,
    has no effect. It works on whole decoder sequences and inside a ``Recurrence`` step
    function (tutorial 204: ``attention_model(encoded, h_prev)``, the query per step, the
    encoder's keys and values computed once outside the loop).

    The weights are CNTK's ``attention_weights`` node, shape ``[#, dec][*=T_enc, 1]``
    (per decoder step, the softmax over its encoder sequence, zeros past that
    sequence's end): ``model.attention_model.attention_weights`` or
    ``model.find_by_name('attention_weights')``, evaluated in
    ``C.combine([model, ...])`` as tutorial 204's ``debug_attention`` does, inside a
    recurrence as outside one. rntk computes the scores and weighted sum in one fused
    op; the weights node recomputes the weights with the same kernel only when it is
    evaluated, so the model itself runs as fast as without it. It is a value to look
    at: its free dimension can be returned, not computed with."""
    if attention_span is None:
        if attention_axis is not None:
            raise ValueError('attention_span cannot be None when attention_axis is not None')
    elif attention_span <= 0:
        raise ValueError('attention_span must be a positive value')
    elif attention_axis is None:
        raise ValueError('attention_axis cannot be None when attention_span is not None')
    else:
        raise NotImplementedError(
            'AttentionModel: the windowed mode (attention_span=%r, attention_axis=%r, '
            'deprecated since CNTK 2.2) is not supported by rntk; leave both None for '
            'attention over the whole encoder sequence' % (attention_span, attention_axis))
    ini = _opt('init', init, glorot_uniform(), 'AttentionModel')
    _opt('go_backwards', go_backwards, False, 'AttentionModel')  # no effect without a span
    stab = bool(_opt('enable_self_stabilization', enable_self_stabilization, True,
                     'AttentionModel'))
    att = _rntk.AttentionModel(int(attention_dim), _to_init(ini), stab, name)

    def apply(encoder_hidden_state, decoder_hidden_state):
        return Function._from_var(att.apply(sanitize_input(encoder_hidden_state),
                                            sanitize_input(decoder_hidden_state)))
    f = Function._deferred_of(apply, att.parameters, name or 'AttentionModel')
    f._layer = att
    return f


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
    """The input sequence shifted by ``T`` steps; ``initial_state`` a number, or a
    Variable / Constant (204: ``Delay(initial_state=sentence_start)``)."""
    init = _opt('initial_state', initial_state, 0.0, 'Delay')
    if isinstance(init, (Variable, Function)) or np.is_array(init):
        def apply(x):
            return sequence.delay(x, init, int(T), name)
        return Function._deferred_of(apply, lambda: [], name or 'Delay')
    return _layer(_rntk.delay_layer(int(T), float(init), name), name, 'Delay')


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
        # parallel branches: each gets the same input, or (after several values, as
        # CNTK's >>) value i goes to branch i; several outputs result
        outs = []
        for i, sub in enumerate(item):
            r = _apply_item(sub, (args[i],) if len(args) > 1 else args)
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
            # a Function of several outputs (return_full_state) is a tuple of values
            if isinstance(r, Function) and r._f is not None and len(r.outputs) > 1:
                r = tuple(r.outputs)
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


def _tuple(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v,)


def _filter(op_name, filter_shape, rank):
    """CNTK's filter_shape rules: ``ConvolutionND`` repeats a scalar to N axes and
    refuses more; ``Convolution`` takes the shape as given."""
    fs = _tuple(filter_shape)
    if rank:
        if len(fs) > rank:
            raise ValueError('%s: filter_shape must be a scalar or a %dD tuple, e.g. 3 or %s'
                             % (op_name, rank, (3,) * rank))
        fs = fs * rank if len(fs) == 1 else fs
        if len(fs) != rank:
            raise ValueError('%s: filter_shape %s must have %d axes' % (op_name, fs, rank))
    return [int(k) for k in fs]


def _conv(op_name, rank, filter_shape, num_filters, activation, init, pad, strides, bias,
          init_bias, reduction_rank, dilation, groups, output_shape, name, transpose,
          sequential=False, sharing=True, transpose_weight=False):
    if not all(_tuple(sharing)):
        raise ValueError('%s: sharing=False is not supported' % op_name)
    if transpose_weight:
        raise NotImplementedError('%s(transpose_weight=True): not in rntk' % op_name)
    if reduction_rank not in (0, 1):
        raise ValueError('%s: reduction_rank must be 0 or 1' % op_name)
    fs = _filter(op_name, filter_shape, rank)
    act = _opt('activation', activation, None, op_name)
    ini = _opt('init', init, glorot_uniform(), op_name)
    pd = _opt('pad', pad, False, op_name)
    b = bool(_opt('bias', bias, True, op_name))
    ib = float(_opt('init_bias', init_bias, 0.0, op_name))
    out = None if output_shape is None else [int(s) for s in _tuple(output_shape)]
    l = _rntk.conv_layer(op_name, fs, None if num_filters is None else int(num_filters),
                         _activation(act), _to_init(ini), [bool(p) for p in _tuple(pd)],
                         [int(s) for s in _tuple(strides)], [int(d) for d in _tuple(dilation)],
                         b, ib, int(reduction_rank), int(groups), out, name, bool(sequential))
    return _layer(l, name, op_name)


def Convolution(filter_shape, num_filters=None, sequential=False, activation=_NOT, init=_NOT,
                pad=_NOT, strides=1, sharing=True, bias=_NOT, init_bias=_NOT, reduction_rank=1,
                transpose_weight=False, dilation=1, groups=1, max_temp_mem_size_in_samples=0,
                op_name='Convolution', name=''):
    """N-D convolution over (C, spatial...) inputs: ``activation(conv(W, x) + b)``, W of
    shape (num_filters, C/groups, *filter_shape). ``pad``, ``strides``, ``dilation`` per
    filter axis (a shorter tuple repeats its first entry). ``sequential=True``: the first
    filter axis runs along the sequence axis as CNTK's Layers do it (a window of past and
    future steps, zeros outside the sequence; no stride along it)."""
    return _conv(op_name, 0, filter_shape, num_filters, activation, init, pad, strides, bias,
                 init_bias, reduction_rank, dilation, groups, None, name, False, sequential,
                 sharing, transpose_weight)


def SequentialConvolution(filter_shape, num_filters=None, activation=_NOT, init=_NOT, pad=_NOT,
                          strides=1, sharing=True, bias=_NOT, init_bias=_NOT, reduction_rank=1,
                          transpose_weight=False, dilation=1, groups=1,
                          max_temp_mem_size_in_samples=0, op_name='SequentialConvolution', name=''):
    """Convolution along the sequence axis: ``filter_shape[0]`` runs over the steps of
    each sequence (zero-padded per sequence with ``pad``; ``strides[0]`` shortens the
    sequences), the other axes over each step's (C, spatial...) sample. W has shape
    (num_filters, C, *filter_shape), b (num_filters, 1, ...) with one axis per static
    filter axis."""
    return _conv('SequentialConvolution', 0, filter_shape, num_filters, activation, init, pad,
                 strides, bias, init_bias, reduction_rank, dilation, groups, None, name, False,
                 False, sharing, transpose_weight)


def Convolution1D(filter_shape, num_filters=None, activation=_NOT, init=_NOT, pad=_NOT, strides=1,
                  bias=_NOT, init_bias=_NOT, reduction_rank=1, dilation=1, name=''):
    """1D convolution (``filter_shape`` a scalar or a 1-tuple)."""
    return _conv('Convolution1D', 1, filter_shape, num_filters, activation, init, pad, strides,
                 bias, init_bias, reduction_rank, dilation, 1, None, name, False)


def Convolution2D(filter_shape, num_filters=None, activation=_NOT, init=_NOT, pad=_NOT, strides=1,
                  bias=_NOT, init_bias=_NOT, reduction_rank=1, dilation=1, groups=1, name=''):
    """2D convolution (``filter_shape`` a scalar or a 2-tuple)."""
    return _conv('Convolution2D', 2, filter_shape, num_filters, activation, init, pad, strides,
                 bias, init_bias, reduction_rank, dilation, groups, None, name, False)


def Convolution3D(filter_shape, num_filters=None, activation=_NOT, init=_NOT, pad=_NOT, strides=1,
                  bias=_NOT, init_bias=_NOT, reduction_rank=1, dilation=1, groups=1, name=''):
    """3D convolution (``filter_shape`` a scalar or a 3-tuple)."""
    return _conv('Convolution3D', 3, filter_shape, num_filters, activation, init, pad, strides,
                 bias, init_bias, reduction_rank, dilation, groups, None, name, False)


def ConvolutionTranspose(filter_shape, num_filters, activation=_NOT, init=_NOT, pad=_NOT,
                         strides=1, sharing=True, bias=_NOT, init_bias=_NOT, output_shape=None,
                         reduction_rank=1, dilation=1, max_temp_mem_size_in_samples=0, name=''):
    """Transposed convolution (deconvolution); W of shape (C, num_filters, *filter_shape)."""
    return _conv('ConvolutionTranspose', 0, filter_shape, num_filters, activation, init, pad,
                 strides, bias, init_bias, reduction_rank, dilation, 1, output_shape, name, True,
                 False, sharing)


def ConvolutionTranspose1D(filter_shape, num_filters, activation=_NOT, init=_NOT, pad=_NOT,
                           strides=1, bias=_NOT, init_bias=_NOT, output_shape=None,
                           reduction_rank=1, dilation=1, name=''):
    return _conv('ConvolutionTranspose1D', 1, filter_shape, num_filters, activation, init, pad,
                 strides, bias, init_bias, reduction_rank, dilation, 1, output_shape, name, True)


def ConvolutionTranspose2D(filter_shape, num_filters, activation=_NOT, init=_NOT, pad=_NOT,
                           strides=1, bias=_NOT, init_bias=_NOT, output_shape=None,
                           reduction_rank=1, dilation=1, name=''):
    return _conv('ConvolutionTranspose2D', 2, filter_shape, num_filters, activation, init, pad,
                 strides, bias, init_bias, reduction_rank, dilation, 1, output_shape, name, True)


def ConvolutionTranspose3D(filter_shape, num_filters, activation=_NOT, init=_NOT, pad=_NOT,
                           strides=1, bias=_NOT, init_bias=_NOT, output_shape=None,
                           reduction_rank=1, dilation=1, name=''):
    return _conv('ConvolutionTranspose3D', 3, filter_shape, num_filters, activation, init, pad,
                 strides, bias, init_bias, reduction_rank, dilation, 1, output_shape, name, True)


def _pool(kind, op_name, filter_shape, strides, pad, name):
    window = None
    if filter_shape is not None:
        window = [int(k) for k in _tuple(filter_shape)]
    pd = _opt('pad', pad, False, op_name)
    l = _rntk.pool_layer(kind, window, [int(s) for s in _tuple(strides)],
                         [bool(p) for p in _tuple(pd)], name)
    return _layer(l, name, op_name)


def MaxPooling(filter_shape, strides=1, pad=_NOT, name=''):
    """Max pooling of a window over the trailing axes (stride 1 unless given)."""
    return _pool('max', 'MaxPooling', filter_shape, strides, pad, name)


def AveragePooling(filter_shape, strides=1, pad=_NOT, name=''):
    """Average pooling (padded cells are not counted)."""
    return _pool('average', 'AveragePooling', filter_shape, strides, pad, name)


def GlobalMaxPooling(name=''):
    """(C, spatial...) -> (C, 1, ...): the maximum over each channel."""
    return _pool('max', 'GlobalMaxPooling', None, 1, False, name)


def GlobalAveragePooling(name=''):
    """(C, spatial...) -> (C, 1, ...): the mean over each channel."""
    return _pool('average', 'GlobalAveragePooling', None, 1, False, name)


def MaxUnpooling(filter_shape, strides=1, pad=False, name=''):
    """``MaxUnpooling(...)(u, x)``: ``u`` put at the first maximum of each window of ``x``
    (the input of the max pooling it undoes)."""
    window = [int(k) for k in _tuple(filter_shape)]
    st = [int(s) for s in _tuple(strides)]

    def apply(u, x):
        return Function._from_var(_rntk.max_unpooling(sanitize_input(u), sanitize_input(x),
                                                      window, st, bool(pad), name))
    return Function._deferred_of(apply, lambda: [], name or 'MaxUnpooling')
