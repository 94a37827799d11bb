"""Devices (CNTK's ``cntk.device``). ``gpu(n)`` opens GPU n through rntk's CUDA backend
(``ValueError: no GPU: ...`` where there is none, as CNTK's CPU build raises);
``try_set_default_device`` checks the device before making it the default. The Python
package's training and evaluation still compute on the CPU: with a GPU default a
``RuntimeWarning`` says so once (GPU execution from Python is not wired yet)."""

import warnings

from . import _rntk

__all__ = ['DeviceDescriptor', 'DeviceKind', 'cpu', 'gpu', 'all_devices', 'try_set_default_device',
           'use_default_device', 'set_excluded_devices', 'get_gpu_properties']

_CPU_ONLY = ('rntk: the Python package computes on the CPU; GPU %d is selected but GPU execution '
             'from Python is not wired yet (use `rntk train --device gpu` or rntk_cuda from Rust)')


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
    """GPU ``device_id``; ``ValueError('no GPU: ...')`` where it cannot be used."""
    device_id = int(device_id)
    _rntk.gpu_open(device_id)
    return DeviceDescriptor(DeviceKind.GPU, device_id)


def all_devices():
    return [_CPU] + [DeviceDescriptor(DeviceKind.GPU, i) for i in range(_rntk.gpu_count())]


def try_set_default_device(new_default_device, acquire_device_lock=False):
    """Set the default device after checking it can be used; True on success."""
    if new_default_device == _CPU:
        _rntk.set_default_device(None)
    else:
        _rntk.set_default_device(new_default_device.id)
        warnings.warn(_CPU_ONLY % new_default_device.id, RuntimeWarning, stacklevel=2)
    _default[0] = new_default_device
    return True


def use_default_device():
    return _default[0]


def set_excluded_devices(excluded_devices):
    pass


def get_gpu_properties(device):
    """The GPU's name (``ValueError('no GPU: ...')`` where it cannot be used)."""
    class _Properties(object):
        pass
    p = _Properties()
    p.device_id = getattr(device, 'id', 0)
    p.name = _rntk.gpu_open(p.device_id)
    return p
