"""Causes, not codes: what a ``DriverProbe`` saw, mapped to the broken layer and the exact fix.

``CAUSES`` is an ordered table, most fundamental layer first: each row names
a stable id, the layer, a small rule function and the rule's source.  A rule
reads only the probe (and whether a GPU is wanted) and returns what it saw --
title, fix, severity -- or ``None``.  The first rule that matches ends the
search unless its row says ``then=True`` (a stale device node is reported
with the missing kernel module behind it).  A new cause is one function and
one row; ``tests/test_causes.py`` feeds arbitrary probes to every rule.

The codes come from ``codes.py`` (cuda.h, nvml.h).  Facts from: NVIDIA's
CUDA Compatibility guide (forward compatibility is for data-center GPUs; the
minimum drivers below), the NVIDIA Container Toolkit documentation
(``--gpus``, ``NVIDIA_DRIVER_CAPABILITIES``; devices lost after ``systemctl
daemon-reload``: NVIDIA/nvidia-container-toolkit#48), the CUDA on WSL guide
(no Linux driver inside WSL), the Fabric Manager user guide (NVSwitch
systems: ``nvidia-fabricmanager`` running, at the driver's version) and
cuda.h's own text for each code.  Layers: ``driver``, ``kernel module``,
``device nodes``, ``container``, ``WSL``, ``compat library``, ``library path``,
``fabric manager``, ``GPU``.
"""

from __future__ import annotations

import os
from typing import Callable, List, NamedTuple, Optional, Tuple

from .._record import Record
from .codes import COMPUTE_MODES, cuda_error, cuda_version_text, nvml_error
from .probe import DriverProbe

__all__ = ["Cause", "CauseRule", "CAUSES", "driver_causes", "cause_line", "DRIVER_MINIMUMS", "driver_minimum"]

#: Minimum driver per CUDA major and platform (CUDA Toolkit release notes,
#: "CUDA Toolkit and Corresponding Driver Versions": minor version compatibility).
DRIVER_MINIMUMS = {
    11: {"linux": "450.80.02", "win32": "452.39"},
    12: {"linux": "525.60.13", "win32": "528.33"},
    13: {"linux": "580.65.06", "win32": "580.88"},
}

_CONTAINER_FIX = ("start the container with `docker run --gpus all ...` (or `--runtime=nvidia`; Kubernetes: a "
                  "`nvidia.com/gpu` resource limit) on a host with the NVIDIA Container Toolkit installed")
_WINDOWS_DRIVER_FIX = ("install (or reinstall) the current NVIDIA driver from https://www.nvidia.com/drivers, then "
                       "check the GPU in Device Manager (Display adapters) and run `nvidia-smi`")


class Cause(Record):
    """One broken layer.

    Attributes:
        id: a stable id (doctor's finding id), e.g. ``"kernel-module-not-loaded"``.
        layer: the layer that is broken (see the module docstring).
        severity: ``"problem"``, ``"warning"`` (some GPUs usable) or ``"info"``
            (nothing here asks for a GPU).
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


class Seen(NamedTuple):
    """What one rule saw: its title, fix and severity."""

    title: str
    fix: str
    severity: str = "problem"


#: A rule: the probe and whether a GPU is wanted -> what it saw, or ``None``.
RuleFunction = Callable[[DriverProbe, bool], Optional[Seen]]


class CauseRule(NamedTuple):
    """One row of ``CAUSES``."""

    id: str
    layer: str
    rule: RuleFunction
    source: str
    then: bool = False  # keep asking the rules below after this one matched


def driver_minimum(cuda_major: int, platform: str = "linux") -> Optional[str]:
    """The oldest driver that runs CUDA ``cuda_major`` on ``platform`` (``DRIVER_MINIMUMS``)."""
    return DRIVER_MINIMUMS.get(cuda_major, {}).get(platform)


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


# --------------------------------------------------------------------------- the rules, in table order


def _probe_failed(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if not p.error:
        return None
    fix = ("run `nvidia-smi`: a hang or crash here is the driver's (after suspend: `sudo rmmod nvidia_uvm && sudo "
           "modprobe nvidia_uvm`, else reboot)" if _linux(p) else
           "run `nvidia-smi`; a hang or crash here is the driver's: " + _WINDOWS_DRIVER_FIX)
    return Seen(f"the driver did not answer: {p.error}", fix)


def _stub_libcuda(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    # Only the libcuda that was loaded counts: the toolkit's lib64/stubs holds libcuda.so, which the loader never
    # takes for libcuda.so.1, so a stubs directory on the path beside a real driver is harmless.
    if p.cu_init != 34 and "stubs" not in _parts(p.libcuda or ""):
        return None
    if not _linux(p):
        return Seen(f"the nvcuda.dll the loader found ({p.libcuda or '?'}) is a stub, not the driver's "
                    f"({cuda_error(34)})", f"delete that copy; {_WINDOWS_DRIVER_FIX}")
    where = p.libcuda or "the libcuda.so.1 the loader found"
    in_path = [d for d in p.library_path_dirs if os.path.dirname(where).rstrip("/") == d.rstrip("/")]
    fix = (f"remove {in_path[0]} from LD_LIBRARY_PATH (the stub is for linking only)" if in_path else
           f"delete {where}: it is the CUDA toolkit's stub (for linking only), not the driver's; then reinstall the "
           "driver's CUDA library (Debian: `apt install --reinstall libcuda1`; Ubuntu: `apt install --reinstall "
           "libnvidia-compute-<version>`) and run `sudo ldconfig`")
    return Seen(f"the loader finds the CUDA toolkit's stub libcuda ({where}), not the driver's "
                f"({cuda_error(34)})", fix)


def _compat_unsupported(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if p.cu_init != 804 or not _linux(p):
        return None
    return Seen(f"the forward-compatibility libcuda {p.libcuda or ''} does not support this GPU ({cuda_error(804)}): "
                "forward compatibility is for data-center GPUs",
                f"remove {_libdir(p) or 'the cuda-compat directory'} from LD_LIBRARY_PATH and /etc/ld.so.conf.d (or "
                "uninstall cuda-compat), and upgrade the NVIDIA driver instead")


def _compat_older(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    compat = "compat" in _parts(p.libcuda or "")
    if not _linux(p):
        return None
    if p.cu_init != 803 and not (compat and not p.answered and _older(p.libcuda_version, p.kernel_module)):
        return None
    return Seen(f"the libcuda {p.libcuda_version or p.libcuda or ''} is not the installed driver's "
                f"{p.kernel_module or ''} ({cuda_error(803)}): a forward-compatibility libcuda older than the "
                "kernel driver".replace("  ", " "),
                f"remove {_libdir(p) or 'the cuda-compat directory'} from LD_LIBRARY_PATH and /etc/ld.so.conf.d: "
                "the installed driver is newer than the compat package")


def _wsl_linux_driver(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    lib = p.libcuda or ""
    if not (_linux(p) and p.wsl and lib and not lib.startswith("/usr/lib/wsl/") and not p.answered):
        return None
    return Seen(f"a Linux NVIDIA driver inside the WSL distribution ({lib}) shadows WSL's "
                "/usr/lib/wsl/lib/libcuda.so.1",
                "remove the Linux driver packages inside WSL (Debian/Ubuntu: `sudo apt-get remove --purge "
                "'^libnvidia-.*' '^nvidia-driver-.*'`), then `sudo ldconfig`; update the driver on Windows instead")


def _version_mismatch(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    km, user = p.kernel_module, p.user_space
    compat = "compat" in _parts(p.libcuda or "")
    differ = bool(km and user and km != user and not compat and not p.answered)
    if not differ and p.nvml_init != 18:
        return None
    what = (f"kernel module {km} and user-space driver {user} differ" if differ else
            f"NVML's library ({p.nvml_lib or 'libnvidia-ml.so.1'}) does not match the kernel module {km or '?'} "
            f"({nvml_error(18)})")
    if not _linux(p):
        return Seen(f"{what} (\"Failed to initialize NVML: Driver/library version mismatch\")",
                    "reboot after the driver upgrade; if it persists, " + _WINDOWS_DRIVER_FIX)
    return Seen(f"{what} (\"Failed to initialize NVML: Driver/library version mismatch\")",
                "reboot after the driver upgrade (or reload the modules: `sudo rmmod nvidia_uvm nvidia_drm "
                "nvidia_modeset nvidia && sudo modprobe nvidia`); in a container, the driver libraries must be the "
                "host's (NVIDIA Container Toolkit)")


def _container_lost_gpus(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if not (_linux(p) and p.container and p.nvml_init == 999):
        return None
    return Seen("NVML answers \"Unknown Error\" inside this running container: the host revoked its device access "
                "(a `systemctl daemon-reload` with the systemd cgroup driver)",
                "restart the container; for good, apply the NVIDIA Container Toolkit's fix "
                "(NVIDIA/nvidia-container-toolkit#48: `nvidia-ctk system create-dev-char-symlinks`)")


def _container_no_compute(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if not (_linux(p) and p.container and p.nvml_lib and not p.libcuda):
        return None
    caps = p.nvidia_driver_capabilities or "utility"
    return Seen(f"NVML is in this container but libcuda.so.1 is not: NVIDIA_DRIVER_CAPABILITIES={caps} leaves out "
                "'compute' (nvidia-smi works, every CUDA application fails)",
                "start the container with `-e NVIDIA_DRIVER_CAPABILITIES=compute,utility` (or "
                "`--gpus 'all,\"capabilities=compute,utility\"'`)")


def _container_without_gpu(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if not (_linux(p) and p.container and not p.anything):
        return None
    asked = (p.nvidia_visible_devices or "").strip().lower() not in ("", "void", "none")
    return Seen("this container has no GPU access: no NVIDIA device nodes or driver libraries inside",
                _CONTAINER_FIX, "problem" if wanted or asked else "info")


def _no_kernel_module(p: DriverProbe) -> bool:
    return (_linux(p) and bool(p.libcuda or p.nvml_lib) and not p.kernel_module and not p.wsl and not p.answered
            and not p.nvml_answered)


def _stale_nodes(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if not (_no_kernel_module(p) and "nvidiactl" in p.device_nodes):
        return None
    return Seen("/dev/nvidiactl exists but no NVIDIA kernel module is loaded (a stale node, or /dev bind-mounted into "
                "a container): a file check says 'driver', the driver cannot answer",
                "load the kernel module (below); the nodes are recreated by it")


def _kernel_module(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if not _no_kernel_module(p):
        return None
    return Seen(f"user-space driver {p.user_space or '(unknown version)'} is installed, but the NVIDIA kernel module "
                "is not loaded",
                _CONTAINER_FIX if p.container else
                "load it: `sudo modprobe nvidia` (if that fails, rebuild it for this kernel with `sudo dkms "
                "autoinstall` or reinstall the driver; with Secure Boot the module must be signed), or reboot; in a "
                "container, start it with `--gpus all` and the NVIDIA Container Toolkit")


def _libcuda_missing(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if not (p.nvml_lib and not p.libcuda and not p.wsl):
        return None
    if not _linux(p):
        return Seen("NVML is installed but nvcuda.dll is not: the driver's CUDA library is missing",
                    _WINDOWS_DRIVER_FIX)
    return Seen("NVML is installed but libcuda.so.1 is not: the driver's CUDA library is missing",
                "install the driver's CUDA library (Debian: `apt install libcuda1`; Ubuntu: "
                "`apt install libnvidia-compute-<version>`), matching the kernel module "
                f"{p.kernel_module or ''}".rstrip())


def _fabric_manager(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if p.cu_init != 802 or not _linux(p):
        return None
    return Seen(f"CUDA is not ready ({cuda_error(802)}): on an NVSwitch system (HGX/DGX A100, H100, H200, B200) the "
                f"NVIDIA Fabric Manager is not running, or its version is not the driver's "
                f"{p.user_space or ''}".rstrip(),
                "start it: `sudo systemctl enable --now nvidia-fabricmanager`; it must be the same version as the "
                f"driver (Debian/Ubuntu: `apt install nvidia-fabricmanager-<branch>={p.user_space or '<driver>'}*`); "
                "`journalctl -u nvidia-fabricmanager` shows why it stopped")


def _cuda_unknown(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if p.cu_init != 999:
        return None
    if not _linux(p):
        return Seen(f"cuInit failed with {cuda_error(999)}", "reboot; if it persists, " + _WINDOWS_DRIVER_FIX)
    uvm = "nvidia-uvm" in p.device_nodes
    return Seen(f"cuInit failed with {cuda_error(999)}" + ("" if uvm else "; /dev/nvidia-uvm is missing"),
                "create it: `sudo nvidia-modprobe -u -c=0` (or `sudo modprobe nvidia-uvm`)" if not uvm else
                "after suspend/resume: `sudo rmmod nvidia_uvm && sudo modprobe nvidia_uvm`; else reboot")


def _gpu_unavailable(p: DriverProbe, wanted: bool) -> Optional[Seen]:
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
                f"({cuda_error(46)}): {modes}", fix, "problem" if all_busy else "warning")


def _no_gpu(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if not (p.cu_init == 100 or (p.cu_init == 0 and p.device_count == 0)):
        return None
    version = p.kernel_module or p.user_space
    hidden = "unset CUDA_VISIBLE_DEVICES if it hides every GPU"
    fix = ("check `nvidia-smi` and `lspci | grep -i nvidia`; in a VM or container, pass the GPU through; " + hidden
           if _linux(p) else "check Device Manager (Display adapters) and `nvidia-smi`; " + hidden)
    return Seen(f"the driver{' ' + version if version else ''} is loaded but sees no GPU ({cuda_error(100)})", fix)


def _wsl_no_driver(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if p.anything or not p.wsl or not _linux(p):
        return None
    return Seen("WSL2 without /usr/lib/wsl/lib/libcuda.so.1: the Windows NVIDIA driver is not installed or too old "
                "for WSL", "install the current NVIDIA driver on Windows (it provides /usr/lib/wsl/lib)",
                "problem" if wanted else "info")


def _no_driver(p: DriverProbe, wanted: bool) -> Optional[Seen]:
    if p.anything:
        return None
    return Seen("NVIDIA driver: not found", "install the NVIDIA driver to use a GPU (https://www.nvidia.com/drivers)",
                "problem" if wanted else "info")


def _not_answering(p: DriverProbe, wanted: bool) -> Optional[Seen]:
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


#: The rules, most fundamental layer first.
CAUSES: Tuple[CauseRule, ...] = (
    CauseRule("driver-probe-failed", "driver", _probe_failed, "gpuboot probe: the child process hung or crashed"),
    CauseRule("stub-libcuda", "library path", _stub_libcuda, "cuda.h 34 CUDA_ERROR_STUB_LIBRARY"),
    CauseRule("compat-unsupported-gpu", "compat library", _compat_unsupported,
              "CUDA Compatibility guide: forward compatibility; cuda.h 804"),
    CauseRule("compat-older-than-driver", "compat library", _compat_older, "CUDA Compatibility guide; cuda.h 803"),
    CauseRule("wsl-linux-driver", "WSL", _wsl_linux_driver,
              "CUDA on WSL User Guide: do not install a Linux display driver in WSL"),
    CauseRule("driver-version-mismatch", "driver", _version_mismatch, "nvml.h 18 NVML_ERROR_LIB_RM_VERSION_MISMATCH"),
    CauseRule("container-lost-gpus", "container", _container_lost_gpus,
              "NVIDIA/nvidia-container-toolkit#48; nvml.h 999"),
    CauseRule("container-no-compute", "container", _container_no_compute,
              "NVIDIA Container Toolkit: driver capabilities"),
    CauseRule("container-without-gpu", "container", _container_without_gpu,
              "NVIDIA Container Toolkit: docker run --gpus"),
    CauseRule("stale-device-nodes", "device nodes", _stale_nodes, "cuda.h 100 / nvml.h 9 with no /proc/driver/nvidia",
              then=True),
    CauseRule("kernel-module-not-loaded", "kernel module", _kernel_module,
              "nvml.h 9 NVML_ERROR_DRIVER_NOT_LOADED, cuda.h 100"),
    CauseRule("libcuda-missing", "driver", _libcuda_missing, "ctranslate2 and torch load libcuda.so.1 by name"),
    CauseRule("fabric-manager-not-running", "fabric manager", _fabric_manager,
              "cuda.h 802 CUDA_ERROR_SYSTEM_NOT_READY; NVIDIA Fabric Manager user guide"),
    CauseRule("cuda-unknown-error", "kernel module", _cuda_unknown, "cuda.h 999 CUDA_ERROR_UNKNOWN"),
    CauseRule("gpu-unavailable", "GPU", _gpu_unavailable,
              "cuda.h 46 CUDA_ERROR_DEVICE_UNAVAILABLE, CUcomputemode"),
    CauseRule("no-gpu", "GPU", _no_gpu, "cuda.h 100 CUDA_ERROR_NO_DEVICE"),
    CauseRule("wsl-no-driver", "WSL", _wsl_no_driver, "CUDA on WSL User Guide"),
    CauseRule("no-driver", "driver", _no_driver, "gpuboot probe: no NVIDIA library, kernel module or device node"),
    CauseRule("driver-not-answering", "driver", _not_answering, "gpuboot probe"),
)


def _evidence(p: DriverProbe) -> Tuple[str, ...]:
    out = []
    if p.libcuda:
        out.append(f"libcuda: {p.libcuda}" + (f" (user-space driver {p.libcuda_version})" if p.libcuda_version else ""))
    elif p.libcuda_error:
        name = "nvcuda.dll" if p.platform == "win32" else "libcuda.so.1"
        out.append(p.libcuda_error if p.libcuda_error.startswith(name) else f"{name}: {p.libcuda_error}")
    if p.cuda_driver_version:
        out.append(f"cuDriverGetVersion: {p.cuda_driver_version} ({cuda_version_text(p.cuda_driver_version)})")
    if p.cu_init is not None:
        out.append(f"cuInit: {cuda_error(p.cu_init)}" + (f", {p.device_count} GPU(s)" if p.cu_init == 0 else ""))
    if p.nvml_init is not None:
        out.append(f"nvmlInit: {nvml_error(p.nvml_init)}")
    if p.init_skipped:
        out.append(f"cuInit/nvmlInit {p.init_skipped}")
    out.extend(f"cuda:{o}: compute mode {COMPUTE_MODES.get(m, m)}, context: {cuda_error(c)}"
               for o, m, c in p.restricted_devices)
    if p.platform != "win32":
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
    """The broken layers the probe shows, most fundamental first (``CAUSES``);
    none of severity ``"problem"`` when CUDA answered with at least one usable
    GPU (``[]``, or a warning when some GPUs are unavailable).

    Args:
        p: ``probe_driver()``'s answer.
        gpu_expected: something here wants a GPU (``NVIDIA_VISIBLE_DEVICES``
            set): "no driver at all" is then a problem, not information.

    Returns:
        ``Cause`` values; never raises.
    """
    out: List[Cause] = []
    evidence: Optional[Tuple[str, ...]] = None
    for row in CAUSES:
        seen = row.rule(p, gpu_expected)
        if seen is None:
            continue
        evidence = _evidence(p) if evidence is None else evidence
        out.append(Cause(row.id, row.layer, seen.severity, seen.title, evidence, seen.fix, row.source))
        if not row.then:
            break
    return out


def cause_line(p: DriverProbe, *, gpu_expected: bool = True) -> Optional[str]:
    """The first broken layer as one line (``select_device().reason``,
    ``load_whisper()``'s trail), or ``None`` when nothing is broken."""
    causes = driver_causes(p, gpu_expected=gpu_expected)
    return causes[0].line() if causes else None
