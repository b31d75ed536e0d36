"""What this process may use of the host: CPUs (affinity, cgroup quota) and available RAM."""

from __future__ import annotations

import os

__all__ = ["cpu_threads", "available_ram"]


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
