"""Ask the driver: which ``libcuda`` the loader resolves and what it and NVML answer, plus the host facts around it.

``detect_driver`` (``driver.py``) only looks for files; this probe asks. A
short-lived child process loads ``libcuda.so.1`` (Windows ``nvcuda.dll``) and
``libnvidia-ml.so.1`` (``nvml.dll``) the way an application would, and
reports:

* the real path of the ``libcuda`` the loader picked (``/proc/self/maps``),
  and the driver version its file name carries (``libcuda.so.535.261.03``);
* ``cuDriverGetVersion`` (12020 = CUDA 12.2), ``cuInit(0)``'s code and
  ``cuDeviceGetCount`` (CUDA driver API, cuda.h);
* ``nvmlInit_v2``'s code, ``nvmlSystemGetDriverVersion`` and
  ``nvmlSystemGetCudaDriverVersion_v2`` (nvml.h).

The child keeps any CUDA context, crash or hang away from the caller; it is
given ``timeout`` seconds.  In this process (every root injectable for
tests): the kernel module's version (``/proc/driver/nvidia/version``), the
device nodes (``/dev/nvidiactl``, ``/dev/nvidia[0-9]*``, ``/dev/nvidia-uvm``),
container facts (``/.dockerenv``, ``/run/.containerenv``, ``/proc/1/cgroup``,
``NVIDIA_VISIBLE_DEVICES``, ``NVIDIA_DRIVER_CAPABILITIES``), WSL facts
(``/dev/dxg``, ``/usr/lib/wsl/lib``) and ``compat``/``stubs`` directories on
the library path.

Safety: run as root with no kernel module loaded, ``cuInit`` and
``nvmlInit`` create ``/dev/nvidiactl`` (mknod; seen with the 535.261.03
user-space driver), a stale node that every later "is there a driver" check
would believe.  So a process that may create device nodes (``CAP_MKNOD``)
does not call them when no kernel module is loaded (and not under WSL); the
probe says so in ``init_skipped`` and the causes are read from the rest.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from typing import Any, Dict, Mapping, Optional, Tuple

from .._record import Record
from .hostfacts import _host_facts, kernel_module_version, libcuda_hints

__all__ = ["DriverProbe", "probe_driver", "kernel_module_version", "libcuda_hints", "clear_cache"]

_CAP_MKNOD = 27  # linux/capability.h


class DriverProbe(Record):
    """What the driver and the host around it answered.

    Attributes:
        platform: ``"linux"`` or ``"win32"``.
        libcuda: real path of the ``libcuda.so.1``/``nvcuda.dll`` the loader
            resolved, or ``None`` (``libcuda_error`` says why).
        libcuda_version: the driver version in that file's name
            (``libcuda.so.535.261.03`` -> ``"535.261.03"``), else ``None``.
        cuda_driver_version: ``cuDriverGetVersion`` (12020 = CUDA 12.2), or ``None``.
        cu_init: ``cuInit(0)``'s code (0 success, 100 no device, ...), or
            ``None`` when not called.
        device_count: ``cuDeviceGetCount`` after a successful ``cuInit``, else ``None``.
        nvml_lib: real path of the NVML library loaded, or ``None``.
        nvml_init: ``nvmlInit_v2``'s code (0 success, 9 driver not loaded,
            18 library/kernel version mismatch, 999 unknown), or ``None``.
        nvml_driver_version: ``nvmlSystemGetDriverVersion``, or ``None``.
        nvml_cuda_version: ``nvmlSystemGetCudaDriverVersion_v2``, or ``None``.
        kernel_module: the loaded kernel module's version, from
            ``/proc/driver/nvidia/version``, or ``None``.
        device_nodes: the ``/dev`` entries named ``nvidia*`` (and ``dxg``).
        container: what says this is a container (``"/.dockerenv"``,
            ``"cgroup: kubepods"``, ...), or ``None``.
        nvidia_visible_devices, nvidia_driver_capabilities: the NVIDIA
            Container Toolkit's variables, as set (``None`` when unset).
        wsl: WSL2 (``/dev/dxg`` or "microsoft" in ``/proc/version``).
        wsl_libcuda: ``/usr/lib/wsl/lib/libcuda.so.1`` when present.
        library_path_dirs: ``compat`` and ``stubs`` directories on the
            library search path (``LD_LIBRARY_PATH``).
        init_skipped: why ``cuInit``/``nvmlInit`` were not called, or ``None``.
        error: the child process's failure (timeout, crash), or ``None``.
        elapsed_ms: the child process's wall time, milliseconds.
    """

    __slots__ = ("platform", "libcuda", "libcuda_error", "libcuda_version", "cuda_driver_version", "cu_init",
                 "device_count", "nvml_lib", "nvml_error", "nvml_init", "nvml_driver_version", "nvml_cuda_version",
                 "kernel_module", "device_nodes", "container", "nvidia_visible_devices",
                 "nvidia_driver_capabilities", "wsl", "wsl_libcuda", "library_path_dirs", "init_skipped", "error",
                 "elapsed_ms")
    platform: str
    libcuda: Optional[str]
    libcuda_error: Optional[str]
    libcuda_version: Optional[str]
    cuda_driver_version: Optional[int]
    cu_init: Optional[int]
    device_count: Optional[int]
    nvml_lib: Optional[str]
    nvml_error: Optional[str]
    nvml_init: Optional[int]
    nvml_driver_version: Optional[str]
    nvml_cuda_version: Optional[int]
    kernel_module: Optional[str]
    device_nodes: Tuple[str, ...]
    container: Optional[str]
    nvidia_visible_devices: Optional[str]
    nvidia_driver_capabilities: Optional[str]
    wsl: bool
    wsl_libcuda: Optional[str]
    library_path_dirs: Tuple[str, ...]
    init_skipped: Optional[str]
    error: Optional[str]
    elapsed_ms: float

    def __init__(self, platform: str = "linux", libcuda: Optional[str] = None, libcuda_error: Optional[str] = None,
                 libcuda_version: Optional[str] = None, cuda_driver_version: Optional[int] = None,
                 cu_init: Optional[int] = None, device_count: Optional[int] = None, nvml_lib: Optional[str] = None,
                 nvml_error: Optional[str] = None, nvml_init: Optional[int] = None,
                 nvml_driver_version: Optional[str] = None, nvml_cuda_version: Optional[int] = None,
                 kernel_module: Optional[str] = None, device_nodes: Tuple[str, ...] = (),
                 container: Optional[str] = None, nvidia_visible_devices: Optional[str] = None,
                 nvidia_driver_capabilities: Optional[str] = None, wsl: bool = False,
                 wsl_libcuda: Optional[str] = None, library_path_dirs: Tuple[str, ...] = (),
                 init_skipped: Optional[str] = None, error: Optional[str] = None, elapsed_ms: float = 0.0) -> None:
        self._set(platform=platform, libcuda=libcuda, libcuda_error=libcuda_error, libcuda_version=libcuda_version,
                  cuda_driver_version=cuda_driver_version, cu_init=cu_init, device_count=device_count,
                  nvml_lib=nvml_lib, nvml_error=nvml_error, nvml_init=nvml_init,
                  nvml_driver_version=nvml_driver_version, nvml_cuda_version=nvml_cuda_version,
                  kernel_module=kernel_module, device_nodes=device_nodes, container=container,
                  nvidia_visible_devices=nvidia_visible_devices,
                  nvidia_driver_capabilities=nvidia_driver_capabilities, wsl=wsl, wsl_libcuda=wsl_libcuda,
                  library_path_dirs=library_path_dirs, init_skipped=init_skipped, error=error,
                  elapsed_ms=elapsed_ms)

    @property
    def answered(self) -> bool:
        """The driver answered: ``cuInit`` returned 0 or NVML initialised."""
        return self.cu_init == 0 or self.nvml_init == 0

    @property
    def user_space(self) -> Optional[str]:
        """The user-space driver's version (libcuda's file name, else NVML's), or ``None``."""
        return self.libcuda_version or self.nvml_driver_version

    @property
    def anything(self) -> bool:
        """Any trace of an NVIDIA driver: a library, a kernel module, a device node, WSL's GPU."""
        return bool(self.libcuda or self.nvml_lib or self.kernel_module or
                    any(n.startswith("nvidia") for n in self.device_nodes) or self.wsl_libcuda)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-able: every attribute (``doctor --json``'s ``driver_probe``)."""
        return {s: (list(v) if isinstance(v, tuple) else v) for s in self._fields for v in (getattr(self, s),)}


# --------------------------------------------------------------------------- the child

_CHILD = r"""
import ctypes, json, os, re, sys
init = sys.argv[1] == "1"
out = {}
win = sys.platform == "win32"

def real_path(handle, fragment):
    if win:
        k32 = ctypes.WinDLL("kernel32", use_last_error=True)
        k32.GetModuleFileNameW.argtypes = [ctypes.c_void_p, ctypes.c_wchar_p, ctypes.c_uint]
        k32.GetModuleFileNameW.restype = ctypes.c_uint
        buf = ctypes.create_unicode_buffer(32768)
        n = k32.GetModuleFileNameW(handle._handle, buf, 32768)
        return buf.value[:n] or None
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.rstrip("\n").split(None, 5)[-1] if len(line.split(None, 5)) == 6 else ""
            if fragment in os.path.basename(path):
                return path
    return None

def load(name, fragment, key, error_key):
    try:
        lib = (ctypes.WinDLL if win else ctypes.CDLL)(name)
    except OSError as exc:
        out[error_key] = str(exc) or type(exc).__name__
        return None
    out[key] = real_path(lib, fragment)
    return lib

cuda = load("nvcuda.dll" if win else "libcuda.so.1", "nvcuda" if win else "libcuda.so", "libcuda", "libcuda_error")
if cuda is not None:
    v = ctypes.c_int()
    if cuda.cuDriverGetVersion(ctypes.byref(v)) == 0:
        out["cuda_driver_version"] = v.value
    if init:
        out["cu_init"] = cuda.cuInit(0)
        if out["cu_init"] == 0:
            n = ctypes.c_int()
            if cuda.cuDeviceGetCount(ctypes.byref(n)) == 0:
                out["device_count"] = n.value
nvml = load("nvml.dll" if win else "libnvidia-ml.so.1", "nvml" if win else "libnvidia-ml.so", "nvml_lib", "nvml_error")
if nvml is not None:
    if init:
        out["nvml_init"] = nvml.nvmlInit_v2()
        if out["nvml_init"] == 0:
            buf = ctypes.create_string_buffer(96)
            if nvml.nvmlSystemGetDriverVersion(buf, 96) == 0:
                out["nvml_driver_version"] = buf.value.decode(errors="replace")
            c = ctypes.c_int()
            if nvml.nvmlSystemGetCudaDriverVersion_v2(ctypes.byref(c)) == 0:
                out["nvml_cuda_version"] = c.value
            nvml.nvmlShutdown()
print(json.dumps(out))
"""

_CACHE: Dict[Any, DriverProbe] = {}
_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget cached probes (a test, or a driver installed since)."""
    with _LOCK:
        _CACHE.clear()


def probe_driver(*, root: str = "/", environ: Optional[Mapping[str, str]] = None, platform: Optional[str] = None,
                 timeout: float = 15.0, python: Optional[str] = None, init: Optional[bool] = None) -> DriverProbe:
    """Ask the driver (in a child process) and read the host facts around it; cached per process.

    Args:
        root: the file-system root the host facts are read under (``/``).
        environ: the environment the child gets and the facts read
            (default ``os.environ``): ``LD_LIBRARY_PATH`` decides which
            ``libcuda`` the loader finds, as for the application.
        platform: ``"linux"`` or ``"win32"`` (default: this host).
        timeout: seconds the child may take before it counts as hung.
        python: the interpreter for the child (default ``sys.executable``).
        init: call ``cuInit``/``nvmlInit`` (default: unless that could
            create a stale ``/dev/nvidiactl``; see the module docstring).

    Returns:
        A ``DriverProbe``; never raises (a failed child is its ``error``).
    """
    env = dict(os.environ if environ is None else environ)
    plat = platform or ("win32" if sys.platform == "win32" else "linux")
    key = (root, plat, tuple(sorted(env.items())), init, python)
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    facts = _host_facts(root, env, plat)
    skipped: Optional[str] = None
    if init is None:
        init = True
        if plat == "linux" and not facts["kernel_module"] and not facts["wsl"] and _may_mknod():
            init = False
            skipped = ("not called: no NVIDIA kernel module is loaded, and this process may create device "
                       "nodes (root), so cuInit/nvmlInit would leave a stale /dev/nvidiactl")
    t0 = time.perf_counter()
    answers, error = _ask(env, init, timeout, python or sys.executable)
    elapsed = (time.perf_counter() - t0) * 1e3
    if not answers.get("libcuda") and not answers.get("nvml_lib"):
        skipped = None  # nothing was there to call
    libcuda = answers.get("libcuda")
    version = None
    if libcuda:
        m = re.search(r"libcuda\.so\.(\d+\.\d+(?:\.\d+)?)$", os.path.realpath(libcuda) if plat == "linux" else "")
        version = m.group(1) if m else None
    probe = DriverProbe(plat, libcuda, answers.get("libcuda_error"), version, answers.get("cuda_driver_version"),
                        answers.get("cu_init"), answers.get("device_count"), answers.get("nvml_lib"),
                        answers.get("nvml_error"), answers.get("nvml_init"), answers.get("nvml_driver_version"),
                        answers.get("nvml_cuda_version"), facts["kernel_module"], facts["device_nodes"],
                        facts["container"], env.get("NVIDIA_VISIBLE_DEVICES"),
                        env.get("NVIDIA_DRIVER_CAPABILITIES"), facts["wsl"], facts["wsl_libcuda"],
                        facts["library_path_dirs"], skipped, error, round(elapsed, 1))
    with _LOCK:
        _CACHE[key] = probe
    return probe


def _ask(env: Mapping[str, str], init: bool, timeout: float, python: str) -> Tuple[Dict[str, Any], Optional[str]]:
    child_env = {k: v for k, v in env.items() if not k.startswith("PYTHON")}
    try:
        proc = subprocess.run([python, "-I", "-S", "-c", _CHILD, "1" if init else "0"], capture_output=True,
                              text=True, timeout=timeout, env=child_env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {}, f"the driver did not answer within {timeout:.0f} s (the probe process hung)"
    except OSError as exc:
        return {}, f"the probe process could not start: {exc}"
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        why = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
        tail = proc.stderr.strip().splitlines()[-1:] or [""]
        return {}, f"the probe process died ({why}) asking the driver {tail[0]}".strip()
    try:
        return dict(json.loads(lines[-1])), None
    except ValueError:
        return {}, f"the probe process printed no answer: {lines[-1][:200]}"


def _may_mknod() -> bool:
    """This process holds ``CAP_MKNOD`` (root, unless dropped): libcuda could create device nodes."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_MKNOD & 1)
    except (OSError, ValueError):
        pass
    return hasattr(os, "geteuid") and os.geteuid() == 0










