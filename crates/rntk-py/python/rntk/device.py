"""Devices (CNTK's ``cntk.device``). This build computes on the CPU; asking for a GPU
raises a clear error (CUDA support is rntk issue 18)."""

__all__ = ['DeviceDescriptor', 'DeviceKind', 'cpu', 'gpu', 'all_devices', 'try_set_default_device',
           'use_default_device', 'set_excluded_devices', 'get_gpu_properties']

_NO_GPU = ('this build of rntk has no GPU support yet (CUDA is rntk issue 18): gpu(%d) is not '
           'available; use cntk.device.cpu()')


class DeviceKind(object):
    CPU = 'CPU'
    GPU = 'GPU'


class DeviceDescriptor(object):
    def __init__(self, kind='CPU', device_id=-1):
        self._kind, self._id = kind, device_id

    def type(self):
        return 0 if self._kind == 'CPU' else 1

    @property
    def id(self):
        return self._id

    def is_locked(self):
        return False

    def __eq__(self, other):
        return isinstance(other, DeviceDescriptor) and other._kind == self._kind and other._id == self._id

    def __hash__(self):
        return hash((self._kind, self._id))

    def __repr__(self):
        return 'CPU' if self._kind == 'CPU' else 'GPU[%d]' % self._id


_CPU = DeviceDescriptor()
_default = [_CPU]


def cpu():
    """The CPU."""
    return _CPU


def gpu(device_id):
    """A GPU: not available in this build (raises ValueError, as CNTK's CPU build does)."""
    raise ValueError(_NO_GPU % int(device_id))


def all_devices():
    return [_CPU]


def try_set_default_device(new_default_device, acquire_device_lock=False):
    """Set the default device; True for the CPU."""
    if new_default_device != _CPU:
        raise ValueError(_NO_GPU % getattr(new_default_device, 'id', 0))
    _default[0] = new_default_device
    return True


def use_default_device():
    return _default[0]


def set_excluded_devices(excluded_devices):
    pass


def get_gpu_properties(device):
    raise ValueError(_NO_GPU % getattr(device, 'id', 0))
