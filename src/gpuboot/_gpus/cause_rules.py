"""The driver cause rules: one small function per broken layer, each reading a ``DriverProbe`` and returning what it
saw (``Seen``: title, fix, severity) or ``None``, and ``CAUSES``, their table: each one's id, layer and source, in
order (``causes.driver_causes`` asks them).  A new cause is one function and one row here; the codes come from
``codes.py`` (cuda.h, nvml.h)."""

from __future__ import annotations

import os
from typing import Callable, List, NamedTuple, Optional, Tuple

from ..machine.probe import DriverProbe
from .codes import COMPUTE_MODES, cuda_code, cuda_error, nvml_code, nvml_error

_CONTAINER_FIX = ("start the container with `docker run --gpus all ...` (or `--runtime=nvidia`; Kubernetes: a "
                  "`nvidia.com/gpu` resource limit) on a host with the NVIDIA Container Toolkit installed")
_WINDOWS_DRIVER_FIX = ("install (or reinstall) the current NVIDIA driver from https://www.nvidia.com/drivers, then "
                       "check the GPU in Device Manager (Display adapters) and run `nvidia-smi`")


class Seen(NamedTuple):
    """What one rule saw: its title, fix and severity."""

    title: str
    fix: str
    severity: str = "problem"


def _older(a: Optional[str], b: Optional[str]) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return a is not None and b is not None and Version(a) < Version(b)
    except InvalidVersion:
        return False


def _linux(p: DriverProbe) -> bool:
    return p.platform != "win32"


def _libdir(p: DriverProbe) -> str:
    return os.path.dirname(p.libcuda or "")


def _parts(path: str) -> List[str]:
    return path.replace("\\", "/").rstrip("/").split("/")


def probe_failed(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if not p.error:
        return None
    fix = ("run `nvidia-smi`: a hang or crash here is the driver's (after suspend: `sudo rmmod nvidia_uvm && sudo "
           "modprobe nvidia_uvm`, else reboot)" if _linux(p) else
           "run `nvidia-smi`; a hang or crash here is the driver's: " + _WINDOWS_DRIVER_FIX)
    return Seen(f"the driver did not answer: {p.error}", fix)


def stub_libcuda(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    # Only the libcuda that was loaded counts: the toolkit's lib64/stubs holds libcuda.so, which the loader never
    # takes for libcuda.so.1, so a stubs directory on the path beside a real driver is harmless.
    if p.cu_init != 34 and "stubs" not in _parts(p.libcuda or ""):
        return None
    if not _linux(p):
        return Seen(f"the nvcuda.dll the loader found ({p.libcuda or '?'}) is a stub, not the driver's "
                    f"({cuda_code(34)})", f"delete that copy; {_WINDOWS_DRIVER_FIX}")
    where = p.libcuda or "the libcuda.so.1 the loader found"
    in_path = [d for d in p.library_path_dirs if os.path.dirname(where).rstrip("/") == d.rstrip("/")]
    fix = (f"remove {in_path[0]} from LD_LIBRARY_PATH (the stub is for linking only)" if in_path else
           f"delete {where}: it is the CUDA toolkit's stub (for linking only), not the driver's; then reinstall the "
           "driver's CUDA library (Debian: `apt install --reinstall libcuda1`; Ubuntu: `apt install --reinstall "
           "libnvidia-compute-<version>`) and run `sudo ldconfig`")
    return Seen(f"the loader finds the CUDA toolkit's stub libcuda ({where}), not the driver's "
                f"({cuda_code(34)})", fix)


def compat_unsupported(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if p.cu_init != 804 or not _linux(p):
        return None
    return Seen(f"the forward-compatibility libcuda {p.libcuda or ''} does not support this GPU ({cuda_code(804)}): "
                "forward compatibility is for data-center GPUs",
                f"remove {_libdir(p) or 'the cuda-compat directory'} from LD_LIBRARY_PATH and /etc/ld.so.conf.d (or "
                "uninstall cuda-compat), and upgrade the NVIDIA driver instead")


def compat_older(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    compat = "compat" in _parts(p.libcuda or "")
    if not _linux(p):
        return None
    if p.cu_init != 803 and not (compat and not p.answered and _older(p.libcuda_version, p.kernel_module)):
        return None
    return Seen(f"the libcuda {p.libcuda_version or p.libcuda or ''} is not the installed driver's "
                f"{p.kernel_module or ''} ({cuda_code(803)}): a forward-compatibility libcuda older than the "
                "kernel driver".replace("  ", " "),
                f"remove {_libdir(p) or 'the cuda-compat directory'} from LD_LIBRARY_PATH and /etc/ld.so.conf.d: "
                "the installed driver is newer than the compat package")


def wsl_linux_driver(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    lib = p.libcuda or ""
    if not (_linux(p) and p.wsl and lib and not lib.startswith("/usr/lib/wsl/") and not p.answered):
        return None
    return Seen(f"a Linux NVIDIA driver inside the WSL distribution ({lib}) shadows WSL's "
                "/usr/lib/wsl/lib/libcuda.so.1",
                "remove the Linux driver packages inside WSL (Debian/Ubuntu: `sudo apt-get remove --purge "
                "'^libnvidia-.*' '^nvidia-driver-.*'`), then `sudo ldconfig`; update the driver on Windows instead")


def version_mismatch(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    km, user = p.kernel_module, p.user_space
    compat = "compat" in _parts(p.libcuda or "")
    differ = bool(km and user and km != user and not compat and not p.answered)
    if not differ and p.nvml_init != 18:
        return None
    what = (f"kernel module {km} and user-space driver {user} differ" if differ else
            f"NVML's library ({p.nvml_lib or 'libnvidia-ml.so.1'}) does not match the kernel module {km or '?'} "
            f"({nvml_code(18)})")
    if not _linux(p):
        return Seen(f"{what} (\"Failed to initialize NVML: Driver/library version mismatch\")",
                    "reboot after the driver upgrade; if it persists, " + _WINDOWS_DRIVER_FIX)
    return Seen(f"{what} (\"Failed to initialize NVML: Driver/library version mismatch\")",
                "reboot after the driver upgrade (or reload the modules: `sudo rmmod nvidia_uvm nvidia_drm "
                "nvidia_modeset nvidia && sudo modprobe nvidia`); in a container, the driver libraries must be the "
                "host's (NVIDIA Container Toolkit)")


def container_lost_gpus(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if not (_linux(p) and p.container and p.nvml_init == 999):
        return None
    return Seen("NVML answers \"Unknown Error\" inside this running container: the host revoked its device access "
                "(a `systemctl daemon-reload` with the systemd cgroup driver)",
                "restart the container; for good, apply the NVIDIA Container Toolkit's fix "
                "(NVIDIA/nvidia-container-toolkit#48: `nvidia-ctk system create-dev-char-symlinks`)")


def container_no_compute(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if not (_linux(p) and p.container and p.nvml_lib and not p.libcuda):
        return None
    caps = p.nvidia_driver_capabilities or "utility"
    return Seen(f"NVML is in this container but libcuda.so.1 is not: NVIDIA_DRIVER_CAPABILITIES={caps} leaves out "
                "'compute' (nvidia-smi works, every CUDA application fails)",
                "start the container with `-e NVIDIA_DRIVER_CAPABILITIES=compute,utility` (or "
                "`--gpus 'all,\"capabilities=compute,utility\"'`)")


def container_without_gpu(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if not (_linux(p) and p.container and not p.anything):
        return None
    asked = (p.nvidia_visible_devices or "").strip().lower() not in ("", "void", "none")
    return Seen("this container has no GPU access: no NVIDIA device nodes or driver libraries inside",
                _CONTAINER_FIX, "problem" if wanted or asked else "info")


def _no_kernel_module(p: DriverProbe) -> bool:
    return (_linux(p) and bool(p.libcuda or p.nvml_lib) and not p.kernel_module and not p.wsl and not p.answered
            and not p.nvml_answered)


def stale_nodes(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if not (_no_kernel_module(p) and "nvidiactl" in p.device_nodes):
        return None
    return Seen("/dev/nvidiactl exists but no NVIDIA kernel module is loaded (a stale node, or /dev bind-mounted into "
                "a container): a file check says 'driver', the driver cannot answer",
                "load the kernel module (below); the nodes are recreated by it")


def kernel_module(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if not _no_kernel_module(p):
        return None
    return Seen(f"user-space driver {p.user_space or '(unknown version)'} is installed, but the NVIDIA kernel module "
                "is not loaded",
                _CONTAINER_FIX if p.container else
                "load it: `sudo modprobe nvidia` (if that fails, rebuild it for this kernel with `sudo dkms "
                "autoinstall` or reinstall the driver; with Secure Boot the module must be signed), or reboot; in a "
                "container, start it with `--gpus all` and the NVIDIA Container Toolkit")


def libcuda_missing(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if not (p.nvml_lib and not p.libcuda and not p.wsl):
        return None
    if not _linux(p):
        return Seen("NVML is installed but nvcuda.dll is not: the driver's CUDA library is missing",
                    _WINDOWS_DRIVER_FIX)
    return Seen("NVML is installed but libcuda.so.1 is not: the driver's CUDA library is missing",
                "install the driver's CUDA library (Debian: `apt install libcuda1`; Ubuntu: "
                "`apt install libnvidia-compute-<version>`), matching the kernel module "
                f"{p.kernel_module or ''}".rstrip())


def fabric_manager(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if p.cu_init != 802 or not _linux(p):
        return None
    return Seen(f"CUDA is not ready ({cuda_code(802)}): on an NVSwitch system (HGX/DGX A100, H100, H200, B200) the "
                f"NVIDIA Fabric Manager is not running, or its version is not the driver's "
                f"{p.user_space or ''}".rstrip(),
                "start it: `sudo systemctl enable --now nvidia-fabricmanager`; it must be the same version as the "
                f"driver (Debian/Ubuntu: `apt install nvidia-fabricmanager-<branch>={p.user_space or '<driver>'}*`); "
                "`journalctl -u nvidia-fabricmanager` shows why it stopped")


def cuda_unknown(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if p.cu_init != 999:
        return None
    if not _linux(p):
        return Seen(f"cuInit failed with {cuda_error(999)}", "reboot; if it persists, " + _WINDOWS_DRIVER_FIX)
    uvm = "nvidia-uvm" in p.device_nodes
    return Seen(f"cuInit failed with {cuda_error(999)}" + ("" if uvm else "; /dev/nvidia-uvm is missing"),
                "create it: `sudo nvidia-modprobe -u -c=0` (or `sudo modprobe nvidia-uvm`)" if not uvm else
                "after suspend/resume: `sudo rmmod nvidia_uvm && sudo modprobe nvidia_uvm`; else reboot")


def gpu_unavailable(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    busy = [(o, m) for o, m, code in p.restricted_devices if code == 46]
    if not busy or not p.answered:
        return None
    modes = ", ".join(f"cuda:{o} ({COMPUTE_MODES.get(m, m)})" for o, m in busy)
    all_busy = isinstance(p.device_count, int) and len(busy) >= p.device_count
    prohibited = [o for o, m in busy if m == 2]
    admin = "`sudo nvidia-smi" if _linux(p) else "`nvidia-smi"  # Windows: from an administrator's prompt
    fix = (f"{admin} -i {prohibited[0]} -c DEFAULT` lets processes use it again" if prohibited else
           "`nvidia-smi --query-compute-apps=pid,process_name,gpu_uuid --format=csv` names the process that holds "
           "it: stop it, or choose another GPU with CUDA_VISIBLE_DEVICES; an administrator can allow sharing with "
           f"{admin} -i {busy[0][0]} -c DEFAULT`")
    return Seen(f"{'every GPU is' if all_busy else 'some GPUs are'} unavailable to new processes "
                f"({cuda_code(46)}): {modes}", fix, "problem" if all_busy else "warning")


def no_gpu(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if not (p.cu_init == 100 or (p.cu_init == 0 and p.device_count == 0)):
        return None
    version = p.kernel_module or p.user_space
    hidden = "unset CUDA_VISIBLE_DEVICES if it hides every GPU"
    fix = ("check `nvidia-smi` and `lspci | grep -i nvidia`; in a VM or container, pass the GPU through; " + hidden
           if _linux(p) else "check Device Manager (Display adapters) and `nvidia-smi`; " + hidden)
    return Seen(f"the driver{' ' + version if version else ''} is loaded but sees no GPU ({cuda_code(100)})", fix)


def wsl_no_driver(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if p.anything or not p.wsl or not _linux(p):
        return None
    return Seen("WSL2 without /usr/lib/wsl/lib/libcuda.so.1: the Windows NVIDIA driver is not installed or too old "
                "for WSL", "install the current NVIDIA driver on Windows (it provides /usr/lib/wsl/lib)",
                "problem" if wanted else "info")


def no_driver(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if p.anything:
        return None
    return Seen("NVIDIA driver: not found", "install the NVIDIA driver to use a GPU (https://www.nvidia.com/drivers)",
                "problem" if wanted else "info")


def not_answering(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    """The catch-all: something NVIDIA is here and CUDA did not answer, for a reason no rule above names."""
    if p.answered or not p.anything:
        return None
    if p.cu_init is None:
        why = p.init_skipped or ("libcuda could not be loaded: " + (p.libcuda_error or "?") if not p.libcuda
                                 else "cuInit was not called")
        return Seen(f"CUDA was not asked: {why}",
                    "run `nvidia-smi` for the driver's own message; `gpuboot doctor --json` has the probe")
    return Seen(f"the NVIDIA driver is present but CUDA did not answer (cuInit: {cuda_error(p.cu_init)}, "
                f"nvmlInit: {nvml_error(p.nvml_init)})",
                "run `nvidia-smi` for the driver's own message; `gpuboot doctor --json` has the probe"
                if _linux(p) else _WINDOWS_DRIVER_FIX)


#: A rule: the probe and whether a GPU is wanted -> what it saw, or ``None``.
RuleFunction = Callable[[DriverProbe, bool], Optional[Seen]]


class CauseRule(NamedTuple):
    """One row of ``CAUSES``."""

    id: str
    layer: str
    rule: RuleFunction
    source: str
    then: bool = False  # keep asking the rules below after this one matched


#: The rules, most fundamental layer first.
CAUSES: Tuple[CauseRule, ...] = (
    CauseRule("driver-probe-failed", "driver", probe_failed, "gpuboot probe: the child process hung or crashed"),
    CauseRule("stub-libcuda", "library path", stub_libcuda, "cuda.h 34 CUDA_ERROR_STUB_LIBRARY"),
    CauseRule("compat-unsupported-gpu", "compat library", compat_unsupported,
              "CUDA Compatibility guide: forward compatibility; cuda.h 804"),
    CauseRule("compat-older-than-driver", "compat library", compat_older, "CUDA Compatibility guide; cuda.h 803"),
    CauseRule("wsl-linux-driver", "WSL", wsl_linux_driver,
              "CUDA on WSL User Guide: do not install a Linux display driver in WSL"),
    CauseRule("driver-version-mismatch", "driver", version_mismatch, "nvml.h 18 NVML_ERROR_LIB_RM_VERSION_MISMATCH"),
    CauseRule("container-lost-gpus", "container", container_lost_gpus,
              "NVIDIA/nvidia-container-toolkit#48; nvml.h 999"),
    CauseRule("container-no-compute", "container", container_no_compute,
              "NVIDIA Container Toolkit: driver capabilities"),
    CauseRule("container-without-gpu", "container", container_without_gpu,
              "NVIDIA Container Toolkit: docker run --gpus"),
    CauseRule("stale-device-nodes", "device nodes", stale_nodes, "cuda.h 100 / nvml.h 9 with no /proc/driver/nvidia",
              then=True),
    CauseRule("kernel-module-not-loaded", "kernel module", kernel_module,
              "nvml.h 9 NVML_ERROR_DRIVER_NOT_LOADED, cuda.h 100"),
    CauseRule("libcuda-missing", "driver", libcuda_missing, "ctranslate2 and torch load libcuda.so.1 by name"),
    CauseRule("fabric-manager-not-running", "fabric manager", fabric_manager,
              "cuda.h 802 CUDA_ERROR_SYSTEM_NOT_READY; NVIDIA Fabric Manager user guide"),
    CauseRule("cuda-unknown-error", "kernel module", cuda_unknown, "cuda.h 999 CUDA_ERROR_UNKNOWN"),
    CauseRule("gpu-unavailable", "GPU", gpu_unavailable,
              "cuda.h 46 CUDA_ERROR_DEVICE_UNAVAILABLE, CUcomputemode"),
    CauseRule("no-gpu", "GPU", no_gpu, "cuda.h 100 CUDA_ERROR_NO_DEVICE"),
    CauseRule("wsl-no-driver", "WSL", wsl_no_driver, "CUDA on WSL User Guide"),
    CauseRule("no-driver", "driver", no_driver, "gpuboot probe: no NVIDIA library, kernel module or device node"),
    CauseRule("driver-not-answering", "driver", not_answering, "gpuboot probe"),
)
