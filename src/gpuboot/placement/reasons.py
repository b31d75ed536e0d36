"""``select_device``'s reasons: what CUDA, the driver and the consumers' GPU code say about a GPU, in one line each.

Private to ``select``; each function reads one source and never raises.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple

from .._gpus.device import Device

__all__ = ["gpu_code", "cuda_verdict", "probe_cuda", "driver_cause", "driver_too_old"]


def gpu_code(device: Device, driver_cuda: Optional[Tuple[int, int]],
             found: Optional[Mapping[str, Any]] = None) -> Tuple[Any, ...]:
    """Each installed consumer's GPU code judged for ``device`` (``_code/consumers.py``; binaries read once)."""
    from .._code.consumers import installed_code

    cc = device.compute_capability
    label = (f"cuda:{device.cuda_ordinal} {device.name} (CC {cc[0]}.{cc[1]})")
    return installed_code(cc, driver_cuda, label, consumers=("ctranslate2", "torch", "onnxruntime-gpu"), found=found)


def cuda_verdict(probe: Any) -> Optional[str]:
    """``None`` when CUDA answered (or was not asked: no probe), else the
    broken layer and its fix in one line (``_gpus/causes.py``)."""
    if probe is None or probe.answered:
        return None
    from .._gpus.causes import cause_line

    return cause_line(probe) or "cuInit did not succeed"


def probe_cuda(probe: Any) -> Optional[Tuple[int, int]]:
    """The CUDA version the probe's driver supports (NVML's, else ``cuDriverGetVersion``)."""
    if probe is None:
        return None
    from .._gpus.codes import cuda_version

    return cuda_version(probe.nvml_cuda_version or probe.cuda_driver_version)


def driver_cause(error: str, probe: Any, real: bool, env: Mapping[str, str]) -> str:
    """Why no GPU is usable, in one line: the driver probe's broken layer and
    fix when there is a driver (or a user-space ``libcuda``) to ask, else
    discovery's own error ("no NVIDIA driver ...")."""
    if probe is None and real:
        from ..machine.driver import detect_driver
        from ..machine.hostfacts import libcuda_hints
        from ..machine.probe import probe_driver

        if detect_driver().present or libcuda_hints(environ=env):
            probe = probe_driver(environ=env)
    if probe is None:
        return error
    from .._gpus.causes import driver_causes

    causes = driver_causes(probe, gpu_expected=True)
    if not causes or causes[0].id == "no-driver":  # nothing NVIDIA here: discovery's own words say it best
        return error
    return causes[0].line()


def driver_too_old(driver_cuda: Optional[Tuple[int, int]], ct2_version: Optional[str]) -> Optional[str]:
    """Why CTranslate2 cannot use this driver, or ``None``: its build's CUDA
    major (``consumers.CTRANSLATE2_RULES``) above the highest CUDA version the
    driver supports (NVML ``nvmlSystemGetCudaDriverVersion``)."""
    if driver_cuda is None or ct2_version is None:
        return None
    from ..consumers.table import needs_of

    need = needs_of("ctranslate2", ct2_version)
    if need is None or driver_cuda[0] >= need.cuda_major:
        return None
    return (f"the driver supports CUDA {driver_cuda[0]}.{driver_cuda[1]}, but ctranslate2 {ct2_version} is built "
            f"for CUDA {need.cuda_major} ({need.source}): update the NVIDIA driver (`gpuboot doctor` names the "
            "minimum)")
