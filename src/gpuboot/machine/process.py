"""This process as the machine lets it run: the CPUs and RAM it may use, the shared objects it has mapped, and
the environment it started with.  Readers only: a ``Machine`` snapshot calls them once."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional

__all__ = ["cpu_threads", "available_ram", "mapped_paths", "initial_environ"]


def cpu_threads(*, cgroup_root: str = "/sys/fs/cgroup") -> int:
    """CPUs this process may use: its affinity mask (``taskset``, Docker
    ``--cpuset-cpus``) capped by the cgroup v2 CPU quota (Docker ``--cpus``)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        with open(os.path.join(cgroup_root, "cpu.max")) as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(int(quota) / int(period) + 0.5)))
    except (OSError, ValueError):
        pass
    return max(1, n)


def available_ram() -> int:
    """RAM available to new allocations, bytes (``MemAvailable``), 0 when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def mapped_paths(maps: str = "/proc/self/maps") -> List[str]:
    """Paths of the shared objects mapped into this process, first seen first (``[]`` where ``/proc`` is
    absent)."""
    try:
        with open(maps) as f:
            text = f.read()
    except OSError:
        return []
    seen: Dict[str, None] = {}
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/") and ".so" in parts[5]:
            seen.setdefault(parts[5], None)
    return list(seen)


def initial_environ(path: str = "/proc/self/environ") -> Optional[Dict[str, str]]:
    """The environment this process started with (``/proc/self/environ``): what the dynamic loader read at
    start; ``None`` where it cannot be read."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return None
    out: Dict[str, str] = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, _, v = item.partition(b"=")
            out[os.fsdecode(k)] = os.fsdecode(v)
    return out
