"""Learners and their schedules (CNTK's ``cntk.learners``), the deprecated schedule forms
included. Numerics are rntk's implementation of CNTK 2.7's update rules."""

from .. import _np as np

from .. import _rntk

_INF = float("inf")  # np.inf, without importing numpy for a default

__all__ = ['Learner', 'UnitType', 'IGNORE', 'learning_parameter_schedule',
           'learning_parameter_schedule_per_sample', 'learning_rate_schedule',
           'training_parameter_schedule', 'momentum_schedule', 'momentum_schedule_per_sample',
           'momentum_as_time_constant_schedule', 'sgd', 'momentum_sgd', 'nesterov', 'adam',
           'fsadagrad', 'adagrad', 'adadelta', 'rmsprop', 'universal', 'UserLearner',
           'default_unit_gain_value', 'set_default_unit_gain_value',
           'default_use_mean_gradient_value', 'set_default_use_mean_gradient_value']

IGNORE = 0


class UnitType(object):
    """Deprecated unit of ``learning_rate_schedule``."""
    sample = 'sample'
    minibatch = 'minibatch'


_unit_gain = [True]
_mean_gradient = [False]


def default_unit_gain_value():
    return _unit_gain[0]


def set_default_unit_gain_value(value):
    _unit_gain[0] = bool(value)


def default_use_mean_gradient_value():
    return _mean_gradient[0]


def set_default_use_mean_gradient_value(value):
    _mean_gradient[0] = bool(value)


def _sched(schedule, minibatch_size=None, epoch_size=None):
    if isinstance(schedule, _rntk.Schedule):
        return schedule
    return _rntk.Schedule(schedule, None if minibatch_size is None else int(minibatch_size),
                          None if epoch_size is None else int(epoch_size))


def learning_parameter_schedule(schedule, minibatch_size=None, epoch_size=None):
    """A learning-rate schedule: a number, a list (one value per epoch) or a list of
    (count, value); values act on the mean gradient unless ``minibatch_size`` is set."""
    return _sched(schedule, minibatch_size, epoch_size)


def learning_parameter_schedule_per_sample(schedule, epoch_size=None):
    """A per-sample learning rate (acts on the summed gradient)."""
    return _sched(schedule, 1, epoch_size)


def learning_rate_schedule(lr, unit, epoch_size=None):
    """Deprecated: ``UnitType.sample`` = per sample, ``UnitType.minibatch`` = per minibatch."""
    if unit not in (UnitType.sample, UnitType.minibatch):
        raise ValueError('unit must be UnitType.sample or UnitType.minibatch, got %r' % (unit,))
    return _sched(lr, 1 if unit == UnitType.sample else 0, epoch_size)


def training_parameter_schedule(schedule, unit=UnitType.minibatch, epoch_size=None):
    """Deprecated general schedule."""
    return learning_rate_schedule(schedule, unit, epoch_size)


def momentum_schedule(momentum, epoch_size=None, minibatch_size=None):
    """A momentum schedule (per minibatch unless ``minibatch_size`` is set)."""
    return _sched(momentum, minibatch_size, epoch_size)


def momentum_schedule_per_sample(momentum, epoch_size=None):
    return _sched(momentum, 1, epoch_size)


def momentum_as_time_constant_schedule(momentum, epoch_size=None):
    """Deprecated: momentum from a time constant T (per sample ``exp(-1/T)``)."""
    if isinstance(momentum, _rntk.Schedule):
        return momentum
    return _rntk.Schedule.time_constant(momentum, None if epoch_size is None else int(epoch_size))


class Learner(object):
    """A learner (CNTK's ``Learner``): ``parameters``, ``learning_rate()``,
    ``reset_learning_rate``, ``update``."""

    def __init__(self, handle, parameters):
        self._l = handle
        self._parameters = list(parameters)

    @property
    def parameters(self):
        return self._parameters

    def learning_rate(self):
        return self._l.learning_rate()

    def reset_learning_rate(self, learning_rate):
        self._l.reset_learning_rate(_sched(learning_rate))

    @property
    def total_number_of_samples_seen(self):
        return self._l.total_number_of_samples_seen

    def update(self, gradient_values, training_sample_count, is_sweep_end=False):
        g = [(p._v, np.asarray(v)) for p, v in gradient_values.items()]
        return self._l.update(g, int(training_sample_count), bool(is_sweep_end))


def _mb_size(minibatch_size, use_mean_gradient):
    if use_mean_gradient is None:
        use_mean_gradient = _mean_gradient[0]
    if use_mean_gradient:
        return IGNORE
    return None if minibatch_size is None else int(minibatch_size)


def _lr(lr, epoch_size):
    if isinstance(lr, _rntk.Schedule):
        return lr
    return _sched(lr, None, epoch_size)


def _make(kind, parameters, lr, momentum=None, variance_momentum=None, unit_gain=None,
          l1_regularization_weight=0.0, l2_regularization_weight=0.0,
          gaussian_noise_injection_std_dev=0.0, gradient_clipping_threshold_per_sample=_INF,
          gradient_clipping_with_truncation=True, use_mean_gradient=None, minibatch_size=None,
          epoch_size=None, **extra):
    params = list(parameters)
    if not params:
        raise ValueError('%s: the list of parameters is empty' % kind)
    ug = _unit_gain[0] if unit_gain is None else bool(unit_gain)
    mom = None if momentum is None else _lr(momentum, epoch_size)
    vm = None if variance_momentum is None else _lr(variance_momentum, epoch_size)
    h = _rntk.make_learner(kind, [p._v for p in params], _lr(lr, epoch_size), mom, vm, ug,
                           float(l1_regularization_weight), float(l2_regularization_weight),
                           float(gaussian_noise_injection_std_dev),
                           float(gradient_clipping_threshold_per_sample),
                           bool(gradient_clipping_with_truncation),
                           _mb_size(minibatch_size, use_mean_gradient), **extra)
    return Learner(h, params)


def sgd(parameters, lr, l1_regularization_weight=0.0, l2_regularization_weight=0.0,
        gaussian_noise_injection_std_dev=0.0, gradient_clipping_threshold_per_sample=_INF,
        gradient_clipping_with_truncation=True, use_mean_gradient=None, minibatch_size=None,
        epoch_size=None):
    """Plain SGD."""
    return _make('sgd', parameters, lr, None, None, None, l1_regularization_weight,
                 l2_regularization_weight, gaussian_noise_injection_std_dev,
                 gradient_clipping_threshold_per_sample, gradient_clipping_with_truncation,
                 use_mean_gradient, minibatch_size, epoch_size)


def momentum_sgd(parameters, lr, momentum, unit_gain=None, l1_regularization_weight=0.0,
                 l2_regularization_weight=0.0, gaussian_noise_injection_std_dev=0.0,
                 gradient_clipping_threshold_per_sample=_INF,
                 gradient_clipping_with_truncation=True, use_mean_gradient=None,
                 minibatch_size=None, epoch_size=None):
    """SGD with momentum."""
    return _make('momentum_sgd', parameters, lr, momentum, None, unit_gain, l1_regularization_weight,
                 l2_regularization_weight, gaussian_noise_injection_std_dev,
                 gradient_clipping_threshold_per_sample, gradient_clipping_with_truncation,
                 use_mean_gradient, minibatch_size, epoch_size)


def nesterov(parameters, lr, momentum, unit_gain=None, l1_regularization_weight=0.0,
             l2_regularization_weight=0.0, gaussian_noise_injection_std_dev=0.0,
             gradient_clipping_threshold_per_sample=_INF, gradient_clipping_with_truncation=True,
             use_mean_gradient=None, minibatch_size=None, epoch_size=None):
    """Nesterov's accelerated SGD."""
    return _make('nesterov', parameters, lr, momentum, None, unit_gain, l1_regularization_weight,
                 l2_regularization_weight, gaussian_noise_injection_std_dev,
                 gradient_clipping_threshold_per_sample, gradient_clipping_with_truncation,
                 use_mean_gradient, minibatch_size, epoch_size)


def adam(parameters, lr, momentum, unit_gain=None, variance_momentum=None,
         l1_regularization_weight=0.0, l2_regularization_weight=0.0,
         gaussian_noise_injection_std_dev=0.0, gradient_clipping_threshold_per_sample=_INF,
         gradient_clipping_with_truncation=True, use_mean_gradient=None, epsilon=1e-8, adamax=False,
         minibatch_size=None, epoch_size=None):
    """Adam (or AdaMax); ``variance_momentum`` defaults to CNTK's per-sample 0.9999986111120757."""
    return _make('adam', parameters, lr, momentum, variance_momentum, unit_gain,
                 l1_regularization_weight, l2_regularization_weight,
                 gaussian_noise_injection_std_dev, gradient_clipping_threshold_per_sample,
                 gradient_clipping_with_truncation, use_mean_gradient, minibatch_size, epoch_size,
                 epsilon=float(epsilon), adamax=bool(adamax))


def fsadagrad(parameters, lr, momentum, unit_gain=None, variance_momentum=None,
              l1_regularization_weight=0.0, l2_regularization_weight=0.0,
              gaussian_noise_injection_std_dev=0.0, gradient_clipping_threshold_per_sample=_INF,
              gradient_clipping_with_truncation=True, use_mean_gradient=None, minibatch_size=None,
              epoch_size=None):
    """FSAdaGrad."""
    return _make('fsadagrad', parameters, lr, momentum, variance_momentum, unit_gain,
                 l1_regularization_weight, l2_regularization_weight,
                 gaussian_noise_injection_std_dev, gradient_clipping_threshold_per_sample,
                 gradient_clipping_with_truncation, use_mean_gradient, minibatch_size, epoch_size)


def adagrad(parameters, lr, need_ave_multiplier=True, l1_regularization_weight=0.0,
            l2_regularization_weight=0.0, gaussian_noise_injection_std_dev=0.0,
            gradient_clipping_threshold_per_sample=_INF, gradient_clipping_with_truncation=True,
            use_mean_gradient=None, minibatch_size=None, epoch_size=None):
    return _make('adagrad', parameters, lr, None, None, None, l1_regularization_weight,
                 l2_regularization_weight, gaussian_noise_injection_std_dev,
                 gradient_clipping_threshold_per_sample, gradient_clipping_with_truncation,
                 use_mean_gradient, minibatch_size, epoch_size,
                 need_ave_multiplier=bool(need_ave_multiplier))


def adadelta(parameters, lr=1.0, rho=0.95, epsilon=1e-8, l1_regularization_weight=0.0,
             l2_regularization_weight=0.0, gaussian_noise_injection_std_dev=0.0,
             gradient_clipping_threshold_per_sample=_INF, gradient_clipping_with_truncation=True,
             use_mean_gradient=None, minibatch_size=None, epoch_size=None):
    return _make('adadelta', parameters, lr, None, None, None, l1_regularization_weight,
                 l2_regularization_weight, gaussian_noise_injection_std_dev,
                 gradient_clipping_threshold_per_sample, gradient_clipping_with_truncation,
                 use_mean_gradient, minibatch_size, epoch_size, rho=float(rho),
                 epsilon=float(epsilon))


def rmsprop(parameters, lr, gamma, inc, dec, max, min, need_ave_multiplier=True,
            l1_regularization_weight=0.0, l2_regularization_weight=0.0,
            gaussian_noise_injection_std_dev=0.0, gradient_clipping_threshold_per_sample=_INF,
            gradient_clipping_with_truncation=True, use_mean_gradient=None, minibatch_size=None,
            epoch_size=None):
    return _make('rmsprop', parameters, lr, None, None, None, l1_regularization_weight,
                 l2_regularization_weight, gaussian_noise_injection_std_dev,
                 gradient_clipping_threshold_per_sample, gradient_clipping_with_truncation,
                 use_mean_gradient, minibatch_size, epoch_size, gamma=float(gamma), inc=float(inc),
                 dec=float(dec), max=float(max), min=float(min),
                 need_ave_multiplier=bool(need_ave_multiplier))


def universal(update_func, parameters):
    raise NotImplementedError('universal learners (a learner written as a graph) are not in rntk')


class UserLearner(object):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError('UserLearner (a learner written in Python) is not in rntk')
