"""``cntk.debugging``: profiling hooks are accepted and do nothing in rntk."""

__all__ = ['set_computation_network_trace_level', 'set_checked_mode', 'debug_model',
           'start_profiler', 'stop_profiler', 'enable_profiler', 'disable_profiler',
           'set_node_timing']


def set_computation_network_trace_level(level):
    pass


def set_checked_mode(enable):
    pass


def debug_model(model, *args, **kwargs):
    return model


def start_profiler(dir='profiler', sync_gpu=True, reserve_mem=33554432):
    pass


def stop_profiler():
    pass


def enable_profiler():
    pass


def disable_profiler():
    pass


def set_node_timing(enable):
    pass
