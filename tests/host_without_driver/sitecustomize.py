"""Test harness, not product code: a child interpreter of the test suite sees a
host without an NVIDIA driver, whatever the machine running the suite has.

``tests/helpers.py`` puts this directory first on ``PYTHONPATH`` for the child
processes it starts, so that a child behaves the same on a machine with a
driver and GPUs as on one without: every ``Machine`` snapshot of the child
(``gpuboot.machine.snapshot.describe_this_process``) reads the driver's files
under this directory (which holds no ``proc/driver/nvidia``, ``dev/nvidiactl``
or ``dev/dxg``) instead of ``/``, and its driver probe answers as on a host with
nothing NVIDIA: no libcuda, no NVML, no kernel module, no device nodes, not a
container.

Only gpuboot's light snapshot module is imported here (``os``, ``sys``,
``_thread``), so a child's import checks still hold; the probe's module is
imported when a probe is asked for.
"""

import os

try:
    from gpuboot.machine.snapshot import Later, describe_this_process
except ImportError:  # a child without gpuboot on its path
    pass
else:
    def _empty_probe(machine):  # type: ignore[no-untyped-def]
        from gpuboot.machine.probe import DriverProbe

        missing = "cannot open shared object file: No such file or directory (test host without a driver)"
        return DriverProbe(libcuda_error="libcuda.so.1: " + missing, nvml_error="libnvidia-ml.so.1: " + missing)

    describe_this_process(root=os.path.dirname(os.path.abspath(__file__)), probe=Later(_empty_probe))
