"""``cntk.tests.test_utils``."""

import os

__all__ = ['set_device_from_pytest_env']


def set_device_from_pytest_env():
    """Select the device from ``TEST_DEVICE`` (``cpu``/``gpu``), as CNTK's tutorials do."""
    from .. import device
    if 'TEST_DEVICE' in os.environ:
        if os.environ['TEST_DEVICE'] == 'cpu':
            device.try_set_default_device(device.cpu())
        else:
            device.try_set_default_device(device.gpu(0))
