"""Test harness, not product code: a child interpreter of the test suite sees a
host without an NVIDIA driver, whatever the machine running the suite has.

``tests/helpers.py`` puts this directory first on ``PYTHONPATH`` for the child
processes it starts, so that a child behaves the same on a machine with a
driver and GPUs as on one without:

* gpuboot's driver check reads its paths under this directory (which holds no
  ``proc/driver/nvidia``, ``dev/nvidiactl`` or ``dev/dxg``) instead of ``/``;
* the driver probe (``gpuboot.machine.probe.probe_driver``), once imported,
  answers as on a host with nothing NVIDIA: no libcuda, no NVML, no kernel
  module, no device nodes, not a container.

Only ``os`` and ``sys`` and gpuboot's light ``_driver`` module are imported
here, so a child's import checks still hold; the probe is patched when the
child imports it.
"""

import os
import sys

try:
    from gpuboot.machine import driver as _driver
except ImportError:  # a child without gpuboot on its path
    pass
else:
    _ROOT = os.path.dirname(os.path.abspath(__file__))
    _detect = _driver.detect_driver

    def _detect_under_root(*, root=None):  # type: ignore[no-untyped-def]
        return _detect(root=root or _ROOT)

    _driver.detect_driver = _detect_under_root

    class _ProbeOfAnEmptyHost:
        """A meta-path hook: after ``gpuboot.machine.probe`` runs, its
        ``probe_driver`` returns the probe of a host with nothing NVIDIA."""

        def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
            if name != "gpuboot.machine.probe":
                return None
            sys.meta_path.remove(self)
            import importlib.util

            spec = importlib.util.find_spec(name)
            loader = spec.loader
            run = loader.exec_module

            def exec_module(module):  # type: ignore[no-untyped-def]
                run(module)
                missing = "cannot open shared object file: No such file or directory (test host without a driver)"
                module.probe_driver = lambda **kw: module.DriverProbe(
                    libcuda_error="libcuda.so.1: " + missing, nvml_error="libnvidia-ml.so.1: " + missing)

            loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _ProbeOfAnEmptyHost())
