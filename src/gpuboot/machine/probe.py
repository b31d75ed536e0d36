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

from ..base.record import Record
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
        restricted_devices: ``(CUDA ordinal, compute mode, context code)`` for
            each GPU whose compute mode is not the default (cuda.h
            ``CUcomputemode``: 2 prohibited, 3 exclusive-process); the context
            code is ``cuDevicePrimaryCtxRetain``'s (0, or 46
            ``CUDA_ERROR_DEVICE_UNAVAILABLE`` when another process holds it).
        init_skipped: why ``cuInit``/``nvmlInit`` were not called, or ``None``.
        error: the child process's failure (timeout, crash), or ``None``.
        elapsed_ms: the child process's wall time, milliseconds.
    """

    platform: str = "linux"
    libcuda: Optional[str] = None
    libcuda_error: Optional[str] = None
    libcuda_version: Optional[str] = None
    cuda_driver_version: Optional[int] = None
    cu_init: Optional[int] = None
    device_count: Optional[int] = None
    nvml_lib: Optional[str] = None
    nvml_error: Optional[str] = None
    nvml_init: Optional[int] = None
    nvml_driver_version: Optional[str] = None
    nvml_cuda_version: Optional[int] = None
    kernel_module: Optional[str] = None
    device_nodes: Tuple[str, ...] = ()
    container: Optional[str] = None
    nvidia_visible_devices: Optional[str] = None
    nvidia_driver_capabilities: Optional[str] = None
    wsl: bool = False
    wsl_libcuda: Optional[str] = None
    library_path_dirs: Tuple[str, ...] = ()
    restricted_devices: Tuple[Tuple[int, int, Optional[int]], ...] = ()
    init_skipped: Optional[str] = None
    error: Optional[str] = None
    elapsed_ms: float = 0.0

    @property
    def answered(self) -> bool:
        """CUDA answered: ``cuInit`` returned 0 and ``cuDeviceGetCount`` counted at least one GPU.

        NVML answering is not enough: in a container started with
        ``NVIDIA_DRIVER_CAPABILITIES=utility``, with a ``cuda-compat``
        ``libcuda`` on a GeForce, or without ``/dev/nvidia-uvm``, NVML (and
        ``nvidia-smi``) answer while every CUDA application fails."""
        return self.cu_init == 0 and isinstance(self.device_count, int) and self.device_count > 0

    @property
    def nvml_answered(self) -> bool:
        """NVML initialised (``nvmlInit_v2`` returned 0): ``nvidia-smi`` would work."""
        return self.nvml_init == 0

    @property
    def unavailable_ordinals(self) -> Tuple[int, ...]:
        """CUDA ordinals no context can be made on now (``CUDA_ERROR_DEVICE_UNAVAILABLE``, 46)."""
        return tuple(o for o, _mode, code in self.restricted_devices if code == 46)

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

#: The child's script, run by path with ``-I -S`` (``probe_child.py``).
CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe_child.py")

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
        A ``DriverProbe``; never raises (a failed child is its ``error``).  A ``Machine`` snapshot's
        ``probe`` is this function's answer for its root, environment and platform.
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
    probe = DriverProbe(platform=plat, libcuda=libcuda, libcuda_error=answers.get("libcuda_error"),
                        libcuda_version=version, cuda_driver_version=answers.get("cuda_driver_version"),
                        cu_init=answers.get("cu_init"), device_count=answers.get("device_count"),
                        nvml_lib=answers.get("nvml_lib"),
                        nvml_error=answers.get("nvml_error"), nvml_init=answers.get("nvml_init"),
                        nvml_driver_version=answers.get("nvml_driver_version"),
                        nvml_cuda_version=answers.get("nvml_cuda_version"), kernel_module=facts["kernel_module"],
                        device_nodes=facts["device_nodes"],
                        container=facts["container"], nvidia_visible_devices=env.get("NVIDIA_VISIBLE_DEVICES"),
                        nvidia_driver_capabilities=env.get("NVIDIA_DRIVER_CAPABILITIES"), wsl=facts["wsl"],
                        wsl_libcuda=facts["wsl_libcuda"],
                        library_path_dirs=facts["library_path_dirs"],
                        restricted_devices=_restricted(answers.get("restricted_devices")), init_skipped=skipped,
                        error=error,
                        elapsed_ms=round(elapsed, 1))
    with _LOCK:
        _CACHE[key] = probe
    return probe


def _ask(env: Mapping[str, str], init: bool, timeout: float, python: str) -> Tuple[Dict[str, Any], Optional[str]]:
    child_env = {k: v for k, v in env.items() if not k.startswith("PYTHON")}
    try:
        proc = subprocess.run([python, "-I", "-S", CHILD, "probe", "1" if init else "0"], capture_output=True,
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


def _restricted(raw: Any) -> Tuple[Tuple[int, int, Optional[int]], ...]:
    """The child's ``restricted_devices`` as typed tuples; anything malformed is dropped."""
    out = []
    for item in raw if isinstance(raw, list) else ():
        if (isinstance(item, list) and len(item) == 3 and isinstance(item[0], int) and isinstance(item[1], int)
                and (item[2] is None or isinstance(item[2], int))):
            out.append((item[0], item[1], item[2]))
    return tuple(out)


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
