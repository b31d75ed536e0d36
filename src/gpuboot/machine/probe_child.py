"""The driver asked in a child process: run by path as ``python -I -S probe_child.py MODE [INIT]``, never imported.

``-I -S``: nothing from the current directory, ``PYTHONPATH`` or site
packages can be imported by it; it needs only ``ctypes``, ``json``, ``os``
and ``sys``.  It loads ``libcuda.so.1``/``nvcuda.dll`` and
``libnvidia-ml.so.1``/``nvml.dll`` by name, through the loader's own search,
as an application would, and prints one JSON line.

Modes:
  ``probe 1|0``: ``cuDriverGetVersion``, ``cuInit`` (with ``1``),
  ``cuDeviceGetCount``, the compute mode of each GPU (and, for a prohibited or
  exclusive-process one, whether a context can be made now), ``nvmlInit_v2``,
  NVML's driver and CUDA versions; the real paths of both libraries.
  ``order``: the PCI bus id of every GPU in the CUDA driver's own order.

Every function is cuda.h's or nvml.h's; one that a library lacks is skipped.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Any, Dict, List, Optional

WIN = sys.platform == "win32"
COMPUTE_MODE_ATTRIBUTE = 20  # cuda.h CU_DEVICE_ATTRIBUTE_COMPUTE_MODE


def real_path(lib: Any, fragment: str) -> Optional[str]:
    """The file the loader mapped for ``lib`` (Windows: ``GetModuleFileNameW``; Linux: ``/proc/self/maps``)."""
    if WIN:
        k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        k32.GetModuleFileNameW.argtypes = [ctypes.c_void_p, ctypes.c_wchar_p, ctypes.c_uint]
        k32.GetModuleFileNameW.restype = ctypes.c_uint
        buf = ctypes.create_unicode_buffer(32768)
        n = k32.GetModuleFileNameW(lib._handle, buf, 32768)
        return buf.value[:n] or None
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.rstrip("\n").split(None, 5)
            if len(parts) == 6 and fragment in os.path.basename(parts[5]):
                return parts[5]
    return None


def load(out: Dict[str, Any], name: str, fragment: str, key: str, error_key: str) -> Any:
    try:
        lib = (ctypes.WinDLL if WIN else ctypes.CDLL)(name)  # type: ignore[attr-defined]
    except OSError as exc:
        out[error_key] = str(exc) or type(exc).__name__
        return None
    out[key] = real_path(lib, fragment)
    return lib


def restricted(cuda: Any, count: int) -> List[List[Optional[int]]]:
    """``[ordinal, compute mode, context code]`` for each GPU whose compute mode is not the default."""
    found: List[List[Optional[int]]] = []
    get = getattr(cuda, "cuDeviceGet", None)
    attr = getattr(cuda, "cuDeviceGetAttribute", None)
    if get is None or attr is None:
        return found
    for i in range(min(count, 64)):
        dev, mode = ctypes.c_int(), ctypes.c_int()
        if get(ctypes.byref(dev), i) != 0 or attr(ctypes.byref(mode), COMPUTE_MODE_ATTRIBUTE, dev) != 0:
            continue
        if mode.value == 0:
            continue
        code = None
        retain = getattr(cuda, "cuDevicePrimaryCtxRetain", None)
        if retain is not None:
            ctx = ctypes.c_void_p()
            code = int(retain(ctypes.byref(ctx), dev))
            release = getattr(cuda, "cuDevicePrimaryCtxRelease_v2", None) or getattr(
                cuda, "cuDevicePrimaryCtxRelease", None)
            if code == 0 and release is not None:
                release(dev)
        found.append([i, mode.value, code])
    return found


def probe(init: bool) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    cuda = load(out, "nvcuda.dll" if WIN else "libcuda.so.1", "nvcuda" if WIN else "libcuda.so", "libcuda",
                "libcuda_error")
    if cuda is not None:
        v = ctypes.c_int()
        if cuda.cuDriverGetVersion(ctypes.byref(v)) == 0:
            out["cuda_driver_version"] = v.value
        if init:
            out["cu_init"] = int(cuda.cuInit(0))
            if out["cu_init"] == 0:
                n = ctypes.c_int()
                if cuda.cuDeviceGetCount(ctypes.byref(n)) == 0:
                    out["device_count"] = n.value
                    out["restricted_devices"] = restricted(cuda, n.value)
    nvml = load(out, "nvml.dll" if WIN else "libnvidia-ml.so.1", "nvml" if WIN else "libnvidia-ml.so", "nvml_lib",
                "nvml_error")
    if nvml is not None and init:
        out["nvml_init"] = int(nvml.nvmlInit_v2())
        if out["nvml_init"] == 0:
            buf = ctypes.create_string_buffer(96)
            if nvml.nvmlSystemGetDriverVersion(buf, 96) == 0:
                out["nvml_driver_version"] = buf.value.decode(errors="replace")
            c = ctypes.c_int()
            if nvml.nvmlSystemGetCudaDriverVersion_v2(ctypes.byref(c)) == 0:
                out["nvml_cuda_version"] = c.value
            nvml.nvmlShutdown()
    return out


def order() -> Optional[List[str]]:
    cuda = (ctypes.WinDLL if WIN else ctypes.CDLL)("nvcuda.dll" if WIN else "libcuda.so.1")  # type: ignore[attr-defined]
    n = ctypes.c_int()
    if cuda.cuInit(0) or cuda.cuDeviceGetCount(ctypes.byref(n)):
        return None
    ids = []
    for i in range(n.value):
        dev, buf = ctypes.c_int(), ctypes.create_string_buffer(64)
        if cuda.cuDeviceGet(ctypes.byref(dev), i) or cuda.cuDeviceGetPCIBusId(buf, 64, dev):
            return None
        ids.append(buf.value.decode(errors="replace"))
    return ids


def main(argv: List[str]) -> int:
    if argv[:1] == ["order"]:
        try:
            ids = order()
        except (OSError, AttributeError):
            return 3
        if ids is None:
            return 3
        print(json.dumps(ids))
        return 0
    print(json.dumps(probe(argv[1:2] == ["1"])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
