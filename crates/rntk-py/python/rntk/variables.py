"""Variables (inputs, parameters, constants, outputs), axes and the operators on them
(CNTK's ``cntk.variables``)."""

from . import _np as np

from . import _rntk

__all__ = ['Variable', 'Parameter', 'Constant', 'Axis', 'Record']


class Record(dict):
    """A dict whose keys read as attributes (CNTK's ``cntk.variables.Record``)."""

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k)

    def __setattr__(self, k, v):
        self[k] = v


def _np_dtype(name):
    return np.float64 if name == 'float64' else np.float32


def _dtype_name(dtype):
    if dtype is None:
        return 'float32'
    if isinstance(dtype, str) and dtype in ('float32', 'float64'):
        return dtype
    d = np.dtype(dtype)
    if d == np.float64:
        return 'float64'
    if d == np.float32:
        return 'float32'
    raise TypeError('rntk computes in float32 or float64, not %s' % d)


class Axis(object):
    """A dynamic axis (CNTK's ``Axis``): the batch axis, the default sequence axis, or a
    named sequence axis (``Axis('inputAxis')``)."""

    _by_name = {}
    _unique = 0

    def __init__(self, name, _kind='sequence'):
        self._name = name
        self._kind = _kind
        if _kind == 'sequence' and name != 'defaultDynamicAxis':
            # CNTK compares axes by name: Axis('dec') made twice is one axis
            h = Axis._by_name.get(name)
            if h is None:
                h = Axis._by_name[name] = _rntk.Axes.sequence(name)
            self._axes = h
        elif _kind == 'sequence':
            self._axes = _rntk.Axes.sequence(None)
        else:
            self._axes = _rntk.Axes.batch()

    name = property(lambda self: self._name)
    is_static_axis = property(lambda self: False)
    is_sequence_axis = property(lambda self: self._kind == 'sequence')
    is_batch_axis = property(lambda self: self._kind == 'batch')

    @staticmethod
    def default_batch_axis():
        return _BATCH

    @staticmethod
    def default_dynamic_axis():
        return _DEFAULT_SEQ

    @staticmethod
    def default_input_variable_dynamic_axes():
        return [_BATCH]

    @staticmethod
    def new_unique_dynamic_axis(name):
        """A new sequence axis, never the same as another (its name is ``name`` with a
        unique number, as CNTK's)."""
        Axis._unique += 1
        return Axis('%s%d' % (name, Axis._unique))

    @staticmethod
    def all_axes():
        return _ALL

    @staticmethod
    def all_static_axes():
        return _ALL_STATIC

    def __eq__(self, other):
        return isinstance(other, Axis) and self._axes == other._axes and self._kind == other._kind

    def __hash__(self):
        return hash((self._kind, self._name))

    def __repr__(self):
        return "Axis('%s')" % self._name


_BATCH = Axis('defaultBatchAxis', 'batch')
_DEFAULT_SEQ = Axis('defaultDynamicAxis')
_ALL = Axis('allAxes', 'all')
_ALL_STATIC = Axis('allStaticAxes', 'all_static')


class _AxesList(list):
    """``var.dynamic_axes``: a list of Axis objects that remembers the exact axes."""

    def __init__(self, items, handle):
        list.__init__(self, items)
        self._handle = handle


def _axes_list(h):
    """Axis objects for an ``_rntk.Axes``."""
    k = h.kind
    if k == 'none':
        items = []
    elif k == 'batch':
        items = [_BATCH]
    else:
        name = h.sequence_axis
        items = [_BATCH, _DEFAULT_SEQ if name == 'defaultDynamicAxis' else _named_axis(name, h)]
    return _AxesList(items, h)


def _named_axis(name, h):
    Axis._by_name.setdefault(name, h)
    a = Axis.__new__(Axis)
    a._name, a._kind, a._axes = name, 'sequence', h
    return a


def _axes_handle(dynamic_axes):
    """``_rntk.Axes`` for CNTK's ``dynamic_axes=`` argument."""
    if dynamic_axes is None:
        return _rntk.Axes.batch()
    if isinstance(dynamic_axes, _AxesList):
        return dynamic_axes._handle
    if isinstance(dynamic_axes, Axis):
        dynamic_axes = [dynamic_axes]
    axes = list(dynamic_axes)
    if not axes:
        return _rntk.Axes.none()
    seq = [a for a in axes if isinstance(a, Axis) and a.is_sequence_axis]
    if len(axes) == 1 and not seq:
        return _rntk.Axes.batch()
    if len(seq) == 1 and len(axes) == 2:
        return seq[0]._axes
    if len(seq) == 1 and len(axes) == 1:
        return seq[0]._axes
    raise ValueError('rntk supports a batch axis and at most one sequence axis, got %r' % (axes,))


def sanitize_input(x, dtype=None):
    """The ``_rntk.Var`` for an operand: a Variable, a one-output Function, or data
    (numpy array, list, number) made into a constant."""
    v = getattr(x, '_v', None)
    if v is not None:
        return v
    if isinstance(x, _rntk.Var):
        return x
    if x is None:
        raise TypeError('an operand is None')
    return _rntk.constant(np.asarray(x), dtype or 'float32', '')


def _dtype_of(*xs):
    for x in xs:
        v = getattr(x, '_v', None)
        if v is not None:
            return v.dtype
        if isinstance(x, _rntk.Var):
            return x.dtype
    return 'float32'


def _operands(*xs):
    dt = _dtype_of(*xs)
    return [sanitize_input(x, dt) for x in xs]


def _wrap_output(h, name=''):
    """The Function whose output ``h`` is (with the user's name applied)."""
    from .ops.functions import Function
    if name:
        h = _rntk.alias(h, name)
    return Function._from_var(h)


class TensorOpsMixin(object):
    """Operators on Variables and Functions (CNTK's ``TensorOpsMixin``)."""

    __slots__ = ()

    def __add__(self, o):
        return _wrap_output(_rntk.plus(*_operands(self, o)))

    def __radd__(self, o):
        return _wrap_output(_rntk.plus(*_operands(o, self)))

    def __sub__(self, o):
        return _wrap_output(_rntk.minus(*_operands(self, o)))

    def __rsub__(self, o):
        return _wrap_output(_rntk.minus(*_operands(o, self)))

    def __mul__(self, o):
        return _wrap_output(_rntk.element_times(*_operands(self, o)))

    def __rmul__(self, o):
        return _wrap_output(_rntk.element_times(*_operands(o, self)))

    def __truediv__(self, o):
        return _wrap_output(_rntk.element_divide(*_operands(self, o)))

    def __rtruediv__(self, o):
        return _wrap_output(_rntk.element_divide(*_operands(o, self)))

    __div__ = __truediv__
    __rdiv__ = __rtruediv__

    def __neg__(self):
        return _wrap_output(_rntk.negate(sanitize_input(self)))

    def __pos__(self):
        return self

    def __abs__(self):
        return _wrap_output(_rntk.abs(sanitize_input(self)))

    def __pow__(self, o):
        return _wrap_output(_rntk.pow(*_operands(self, o)))

    def __rpow__(self, o):
        return _wrap_output(_rntk.pow(*_operands(o, self)))

    def __matmul__(self, o):
        return _wrap_output(_rntk.times(*_operands(self, o)))

    def __rmatmul__(self, o):
        return _wrap_output(_rntk.times(*_operands(o, self)))

    def __lt__(self, o):
        return _wrap_output(_rntk.less(*_operands(self, o)))

    def __le__(self, o):
        return _wrap_output(_rntk.less_equal(*_operands(self, o)))

    def __gt__(self, o):
        return _wrap_output(_rntk.greater(*_operands(self, o)))

    def __ge__(self, o):
        return _wrap_output(_rntk.greater_equal(*_operands(self, o)))

    def __getitem__(self, key):
        """Slicing along static axes: ``x[0:2]``, ``x[:, 1:3]``, ``x[2]``."""
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            # ``...`` stands for the axes the other items leave (204: ``w[..., end]``)
            if sum(1 for k in key if k is Ellipsis) > 1:
                raise IndexError('an index can only have a single ellipsis (...)')
            e = key.index(Ellipsis)
            fill = len(self.shape) - (len(key) - 1)
            if fill < 0:
                raise IndexError('too many indices for a Variable of shape %s' % (self.shape,))
            key = key[:e] + (slice(None),) * fill + key[e + 1:]
        h = sanitize_input(self)
        for axis, k in enumerate(key):
            if isinstance(k, slice):
                if k.start is None and k.stop is None and k.step in (None, 1):
                    continue
                start = 0 if k.start is None else k.start
                stop = 0 if k.stop is None else k.stop
                h = _rntk.slice(h, axis, start, stop, 1 if k.step is None else k.step)
            elif isinstance(k, int):
                h = _rntk.slice(h, axis, k, k + 1 if k != -1 else 0, 1)
            else:
                raise TypeError('a Variable is sliced with ints and slices, got %r' % (k,))
        return _wrap_output(h)


class Variable(TensorOpsMixin):
    """A symbolic variable (CNTK's ``Variable``): an input, an output of a Function, a
    parameter, a constant or a placeholder. Usable as a dict key in feeds."""

    __slots__ = ('_v',)

    def __init__(self, shape=None, dtype='float32', needs_gradient=False, is_sparse=False,
                 dynamic_axes=None, name=''):
        if isinstance(shape, _rntk.Var):
            self._v = shape
            return
        s = () if shape is None else ((shape,) if np.is_scalar(shape) else tuple(shape))
        self._v = _rntk.input_variable(list(s), _dtype_name(dtype), is_sparse, needs_gradient,
                                       _axes_handle(dynamic_axes), name)

    shape = property(lambda self: self._v.shape, doc="The static shape (a tuple).")
    dtype = property(lambda self: _np_dtype(self._v.dtype), doc="numpy.float32 or numpy.float64.")
    name = property(lambda self: self._v.name)
    uid = property(lambda self: self._v.uid)
    is_sparse = property(lambda self: self._v.is_sparse)
    needs_gradient = property(lambda self: self._v.needs_gradient)
    is_input = property(lambda self: self._v.kind == 'input')
    is_output = property(lambda self: self._v.kind == 'output')
    is_parameter = property(lambda self: self._v.kind == 'parameter')
    is_constant = property(lambda self: self._v.kind == 'constant')
    is_placeholder = property(lambda self: self._v.kind == 'placeholder')

    @property
    def dynamic_axes(self):
        """The dynamic axes: ``[]``, ``[batch]`` or ``[batch, sequence]``."""
        return _axes_list(self._v.axes)

    @property
    def owner(self):
        """The Function this variable is an output of (None for leaves)."""
        from .ops.functions import Function
        f = self._v.owner
        return None if f is None else Function(f)

    @property
    def output(self):
        return self

    @property
    def outputs(self):
        return [self]

    def _as_function(self):
        from .ops.functions import Function
        return Function._from_var(self._v)

    def eval(self, arguments=None, outputs=None, device=None, as_numpy=True):
        """Evaluate this variable (an output or a constant)."""
        return self._as_function().eval(arguments, outputs, device, as_numpy)

    def __call__(self, *args, **kwargs):
        return self._as_function()(*args, **kwargs)

    def __eq__(self, other):
        o = getattr(other, '_v', other)
        return isinstance(o, _rntk.Var) and o == self._v

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self._v)

    def __repr__(self):
        kind = {'input': 'Input', 'output': 'Output', 'parameter': 'Parameter',
                'constant': 'Constant', 'placeholder': 'Placeholder'}[self._v.kind]
        return "%s('%s', %s, %s)" % (kind, self.name, self.dynamic_axes and repr(self._v.axes) or '[]',
                                     self.shape)


class Parameter(Variable):
    """A learnable parameter (CNTK's ``Parameter``); ``.value`` reads and assigns it."""

    __slots__ = ()

    def __init__(self, shape=None, init=None, dtype=None, device=None, name=''):
        if isinstance(shape, _rntk.Var):
            self._v = shape
            return
        from .initializer import _to_init
        dt = _dtype_name(dtype)
        if np.is_array(init) or (init is not None and not np.is_scalar(init)
                                             and not hasattr(init, '_i')):
            arr = np.asarray(init)
            self._v = _rntk.parameter_from(arr, dt, name)
            return
        s = () if shape is None else ((shape,) if np.is_scalar(shape) else tuple(shape))
        self._v = _rntk.parameter(list(s), dt, _to_init(0 if init is None else init), name)

    @property
    def value(self):
        """The current value (a numpy array)."""
        return self._v.value()

    @value.setter
    def value(self, v):
        self._v.set_value(np.asarray(v))

    def asarray(self):
        return self._v.value()


class Constant(Variable):
    """A constant tensor (CNTK's ``Constant``)."""

    __slots__ = ()

    def __init__(self, value=None, shape=None, dtype=None, device=None, name=''):
        if isinstance(value, _rntk.Var):
            self._v = value
            return
        dt = _dtype_name(dtype if dtype is not None else
                         (np.asarray(value).dtype if np.is_array(value) and
                          np.asarray(value).dtype == np.float64 else None))
        if value is None:
            value = 0.0
        arr = np.asarray(value, dtype=_np_dtype(dt))
        if shape is not None:
            s = (shape,) if np.is_scalar(shape) else tuple(shape)
            arr = np.broadcast_to(arr, s).copy()
        self._v = _rntk.constant(arr, dt, name)

    @property
    def value(self):
        return self._v.value()

    @value.setter
    def value(self, v):
        self._v.set_value(np.asarray(v))

    def asarray(self):
        return self._v.value()


def _wrap_var(h):
    """The Python object for an ``_rntk.Var``."""
    k = h.kind
    if k == 'parameter':
        return Parameter(h)
    if k == 'constant':
        return Constant(h)
    return Variable(h)
