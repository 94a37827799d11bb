"""``Value`` and ``NDArrayView`` (CNTK's ``cntk.core``)."""

from . import _np as np

from . import _rntk

__all__ = ['Value', 'NDArrayView', 'asarray', 'asvalue', 'user_function']


class Value(object):
    """Minibatch data for a variable. ``Value.one_hot(batch, num_classes)`` makes sparse
    one-hot sequences; ``Value(batch=array)`` wraps dense data."""

    def __new__(cls, shape=None, dtype=None, batch=None, seq_starts=None, device=None):
        if batch is not None:
            return np.asarray(batch, dtype=np.float32 if dtype is None else dtype)
        raise NotImplementedError('Value(shape=...) without batch: not in rntk')

    @staticmethod
    def one_hot(batch, num_classes, dtype=None, device=None):
        """Sparse one-hot data: ``batch`` is a list of sequences of class indices."""
        dt = 'float64' if dtype is not None and np.dtype(dtype) == np.float64 else 'float32'
        seqs = [list(map(int, np.asarray(s).reshape(-1))) for s in batch]
        return _rntk.Value.one_hot(seqs, int(num_classes), dt, True)

    @staticmethod
    def create(var, data, seq_starts=None, device=None, read_only=False):
        return _rntk.convert(var._v, data)


class NDArrayView(object):
    """A dense array (CNTK's NDArrayView) — numpy arrays are used directly in rntk."""

    @staticmethod
    def from_dense(np_array, device=None, read_only=False, borrow=False):
        return np.asarray(np_array)

    from_data = from_dense


def asarray(variable, value):
    return np.asarray(value)


def asvalue(variable, value):
    return value


def user_function(*args, **kwargs):
    raise NotImplementedError('user_function: Python-defined ops are not supported by rntk')
