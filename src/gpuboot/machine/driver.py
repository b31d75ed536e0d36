"""Is an NVIDIA driver present?  A few ``stat`` calls; imports only ``os`` and ``sys``."""

from __future__ import annotations

import os
import sys

from ..base.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

__all__ = ["DriverInfo", "detect_driver"]


class DriverInfo(Record):
    """Whether an NVIDIA driver is present, and the evidence.

    Found cheaply, without loading anything: Linux ``/proc/driver/nvidia/version``
    (the kernel module; also visible in containers run with the NVIDIA
    runtime), ``/dev/nvidiactl``, or WSL2's ``/dev/dxg`` with
    ``/usr/lib/wsl/lib/libcuda.so.1``; Windows ``System32\\nvcuda.dll``.
    """

    present: bool
    evidence: str


def detect_driver(*, root: Optional[str] = None, platform: Optional[str] = None) -> DriverInfo:
    """Look for an NVIDIA driver with a few ``stat`` calls (no loading).

    Args:
        root: the file-system root the Linux paths are read under (default ``/``; a container's or a chroot's
            root file system to inspect another).
        platform: ``"linux"`` or ``"win32"``: whose driver files are looked for (default: this process's).
            A ``Machine`` snapshot's ``driver`` is this function's answer for its ``root`` and ``platform``.

    Returns:
        A ``DriverInfo``; never raises.
    """
    root = root or "/"
    if (platform or sys.platform) == "win32":
        system = os.path.join(os.environ.get("SystemRoot", r"C:\Windows"), "System32", "nvcuda.dll")
        if os.path.exists(system):
            return DriverInfo(present=True, evidence=system)
        return DriverInfo(present=False, evidence=f"{system} not found")
    for path in ("/proc/driver/nvidia/version", "/dev/nvidiactl"):
        if os.path.exists(os.path.join(root, path[1:])):
            return DriverInfo(present=True, evidence=path)
    wsl_libcuda = os.path.join(root, "usr/lib/wsl/lib/libcuda.so.1")
    if os.path.exists(os.path.join(root, "dev/dxg")) and os.path.exists(wsl_libcuda):
        return DriverInfo(present=True, evidence="/usr/lib/wsl/lib/libcuda.so.1 (WSL2)")
    return DriverInfo(present=False, evidence="no /proc/driver/nvidia/version, /dev/nvidiactl or WSL /dev/dxg")
