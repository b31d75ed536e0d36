"""Test harness, not product code: a child interpreter of the test suite sees a
host without an NVIDIA driver, whatever the machine running the suite has.

``tests/helpers.py`` puts this directory first on ``PYTHONPATH`` for the child
processes it starts, so that a child behaves the same on a machine with a
driver and GPUs as on one without: gpuboot's driver check reads its paths
under this directory (which holds no ``proc/driver/nvidia``, ``dev/nvidiactl``
or ``dev/dxg``) instead of ``/``.  Only imports ``os`` and gpuboot's light
``_driver`` module, so a child's import checks still hold.
"""

import os

try:
    from gpuboot._gpus import driver as _driver
except ImportError:  # a child without gpuboot on its path
    pass
else:
    _ROOT = os.path.dirname(os.path.abspath(__file__))
    _detect = _driver.detect_driver

    def _detect_under_root(platform=None, *, root=_ROOT):  # type: ignore[no-untyped-def]
        return _detect(platform, root=root)

    _driver.detect_driver = _detect_under_root
