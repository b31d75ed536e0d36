"""The host facts around the driver, read from files under an injectable root: kernel module, device nodes,
container, WSL, and ``compat``/``stubs`` directories on the library path (``probe.py`` asks the driver itself)."""

from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

__all__ = ["kernel_module_version", "libcuda_hints", "is_wsl", "LIBCUDA_PLACES"]


#: Where distributions install ``libcuda.so.1`` (Debian/Ubuntu multiarch and
#: Debian's non-free ``nvidia/current``, RHEL/SUSE ``lib64``, WSL); with the
#: ``LD_LIBRARY_PATH`` entries, what ``libcuda_hints`` stats.
LIBCUDA_PLACES = ("usr/lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu/nvidia/current", "usr/lib64",
                  "usr/lib/aarch64-linux-gnu", "usr/lib/wsl/lib", "usr/local/cuda/compat")


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def kernel_module_version(root: str = "/") -> Optional[str]:
    """The loaded NVIDIA kernel module's version from ``/proc/driver/nvidia/version``
    (``NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  ...``; the open
    modules say ``Open Kernel Module``), or ``None``."""
    m = re.search(r"Kernel Module\s+(?:for \S+\s+)?([0-9]+(?:\.[0-9]+)+)",
                  _read(os.path.join(root, "proc/driver/nvidia/version")))
    return m.group(1) if m else None


def is_wsl(root: str = "/", nodes: Optional[Sequence[str]] = None) -> bool:
    """WSL2: its GPU device ``/dev/dxg`` (``nodes``: the ``/dev`` entries already listed), or "microsoft" in
    ``/proc/version`` (Microsoft's WSL kernels say so)."""
    if nodes is None:
        nodes = [n for n in ("dxg",) if os.path.exists(os.path.join(root, "dev", n))]
    return "dxg" in nodes or "microsoft" in _read(os.path.join(root, "proc/version")).lower()


def _container(root: str, env: Mapping[str, str]) -> Optional[str]:
    for marker in (".dockerenv", "run/.containerenv"):
        if os.path.exists(os.path.join(root, marker)):
            return "/" + marker
    cgroup = _read(os.path.join(root, "proc/1/cgroup"))
    for word in ("kubepods", "docker", "containerd", "libpod", "lxc"):
        if word in cgroup:
            return f"cgroup: {word}"
    if env.get("container"):
        return f"container={env['container']}"
    return None


def libcuda_hints(root: str = "/", environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """``libcuda.so.1`` files in the usual places and on ``LD_LIBRARY_PATH``:
    a user-space driver may be installed even where ``detect_driver`` sees none
    (no kernel module).  A few ``stat`` calls; nothing is loaded."""
    env = os.environ if environ is None else environ
    dirs = [os.path.join(root, p) for p in LIBCUDA_PLACES]
    dirs += [d for d in env.get("LD_LIBRARY_PATH", "").split(":") if os.path.isabs(d)]
    return [os.path.join(d, "libcuda.so.1") for d in dirs if os.path.exists(os.path.join(d, "libcuda.so.1"))]


def _host_facts(root: str, env: Mapping[str, str], plat: str) -> Dict[str, Any]:
    if plat == "win32":
        return {"kernel_module": None, "device_nodes": (), "container": None, "wsl": False, "wsl_libcuda": None,
                "library_path_dirs": ()}
    try:
        nodes = tuple(sorted(n for n in os.listdir(os.path.join(root, "dev")) if n.startswith("nvidia") or n == "dxg"))
    except OSError:
        nodes = ()
    wsl_libcuda = os.path.join(root, "usr/lib/wsl/lib/libcuda.so.1")
    wsl = is_wsl(root, nodes)
    special = []
    for d in env.get("LD_LIBRARY_PATH", "").split(":"):
        parts = d.rstrip("/").split("/")
        if d and ("compat" in parts or "stubs" in parts) and os.path.isdir(d):
            special.append(d)
    return {"kernel_module": kernel_module_version(root), "device_nodes": nodes, "container": _container(root, env),
            "wsl": wsl, "wsl_libcuda": wsl_libcuda[len(root.rstrip("/")):] if os.path.exists(wsl_libcuda) else None,
            "library_path_dirs": tuple(special)}
