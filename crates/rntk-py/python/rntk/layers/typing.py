"""Type annotations for ``@Signature`` (CNTK's ``cntk.layers.typing``)."""

from .. import _np as np

from .. import _rntk
from ..variables import Variable, Axis

__all__ = ['Tensor', 'SparseTensor', 'Sequence', 'SequenceOver', 'Signature', 'ParameterTensor',
           'SequenceOverTensor']


class _Type(object):
    def __init__(self, shape, sparse=False, axis=None):
        self.shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
        self.is_sparse = sparse
        self.axis = axis

    def _make(self, name):
        from .. import _rntk
        from ..variables import _axes_handle
        axes = _rntk.Axes.batch() if self.axis is None else self.axis._axes
        return Variable(_rntk.input_variable([int(d) for d in self.shape], 'float32', self.is_sparse,
                                             False, axes, name))


class _TensorFactory(object):
    def __init__(self, sparse=False, axis=None):
        self.sparse, self.axis = sparse, axis

    def __getitem__(self, shape):
        return _Type(shape, self.sparse, self.axis)


Tensor = _TensorFactory()
SparseTensor = _TensorFactory(sparse=True)
ParameterTensor = Tensor


class _SequenceOver(object):
    def __init__(self, axis):
        self.axis = axis

    def __getitem__(self, t):
        if isinstance(t, _Type):
            return _Type(t.shape, t.is_sparse, self.axis)
        if isinstance(t, _TensorFactory):
            return _TensorFactory(t.sparse, self.axis)
        raise TypeError('Sequence[...] takes Tensor[...] or SparseTensor[...]')


class _SequenceOverFactory(object):
    def __getitem__(self, axis):
        return _SequenceOver(axis)


Sequence = _SequenceOver(Axis.default_dynamic_axis())
SequenceOver = _SequenceOverFactory()
SequenceOverTensor = Sequence


def _as_type(t):
    if isinstance(t, _Type):
        return t
    if isinstance(t, (int, tuple, list)):
        return _Type(t)
    raise TypeError('a signature type is Tensor[...], SparseTensor[...] or Sequence[...]')


def Signature(*args, **kwargs):
    """``@Signature(Tensor[2], ...)`` before ``@Function``: typed inputs."""
    types = [_as_type(a) for a in args]

    def deco(fn):
        ts = list(types)
        if kwargs:
            # keyword types go to the parameters of those names, in the function's order
            import inspect
            names = list(inspect.signature(fn).parameters)
            unknown = [k for k in kwargs if k not in names[len(ts):]]
            if unknown:
                raise TypeError('Signature: %s has no parameter(s) %s' % (
                    getattr(fn, '__name__', 'the function'), ', '.join(unknown)))
            ts += [_as_type(kwargs[n]) for n in names[len(ts):] if n in kwargs]
        fn.__rntk_signature__ = ts
        return fn
    return deco
