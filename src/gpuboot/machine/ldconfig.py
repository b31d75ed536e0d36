"""The system loader's cache (``ldconfig -p``): soname -> paths, read once per process (a subprocess)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Dict, List, Optional

__all__ = ["ldconfig_cache"]

_CACHE: List[Dict[str, List[str]]] = []


def ldconfig_cache() -> Dict[str, List[str]]:
    """soname -> paths from ``ldconfig -p`` for this machine's word size, read once per process.  Empty where
    ldconfig is absent (Alpine, macOS)."""
    if _CACHE:
        return _CACHE[0]
    table: Dict[str, List[str]] = {}
    exe: Optional[str] = next((p for p in ("/sbin/ldconfig", "/usr/sbin/ldconfig") if os.path.exists(p)), None)
    if exe is not None:
        try:
            text = subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=10,
                                  env={"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        want64 = sys.maxsize > 2**32
        for line in text.splitlines():
            m = re.match(r"\s+(\S+) \(([^)]*)\) => (/\S.*)$", line)
            if not m:
                continue
            is64 = "64" in m.group(2)
            if is64 != want64:
                continue
            table.setdefault(m.group(1), []).append(m.group(3))
    _CACHE[:] = [table]
    return table
