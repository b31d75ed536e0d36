"""Driver probes in the shape ``probe_driver()`` returns them, for tests that inject host facts.

``healthy`` is what the probe reads on a host whose driver answers (CUDA's
``cuInit`` 0 with GPUs counted, NVML initialised): the values a real 550.54.14
driver gives (cuDriverGetVersion 12040 = CUDA 12.4).  ``empty`` is a host with
nothing NVIDIA: the loader's own words for libraries that are not there.
"""

from __future__ import annotations

from gpuboot.machine.probe import DriverProbe

_MISSING = "cannot open shared object file: No such file or directory"


def healthy(version: str = "550.54.14", cuda_version: int = 12040, count: int = 1, **changes: object) -> DriverProbe:
    """A Linux host whose driver ``version`` answers CUDA and NVML with ``count`` GPU(s)."""
    probe = DriverProbe(libcuda=f"/usr/lib/x86_64-linux-gnu/libcuda.so.{version}", libcuda_version=version,
                        cuda_driver_version=cuda_version, cu_init=0, device_count=count,
                        nvml_lib=f"/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.{version}", nvml_init=0,
                        nvml_driver_version=version, nvml_cuda_version=cuda_version, kernel_module=version,
                        device_nodes=("nvidia-uvm", "nvidia0", "nvidiactl"))
    return probe._replace(**changes) if changes else probe


def empty(**changes: object) -> DriverProbe:
    """A Linux host with nothing NVIDIA."""
    probe = DriverProbe(libcuda_error=f"libcuda.so.1: {_MISSING}", nvml_error=f"libnvidia-ml.so.1: {_MISSING}")
    return probe._replace(**changes) if changes else probe
