"""CNTK's ``cntk.cntk_py`` (its SWIG module): the calls tutorials make."""

from . import _rntk

_threads = [0]


def set_fixed_random_seed(seed):
    """Restart the sequence of automatic seeds for initializers and dropout."""
    _rntk.set_fixed_random_seed(int(seed))


def force_deterministic_algorithms(enable=True):
    """rntk's CPU kernels are deterministic already."""


def disable_forward_values_sharing():
    """rntk plans buffers itself; nothing to disable."""


def enable_synchronous_gpukernel_execution():
    """No GPU in this build."""


def set_gpumemory_allocation_trace_level(level):
    """No GPU in this build."""


def set_max_num_cpu_threads(n):
    _threads[0] = int(n)


set_max_num_cputhreads = set_max_num_cpu_threads


def get_max_num_cpu_threads():
    import os
    return _threads[0] or os.cpu_count() or 1


def set_computation_network_trace_level(level):
    pass


def set_checked_mode(enable):
    pass
