"""Causes, not codes: what a ``DriverProbe`` saw, mapped to the broken layer and the exact fix.

Each rule is a row of facts with its source: the CUDA driver API's codes
(cuda.h: 34 ``CUDA_ERROR_STUB_LIBRARY``, 35 ``CUDA_ERROR_INSUFFICIENT_DRIVER``,
100 ``CUDA_ERROR_NO_DEVICE``, 803 ``CUDA_ERROR_SYSTEM_DRIVER_MISMATCH``, 804
``CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE``, 999 ``CUDA_ERROR_UNKNOWN``),
NVML's (nvml.h: 9 driver not loaded, 18 library/kernel version mismatch, 999
unknown), NVIDIA's CUDA Compatibility guide (forward compatibility is for
data-center GPUs; CUDA 12.x needs driver >= 525.60.13, 13.x >= 580), the
NVIDIA Container Toolkit's documentation (``--gpus``,
``NVIDIA_DRIVER_CAPABILITIES``; devices lost after ``systemctl
daemon-reload``: NVIDIA/nvidia-container-toolkit#48) and the CUDA on WSL
guide (do not install a Linux driver inside WSL).  A layer is one of:
``driver``, ``kernel module``, ``device nodes``, ``container``, ``WSL``,
``compat library``, ``library path``, ``GPU``.
"""

from __future__ import annotations

import os
from typing import List, Optional, Tuple

from .._record import Record
from .probe import DriverProbe

__all__ = ["Cause", "driver_causes", "cause_line", "DRIVER_MINIMUMS_LINUX", "driver_minimum"]

#: Minimum Linux driver per CUDA major (CUDA Toolkit release notes, "CUDA Toolkit
#: and Corresponding Driver Versions": minor version compatibility).
DRIVER_MINIMUMS_LINUX = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}

_CONTAINER_FIX = ("start the container with `docker run --gpus all ...` (or `--runtime=nvidia`; Kubernetes: a "
                  "`nvidia.com/gpu` resource limit) on a host with the NVIDIA Container Toolkit installed")


class Cause(Record):
    """One broken layer.

    Attributes:
        id: a stable id (doctor's finding id), e.g. ``"kernel-module-not-loaded"``.
        layer: the layer that is broken (see the module docstring).
        severity: ``"problem"``, or ``"info"`` where nothing is asked of the GPU.
        title: what is wrong, in one line, with the versions and paths seen.
        evidence: what the probe saw.
        fix: the exact command or instruction.
        source: where the rule comes from.
    """

    __slots__ = ("id", "layer", "severity", "title", "evidence", "fix", "source")
    id: str
    layer: str
    severity: str
    title: str
    evidence: Tuple[str, ...]
    fix: str
    source: str

    def __init__(self, id: str, layer: str, severity: str, title: str, evidence: Tuple[str, ...], fix: str,
                 source: str) -> None:
        self._set(id=id, layer=layer, severity=severity, title=title, evidence=evidence, fix=fix, source=source)

    def line(self) -> str:
        """``layer: title -- fix: ...``, the one line a reason or a trail carries."""
        return f"{self.layer}: {self.title} -- fix: {self.fix}"


def driver_minimum(cuda_major: int) -> Optional[str]:
    """The oldest Linux driver that runs CUDA ``cuda_major`` (``DRIVER_MINIMUMS_LINUX``)."""
    return DRIVER_MINIMUMS_LINUX.get(cuda_major)


def _older(a: Optional[str], b: Optional[str]) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return a is not None and b is not None and Version(a) < Version(b)
    except InvalidVersion:
        return False


def _evidence(p: DriverProbe) -> Tuple[str, ...]:
    out = []
    if p.libcuda:
        out.append(f"libcuda: {p.libcuda}" + (f" (user-space driver {p.libcuda_version})" if p.libcuda_version else ""))
    elif p.libcuda_error:
        out.append(f"{'nvcuda.dll' if p.platform == 'win32' else 'libcuda.so.1'}: {p.libcuda_error}")
    if p.cuda_driver_version:
        out.append(f"cuDriverGetVersion: {p.cuda_driver_version}")
    if p.cu_init is not None:
        out.append(f"cuInit: {p.cu_init}")
    if p.nvml_init is not None:
        out.append(f"nvmlInit: {p.nvml_init}")
    if p.init_skipped:
        out.append(f"cuInit/nvmlInit {p.init_skipped}")
    out.append(f"kernel module: {p.kernel_module}" if p.kernel_module else
               "kernel module: none loaded (no /proc/driver/nvidia/version)")
    out.append("device nodes: " + (", ".join(f"/dev/{n}" for n in p.device_nodes) or "none"))
    if p.container:
        out.append(f"container: {p.container}; NVIDIA_VISIBLE_DEVICES={p.nvidia_visible_devices}, "
                   f"NVIDIA_DRIVER_CAPABILITIES={p.nvidia_driver_capabilities}")
    if p.wsl:
        out.append(f"WSL2: /usr/lib/wsl/lib/libcuda.so.1 {'present' if p.wsl_libcuda else 'absent'}")
    out.extend(f"on LD_LIBRARY_PATH: {d}" for d in p.library_path_dirs)
    if p.error:
        out.append(f"probe: {p.error}")
    return tuple(out)


def driver_causes(p: DriverProbe, *, gpu_expected: bool = False) -> List[Cause]:
    """The broken layers the probe shows, most fundamental first; ``[]`` when
    the driver answered and sees a GPU.

    Args:
        p: ``probe_driver()``'s answer.
        gpu_expected: something here wants a GPU (a CUDA consumer installed,
            ``NVIDIA_VISIBLE_DEVICES`` set): "no driver at all" is then a
            problem, not information.
    """
    ev = _evidence(p)
    user = p.user_space
    km = p.kernel_module
    lib = p.libcuda or ""
    libdir = os.path.dirname(lib)
    out: List[Cause] = []
    if p.error:
        out.append(Cause("driver-probe-failed", "driver", "problem", f"the driver did not answer: {p.error}", ev,
                         "run `nvidia-smi`: a hang or crash here is the driver's (after suspend: `sudo rmmod "
                         "nvidia_uvm && sudo modprobe nvidia_uvm`, else reboot)", "gpuboot probe"))
        return out
    if "/stubs" in lib or p.cu_init == 34 or any(d.rstrip("/").endswith("stubs") for d in p.library_path_dirs):
        stub_dir = libdir if "/stubs" in lib else next(d for d in (*p.library_path_dirs, libdir) if "stubs" in d)
        out.append(Cause("stub-libcuda", "library path", "problem",
                         f"the loader finds the CUDA toolkit's stub libcuda in {stub_dir}, not the driver's "
                         "(CUDA_ERROR_STUB_LIBRARY, 34)", ev,
                         f"remove {stub_dir} from LD_LIBRARY_PATH (the stub is for linking only)",
                         "cuda.h: CUDA_ERROR_STUB_LIBRARY"))
        return out
    compat = "/compat" in lib
    if compat and (p.cu_init == 804):
        out.append(Cause("compat-unsupported-gpu", "compat library", "problem",
                         f"the forward-compatibility libcuda {lib} does not support this GPU "
                         "(CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE, 804): forward compatibility is for "
                         "data-center GPUs", ev,
                         f"remove {libdir} from LD_LIBRARY_PATH and /etc/ld.so.conf.d (or uninstall cuda-compat), "
                         "and upgrade the NVIDIA driver instead",
                         "CUDA Compatibility guide: forward compatibility; cuda.h 804"))
        return out
    if compat and (p.cu_init == 803 or _older(p.libcuda_version, km)):
        out.append(Cause("compat-older-than-driver", "compat library", "problem",
                         f"the forward-compatibility libcuda {p.libcuda_version or lib} is older than the kernel "
                         f"driver {km or '?'} (CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, 803)", ev,
                         f"remove {libdir} from LD_LIBRARY_PATH and /etc/ld.so.conf.d: the installed driver is "
                         "newer than the compat package", "CUDA Compatibility guide; cuda.h 803"))
        return out
    if p.wsl and lib and not lib.startswith("/usr/lib/wsl/") and not p.answered:
        out.append(Cause("wsl-linux-driver", "WSL", "problem",
                         f"a Linux NVIDIA driver inside the WSL distribution ({lib}) shadows WSL's "
                         "/usr/lib/wsl/lib/libcuda.so.1", ev,
                         "remove the Linux driver packages inside WSL (Debian/Ubuntu: `sudo apt-get remove --purge "
                         "'^libnvidia-.*' '^nvidia-driver-.*'`), then `sudo ldconfig`; update the driver on Windows "
                         "instead", "CUDA on WSL User Guide: do not install a Linux display driver in WSL"))
        return out
    if (km and user and km != user and not compat) or p.nvml_init == 18:
        differ = (f"kernel module {km} and user-space driver {user} differ" if km and user and km != user else
                  f"NVML's library ({p.nvml_lib or 'libnvidia-ml.so.1'}) does not match the kernel module "
                  f"{km or '?'} (NVML_ERROR_LIB_RM_VERSION_MISMATCH, 18)")
        out.append(Cause("driver-version-mismatch", "driver", "problem",
                         f"{differ} (\"Failed to initialize NVML: Driver/library version mismatch\")", ev,
                         "reboot after the driver upgrade (or reload the modules: `sudo rmmod nvidia_uvm "
                         "nvidia_drm nvidia_modeset nvidia && sudo modprobe nvidia`); in a container, the driver "
                         "libraries must be the host's (NVIDIA Container Toolkit)", "nvml.h 18"))
        return out
    if p.container and p.nvml_init == 999:
        out.append(Cause("container-lost-gpus", "container", "problem",
                         "NVML answers \"Unknown Error\" inside this running container: the host revoked its "
                         "device access (a `systemctl daemon-reload` with the systemd cgroup driver)", ev,
                         "restart the container; for good, apply the NVIDIA Container Toolkit's fix "
                         "(NVIDIA/nvidia-container-toolkit#48: `nvidia-ctk system create-dev-char-symlinks`)",
                         "NVIDIA/nvidia-container-toolkit#48; nvml.h 999"))
        return out
    if p.container and p.nvml_lib and not p.libcuda:
        caps = p.nvidia_driver_capabilities or "utility"
        out.append(Cause("container-no-compute", "container", "problem",
                         f"NVML is in this container but libcuda.so.1 is not: NVIDIA_DRIVER_CAPABILITIES={caps} "
                         "leaves out 'compute' (nvidia-smi works, every CUDA application fails)", ev,
                         "start the container with `-e NVIDIA_DRIVER_CAPABILITIES=compute,utility` (or "
                         "`--gpus 'all,\"capabilities=compute,utility\"'`)",
                         "NVIDIA Container Toolkit: driver capabilities"))
        return out
    if p.container and not p.anything:
        wanted = (p.nvidia_visible_devices or "").strip().lower() not in ("", "void", "none")
        severity = "problem" if gpu_expected or wanted else "info"
        out.append(Cause("container-without-gpu", "container", severity,
                         "this container has no GPU access: no NVIDIA device nodes or driver libraries inside", ev,
                         _CONTAINER_FIX, "NVIDIA Container Toolkit: docker run --gpus"))
        return out
    if (p.libcuda or p.nvml_lib) and not km and not p.wsl and not p.answered:
        if any(n == "nvidiactl" for n in p.device_nodes):
            out.append(Cause("stale-device-nodes", "device nodes", "problem",
                             "/dev/nvidiactl exists but no NVIDIA kernel module is loaded (a stale node, or /dev "
                             "bind-mounted into a container): a file check says 'driver', the driver cannot answer",
                             ev, "load the kernel module (below); the nodes are recreated by it",
                             "cuda.h 100 / nvml.h 9 with no /proc/driver/nvidia"))
        where = "container" if p.container else "kernel module"
        out.append(Cause("kernel-module-not-loaded", where, "problem",
                         f"user-space driver {user or '(unknown version)'} is installed, but the NVIDIA kernel module "
                         "is not loaded", ev,
                         _CONTAINER_FIX if p.container else
                         "load it: `sudo modprobe nvidia` (if that fails, rebuild it for this kernel with `sudo dkms "
                         "autoinstall` or reinstall the driver; with Secure Boot the module must be signed), or "
                         "reboot; in a container, start it with `--gpus all` and the NVIDIA Container Toolkit",
                         "nvml.h 9 'Driver Not Loaded', cuda.h 100"))
        return out
    if p.nvml_lib and not p.libcuda and not p.wsl:
        out.append(Cause("libcuda-missing", "driver", "problem",
                         "NVML is installed but libcuda.so.1 is not: the driver's CUDA library is missing", ev,
                         "install the driver's CUDA library (Debian: `apt install libcuda1`; Ubuntu: "
                         "`apt install libnvidia-compute-<version>`), matching the kernel module "
                         f"{km or ''}".rstrip(), "ctranslate2 and torch load libcuda.so.1 by name"))
        return out
    if p.cu_init == 999:
        uvm = "nvidia-uvm" in p.device_nodes
        out.append(Cause("cuda-unknown-error", "kernel module", "problem",
                         "cuInit failed with CUDA_ERROR_UNKNOWN (999)" +
                         ("" if uvm else "; /dev/nvidia-uvm is missing"), ev,
                         ("create it: `sudo nvidia-modprobe -u -c=0` (or `sudo modprobe nvidia-uvm`)" if not uvm else
                          "after suspend/resume: `sudo rmmod nvidia_uvm && sudo modprobe nvidia_uvm`; else reboot"),
                         "cuda.h 999"))
        return out
    if p.cu_init == 35:
        v = p.cuda_driver_version
        shown = f"CUDA {v // 1000}.{v % 1000 // 10}" if v else "an older CUDA"
        out.append(Cause("driver-insufficient", "driver", "problem",
                         f"the driver ({shown}) is older than the CUDA runtime in use "
                         "(CUDA_ERROR_INSUFFICIENT_DRIVER, 35: 'CUDA driver version is insufficient for CUDA "
                         "runtime version')", ev,
                         f"upgrade the NVIDIA driver: CUDA 12 needs >= {DRIVER_MINIMUMS_LINUX[12]}, CUDA 13 >= "
                         f"{DRIVER_MINIMUMS_LINUX[13]}", "cuda.h 35; CUDA Toolkit release notes"))
        return out
    if p.cu_init == 100 or (p.cu_init == 0 and p.device_count == 0):
        out.append(Cause("no-gpu", "GPU", "problem",
                         f"the driver {km or user or ''} is loaded but sees no GPU (CUDA_ERROR_NO_DEVICE, 100)".replace(
                             "  ", " "), ev,
                         "check `nvidia-smi` and `lspci | grep -i nvidia`; in a VM or container, pass the GPU "
                         "through; unset CUDA_VISIBLE_DEVICES if it hides every GPU", "cuda.h 100"))
        return out
    if p.answered:
        return out
    if not p.anything:
        if p.wsl:
            out.append(Cause("wsl-no-driver", "WSL", "problem" if gpu_expected else "info",
                             "WSL2 without /usr/lib/wsl/lib/libcuda.so.1: the Windows NVIDIA driver is not installed "
                             "or too old for WSL", ev, "install the current NVIDIA driver on Windows (it provides "
                             "/usr/lib/wsl/lib)", "CUDA on WSL User Guide"))
            return out
        out.append(Cause("no-driver", "driver", "problem" if gpu_expected else "info", "NVIDIA driver: not found",
                         ev, "install the NVIDIA driver to use a GPU (https://www.nvidia.com/drivers)",
                         "gpuboot probe"))
        return out
    if p.init_skipped is None and p.cu_init is None and p.nvml_init is None:
        return out
    out.append(Cause("driver-not-answering", "driver", "problem",
                     "the NVIDIA driver is present but did not answer (cuInit "
                     f"{p.cu_init if p.cu_init is not None else 'not called'}, nvmlInit "
                     f"{p.nvml_init if p.nvml_init is not None else 'not called'})", ev,
                     "run `nvidia-smi` for the driver's own message; `gpuboot doctor --json` has the probe",
                     "gpuboot probe"))
    return out


def cause_line(p: DriverProbe, *, gpu_expected: bool = True) -> Optional[str]:
    """The first broken layer as one line (``select_device().reason``,
    ``load_whisper()``'s trail), or ``None`` when nothing is broken."""
    causes = driver_causes(p, gpu_expected=gpu_expected)
    return causes[0].line() if causes else None
