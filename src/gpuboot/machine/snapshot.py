"""This process and machine as gpuboot reads them: CPUs, RAM, and ``Host``, the one seam for every other source.

Every fact gpuboot reads about the machine comes from a real source -- the
platform, ``os.environ``, ``sys.path``, the driver's files, ``pynvml``, the
driver probe, package metadata, ``/proc/self/maps`` -- unless the current
``Host`` names a stand-in for it.  Public functions take only what users pass;
tests (and the Windows harness) make a ``Host`` current with ``injected(...)``
to run the real code over an injected machine.  ``current()`` costs a list
look-up; nothing here imports more than ``os``.
"""

from __future__ import annotations

import os

from ..base.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence, Tuple

__all__ = ["Host", "current", "injected", "cpu_threads", "available_ram"]


class Host(Record):
    """Stand-ins for the sources gpuboot reads; ``None`` everywhere means the real machine.

    Attributes:
        platform: ``"linux"`` or ``"win32"`` (whose library layout and loader apply).
        environ: the environment read (``LD_LIBRARY_PATH``, ``CUDA_VISIBLE_DEVICES``, ...).
        search_paths: the wheel roots searched instead of ``sys.path``.
        driver: whether an NVIDIA driver is present (skips the file checks).
        windows_api: the Windows API calls the Windows loader makes.
        nvml: a module with ``pynvml``'s functions, error classes and return types.
        probe: the driver probe's answer (``DriverProbe``).
        cuda_order: returns the CUDA driver's PCI bus order of the GPUs.
        cpu_threads: CPUs this process may use.
        metadata: ``name -> (version, Requires-Dist)`` of installed distributions.
        distributions: every installed distribution as ``(name, version, Requires-Dist)``.
        malformed: the installed distributions whose metadata is malformed.
        loaded: the shared objects this process has mapped.
        initial_environ: the environment the process started with.
        wsl: running under WSL2.
        ram: RAM available to new allocations, bytes.
        root: the file-system root the driver's files are looked for under (``/``).
        sites: the directories installed distributions (and their binaries) are looked for in, instead of
            ``sys.path``.
    """

    platform: Optional[str] = None
    environ: Optional[Mapping[str, str]] = None
    search_paths: Optional[Sequence[str]] = None
    driver: Optional[bool] = None
    windows_api: Any = None
    nvml: Any = None
    probe: Any = None
    cuda_order: Optional[Callable[[], Optional[List[str]]]] = None
    cpu_threads: Optional[int] = None
    metadata: Optional[Callable[[str], Optional[Tuple[str, Sequence[str]]]]] = None
    distributions: Optional[Callable[[], Sequence[Tuple[str, str, Sequence[str]]]]] = None
    malformed: Optional[Callable[[], Sequence[Any]]] = None
    loaded: Optional[Sequence[str]] = None
    initial_environ: Optional[Mapping[str, str]] = None
    wsl: Optional[bool] = None
    ram: Optional[int] = None
    root: Optional[str] = None
    sites: Optional[Sequence[str]] = None


_REAL = Host()
_STACK: List[Host] = []


def current() -> Host:
    """The host every source is read from: the innermost ``injected`` one, else the real machine."""
    return _STACK[-1] if _STACK else _REAL


def injected(**stand_ins: Any) -> Any:
    """A context manager making a ``Host`` with ``stand_ins`` (over the current one) current.

    Not thread-local: for tests and harnesses that inject one machine at a time.
    """
    import contextlib

    @contextlib.contextmanager
    def scope() -> Iterator[Host]:
        host = current()._replace(**stand_ins)
        _STACK.append(host)
        try:
            yield host
        finally:
            _STACK.remove(host)

    return scope()


def environ() -> Mapping[str, str]:
    """The environment gpuboot reads: the current host's, else ``os.environ``."""
    env = current().environ
    return os.environ if env is None else env


def cpu_threads(*, cgroup_root: str = "/sys/fs/cgroup") -> int:
    """CPUs this process may use: its affinity mask (``taskset``, Docker
    ``--cpuset-cpus``) capped by the cgroup v2 CPU quota (Docker ``--cpus``)."""
    given = current().cpu_threads
    if given is not None:
        return given
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
    given = current().ram
    if given is not None:
        return given
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
