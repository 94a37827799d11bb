"""Initializers (CNTK's ``cntk.initializer``). Each returns an object that a parameter
or layer draws its first value from; without ``seed``, seeds come from the process-wide
sequence that ``cntk_py.set_fixed_random_seed`` restarts."""

from . import _np as np

from . import _rntk

__all__ = ['uniform', 'normal', 'truncated_normal', 'glorot_uniform', 'glorot_normal',
           'he_uniform', 'he_normal', 'xavier', 'bilinear', 'initializer_with_rank',
           'DefaultParamInitScale', 'SentinelValueForInferParamInitRank']

DefaultParamInitScale = 1.0
SentinelValueForInferParamInitRank = 2147483647
_SEED_SENTINEL = 4294967293


class _Init(object):
    """An initializer."""

    def __init__(self, kind, scale, output_rank=None, filter_rank=None, seed=None):
        self.kind, self.scale, self.output_rank, self.filter_rank, self.seed = \
            kind, scale, output_rank, filter_rank, seed
        rank = None if output_rank in (None, SentinelValueForInferParamInitRank) else int(output_rank)
        s = None if seed in (None, -1, _SEED_SENTINEL) else int(seed)
        self._i = _rntk.Init(kind, float(scale), rank, s)

    def __repr__(self):
        return '%s(scale=%s)' % (self.kind, self.scale)

    def __getitem__(self, k):
        return getattr(self, k)


def _next_seed():
    return _rntk.next_seed()


def uniform(scale, seed=None):
    return _Init('uniform', scale, seed=seed)


def normal(scale, output_rank=SentinelValueForInferParamInitRank,
           filter_rank=SentinelValueForInferParamInitRank, seed=None):
    return _Init('normal', scale, seed=seed)


def truncated_normal(stdev, seed=None):
    return _Init('truncated_normal', stdev, seed=seed)


def _fan(kind):
    def f(scale=DefaultParamInitScale, output_rank=SentinelValueForInferParamInitRank,
          filter_rank=SentinelValueForInferParamInitRank, seed=None):
        return _Init(kind, scale, output_rank, filter_rank, seed)
    f.__name__ = kind
    f.__doc__ = 'CNTK\'s %s initializer (fans follow CNTK\'s rank rules).' % kind
    return f


glorot_uniform = _fan('glorot_uniform')
glorot_normal = _fan('glorot_normal')
he_uniform = _fan('he_uniform')
he_normal = _fan('he_normal')
xavier = _fan('xavier')


def bilinear(kernel_width, kernel_height):
    raise NotImplementedError('bilinear initializer: for convolution kernels (issue 15)')


def initializer_with_rank(initializer, output_rank=None, filter_rank=None):
    return _Init(initializer.kind, initializer.scale, output_rank, filter_rank, initializer.seed)


def _to_init(init, dtype='float32'):
    """An ``_rntk.Init`` from CNTK's init forms: a number, an array or an initializer."""
    if isinstance(init, _Init):
        return init._i
    if isinstance(init, _rntk.Init):
        return init
    if init is None:
        return _rntk.Init('glorot_uniform', 1.0, None, None)
    if np.is_scalar(init):
        return _rntk.Init('constant', float(init), None, None)
    return _rntk.Init.array(np.asarray(init), dtype)
