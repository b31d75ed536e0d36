"""Test harness, not product code: a child interpreter of the test suite sees a
host WITH a working NVIDIA driver and one GPU, whatever the machine has.

Faked only at the boundary this machine cannot have (no GPU), as facts every
``Machine`` snapshot of the child is given
(``gpuboot.machine.snapshot.describe_this_process``): the driver check says
present, the driver probe says the driver answered (``cuInit`` 0, one device,
550.54.14), NVML is ``tests/fake_nvml.py``'s RTX 3070 (``GPUBOOT_TEST_GPUS`` of
them), CUDA's own device order is not asked, and the system loader cache is
empty (so a CUDA toolkit on the machine running the tests cannot stand in for a
wheel).  Everything else -- pip, the wheels, doctor's checks -- is real.
``tests/fix_env.py`` puts this directory and ``tests/`` on ``PYTHONPATH``.
"""

import os
import sys

try:
    from gpuboot.machine.driver import DriverInfo
    from gpuboot.machine.snapshot import Later, describe_this_process
except ImportError:
    pass
else:
    def _probe(machine):  # type: ignore[no-untyped-def]
        from gpuboot.machine.probe import DriverProbe

        return DriverProbe(libcuda="/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14", libcuda_version="550.54.14",
                           cuda_driver_version=12040, cu_init=0, device_count=1,
                           nvml_lib="/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.54.14", nvml_init=0,
                           nvml_driver_version="550.54.14", nvml_cuda_version=12040, kernel_module="550.54.14",
                           device_nodes=("nvidia0", "nvidiactl", "nvidia-uvm"))

    def _nvml(machine):  # type: ignore[no-untyped-def]
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from fake_nvml import RTX_3070, FakeNVML, gpu

        count = int(os.environ.get("GPUBOOT_TEST_GPUS", "1"))  # the harness's: how many fake GPUs
        return FakeNVML([gpu(RTX_3070, i) for i in range(count)], cuda_version=12040)

    describe_this_process(driver=DriverInfo(present=True, evidence="test host with a GPU (injected)"),
                          probe=Later(_probe), nvml=Later(_nvml), cuda_order=None, ldconfig={})
