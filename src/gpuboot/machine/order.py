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

    from .probe import CHILD

    env = dict(os.environ if environ is None else environ)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env = {k: v for k, v in env.items() if not k.startswith("PYTHON")}
    try:  # -I -S: nothing from the current directory or PYTHONPATH is imported by the child
        proc = subprocess.run([sys.executable, "-I", "-S", CHILD, "order"], capture_output=True, text=True,
                              timeout=timeout, env=env, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            return None
        ids = json.loads(proc.stdout)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return [str(x) for x in ids] if isinstance(ids, list) else None
