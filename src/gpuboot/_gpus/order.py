"""CUDA's own device order, asked of the driver (``libcuda``) in a short-lived child process."""

from __future__ import annotations

import os
from typing import List, Mapping, Optional

__all__ = ["cuda_order_from_driver"]

def cuda_order_from_driver(environ: Optional[Mapping[str, str]] = None, timeout: float = 20.0) -> Optional[List[str]]:
    """PCI bus ids in the order the CUDA driver enumerates every GPU, asked of
    libcuda (``cuInit``, ``cuDeviceGet``, ``cuDeviceGetPCIBusId``) in a
    short-lived child process, so this process creates no CUDA context (as
    nvitop does).  ``CUDA_DEVICE_ORDER`` is passed on; ``CUDA_VISIBLE_DEVICES``
    is not (every GPU is wanted).  ``None`` when the driver cannot answer.
    """
    import json
    import subprocess
    import sys

    lib = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
    code = (
        "import ctypes, json, sys\n"
        f"cuda = ctypes.CDLL({lib!r})\n"
        "n = ctypes.c_int()\n"
        "if cuda.cuInit(0) or cuda.cuDeviceGetCount(ctypes.byref(n)): sys.exit(3)\n"
        "out = []\n"
        "for i in range(n.value):\n"
        "    dev, buf = ctypes.c_int(), ctypes.create_string_buffer(64)\n"
        "    if cuda.cuDeviceGet(ctypes.byref(dev), i) or cuda.cuDeviceGetPCIBusId(buf, 64, dev): sys.exit(3)\n"
        "    out.append(buf.value.decode())\n"
        "print(json.dumps(out))\n")
    env = dict(os.environ if environ is None else environ)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                              env=env)
        if proc.returncode != 0:
            return None
        ids = json.loads(proc.stdout)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return [str(x) for x in ids] if isinstance(ids, list) else None


