"""Test harness, not product code: a child interpreter of the test suite sees a
host WITH a working NVIDIA driver and one GPU, whatever the machine has.

Faked only at the boundary this machine cannot have (no GPU): the driver check
says present, the driver probe says the driver answered (``cuInit`` 0, one
device, 550.54.14), NVML is ``tests/fake_nvml.py``'s RTX 3070 (``GPUBOOT_TEST_GPUS`` of
them), and the system
loader cache is empty (so a CUDA toolkit on the machine running the tests
cannot stand in for a wheel).  Everything else -- pip, the wheels, doctor's
checks -- is real.  ``tests/fix_env.py`` puts this directory and ``tests/`` on
``PYTHONPATH``.
"""

import os
import sys

_HOOKS = {}


def _after_import(name, patch):  # type: ignore[no-untyped-def]
    _HOOKS[name] = patch


class _PatchAfterImport:
    def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
        patch = _HOOKS.pop(name, None)
        if patch is None:
            return None
        import importlib.util

        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        loader = spec.loader
        run = loader.exec_module

        def exec_module(module):  # type: ignore[no-untyped-def]
            run(module)
            patch(module)

        loader.exec_module = exec_module
        return spec


try:
    from gpuboot.machine import driver as _driver
except ImportError:
    pass
else:
    _driver.detect_driver = lambda platform=None, **kw: _driver.DriverInfo(present=True,
                                                                           evidence="test host with a GPU (injected)")

    def _probe(module):  # type: ignore[no-untyped-def]
        answer = module.DriverProbe(libcuda="/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14",
                                    libcuda_version="550.54.14", cuda_driver_version=12040, cu_init=0,
                                    device_count=1, nvml_lib="/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.54.14",
                                    nvml_init=0, nvml_driver_version="550.54.14", nvml_cuda_version=12040,
                                    kernel_module="550.54.14", device_nodes=("nvidia0", "nvidiactl", "nvidia-uvm"))
        module.probe_driver = lambda **kw: answer

    def _nvml(module):  # type: ignore[no-untyped-def]
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from fake_nvml import RTX_3070, FakeNVML, gpu

        count = int(os.environ.get("GPUBOOT_TEST_GPUS", "1"))  # the harness's: how many fake GPUs
        module._nvml = lambda: FakeNVML([gpu(RTX_3070, i) for i in range(count)], cuda_version=12040)

    def _search(module):  # type: ignore[no-untyped-def]
        module._LDCONFIG_CACHE = {}

    _after_import("gpuboot.machine.probe", _probe)
    _after_import("gpuboot._gpus.nvml", _nvml)
    _after_import("gpuboot._libs.search", _search)
    sys.meta_path.insert(0, _PatchAfterImport())
