"""``gpuboot.ensure()``: the one call at application start.

The no-driver path imports only ``os``, ``sys`` and ``_thread``: on a machine
without an NVIDIA driver ``ensure()`` must cost a few ``stat`` calls, not the
tens of milliseconds that importing ``dataclasses``, ``typing``, ``pathlib``
or ``logging`` costs (bench/ measures it).  The records below are therefore
plain classes.
"""

from __future__ import annotations

import _thread
import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from typing import Dict, Hashable, List, Optional, Sequence, Tuple

    from ._types import LoadedLibrary, MissingLibrary
    from .consumers import Need

__all__ = ["ensure", "EnsureReport", "DriverInfo", "detect_driver", "last_report"]


def _logger() -> logging.Logger:
    from ._log import log

    return log


class _Record:
    """A small immutable record (``dataclasses`` costs ~15 ms to import here)."""

    __slots__ = ()
    _fields: Tuple[str, ...] = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _set(self, **values: object) -> None:
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, f) == getattr(other, f) for f in self._fields)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, f) for f in self._fields))

    def __repr__(self) -> str:
        body = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({body})"


class DriverInfo(_Record):
    """Whether an NVIDIA driver is present, and the evidence.

    Found cheaply, without loading anything: Linux ``/proc/driver/nvidia/version``
    (the kernel module; also visible in containers run with the NVIDIA
    runtime), ``/dev/nvidiactl``, or WSL2's ``/dev/dxg`` with
    ``/usr/lib/wsl/lib/libcuda.so.1``; Windows ``System32\\nvcuda.dll``.
    """

    __slots__ = ("present", "evidence")
    _fields = __slots__
    present: bool
    evidence: str

    def __init__(self, present: bool, evidence: str) -> None:
        self._set(present=present, evidence=evidence)


def detect_driver(platform: Optional[str] = None) -> DriverInfo:
    """Look for an NVIDIA driver with a few ``stat`` calls (no loading)."""
    plat = platform or ("win32" if sys.platform == "win32" else "linux")
    if plat == "win32":
        system = os.path.join(os.environ.get("SystemRoot", r"C:\Windows"), "System32", "nvcuda.dll")
        if os.path.exists(system):
            return DriverInfo(True, system)
        return DriverInfo(False, f"{system} not found")
    for path in ("/proc/driver/nvidia/version", "/dev/nvidiactl"):
        if os.path.exists(path):
            return DriverInfo(True, path)
    if os.path.exists("/dev/dxg") and os.path.exists("/usr/lib/wsl/lib/libcuda.so.1"):
        return DriverInfo(True, "/usr/lib/wsl/lib/libcuda.so.1 (WSL2)")
    return DriverInfo(False, "no /proc/driver/nvidia/version, /dev/nvidiactl or WSL /dev/dxg")


class EnsureReport(_Record):
    """What ``ensure()`` found and did.

    Attributes:
        driver: the driver check.
        needs: what the installed consumers need (empty without a driver:
            nothing is worked out on a machine that cannot use it).
        libraries: one ``LoadedLibrary`` per preloaded library, load order.
        missing: libraries a consumer needs that are not installed.
        warnings: human-readable problems (also logged).
        elapsed_ms: time the work took, milliseconds.
    """

    __slots__ = ("driver", "needs", "libraries", "missing", "warnings", "elapsed_ms", "cuda_majors")
    _fields = __slots__
    driver: DriverInfo
    needs: Tuple[Need, ...]
    libraries: Tuple[LoadedLibrary, ...]
    missing: Tuple[MissingLibrary, ...]
    warnings: Tuple[str, ...]
    elapsed_ms: float
    cuda_majors: Tuple[int, ...]

    def __init__(self, driver: DriverInfo, needs: Tuple[Need, ...] = (),
                 libraries: Tuple[LoadedLibrary, ...] = (), missing: Tuple[MissingLibrary, ...] = (),
                 warnings: Tuple[str, ...] = (), elapsed_ms: float = 0.0,
                 cuda_majors: Tuple[int, ...] = ()) -> None:
        self._set(driver=driver, needs=needs, libraries=libraries, missing=missing,
                  warnings=warnings, elapsed_ms=elapsed_ms, cuda_majors=cuda_majors)

    @property
    def ok(self) -> bool:
        """True when every needed library is loaded (or no driver: nothing to do)."""
        return not self.missing and all(r.ok for r in self.libraries)

    @property
    def loaded(self) -> Tuple[LoadedLibrary, ...]:
        return tuple(r for r in self.libraries if r.ok)

    def summary(self) -> str:
        if not self.driver.present:
            return f"no NVIDIA driver ({self.driver.evidence}); nothing loaded"
        parts = [f"{len(self.loaded)} NVIDIA libraries ready"]
        if self.missing:
            parts.append(f"{len(self.missing)} missing: " + ", ".join(m.name for m in self.missing))
        failed = [r for r in self.libraries if not r.ok]
        if failed:
            parts.append(f"{len(failed)} failed to load")
        return "; ".join(parts)


_LOCK = _thread.allocate_lock()
_REPORTS: Dict[Hashable, EnsureReport] = {}
_LAST: List[EnsureReport] = []


def last_report() -> Optional[EnsureReport]:
    """The report of the latest ``ensure()`` in this process, or ``None``."""
    return _LAST[-1] if _LAST else None


def ensure(*, strict: bool = False, consumers: Optional[Sequence[str]] = None,
           search_paths: Optional[Sequence[str]] = None, platform: Optional[str] = None,
           driver: Optional[bool] = None, windows_api: object = None) -> EnsureReport:
    """Make the NVIDIA libraries that installed consumers need loadable.

    Works out, from package metadata only (nothing imported), what the
    installed consumers need -- ctranslate2 -> CUDA 12 cuBLAS (+ cuDNN 9 for
    4.5.0-4.6.2, cuDNN 8 for 4.0-4.4, CUDA 11 for 3.x), onnxruntime-gpu,
    torch -- locates those libraries (``locate.resolve``) and preloads them
    (``dllpath``).  With no consumer installed it preloads the cudart, cuBLAS
    and cuDNN wheels it finds, reporting nothing missing.

    Without an NVIDIA driver it returns at once having loaded nothing (a few
    ``stat`` calls).  Idempotent and thread-safe: the first call does the
    work under a lock, later calls with the same arguments return the same
    report.  Problems are logged on ``logging.getLogger("gpuboot")``.

    Args:
        strict: raise instead of warn when a needed library is missing or
            fails to load.
        consumers: distribution names to provide for (default: every consumer
            gpuboot knows that is installed).
        search_paths, platform: as for ``locate()`` (tests).
        driver: ``True``/``False`` to skip driver detection (tests).
        windows_api: a stand-in for the Windows API calls (tests).

    Returns:
        An ``EnsureReport``.

    Raises:
        LibraryNotFoundError: ``strict`` and a needed library is missing; the
            message names it and the exact ``pip install`` command.
        LibraryLoadError: ``strict`` and a library could not be loaded.
    """
    key = (tuple(consumers) if consumers is not None else None,
           tuple(search_paths) if search_paths is not None else None, platform, driver,
           id(windows_api) if windows_api is not None else None)
    report = _REPORTS.get(key)
    if report is None:
        with _LOCK:
            report = _REPORTS.get(key)
            if report is None:
                report = _run(consumers, search_paths, platform, driver, windows_api)
                _REPORTS[key] = report
                _LAST.append(report)
                del _LAST[:-1]
    if strict:
        _raise_for(report)
    return report


def _run(consumers: Optional[Sequence[str]], search_paths: Optional[Sequence[str]],
         platform: Optional[str], driver: Optional[bool], windows_api: object) -> EnsureReport:
    t0 = time.perf_counter()
    if driver is None:
        info = detect_driver(platform)
    else:
        info = DriverInfo(driver, "given by the caller")
    if not info.present:
        if "logging" in sys.modules:  # unconfigured logging would drop a debug record anyway
            _logger().debug("no NVIDIA driver (%s); loading nothing", info.evidence)
        return EnsureReport(info, elapsed_ms=(time.perf_counter() - t0) * 1e3)

    from . import consumers as _consumers
    from .dllpath import get_loader, load_all
    from .locate import resolve

    needs = _consumers.installed_needs(tuple(consumers) if consumers is not None else _consumers.CONSUMERS)
    groups = _group(needs)
    if not groups:
        groups = [(None, None, (), ("cudart", "cublas", "cudnn"))]
    libraries: List = []  # type: ignore[type-arg]
    missing: List[MissingLibrary] = []
    warnings: List[str] = []
    majors: List[int] = []
    for cuda_major, cudnn_major, required, optional in groups:
        res = resolve(required, cuda_major=cuda_major, cudnn_major=cudnn_major, optional=optional,
                      search_paths=search_paths, platform=platform)
        if res.cuda_major is not None and res.cuda_major not in majors:
            majors.append(res.cuda_major)
        for lib in res.libraries:
            if all(lib.path != other.path for other in libraries):
                libraries.append(lib)
        missing.extend(res.missing)
    loader = get_loader(platform, windows_api=windows_api)
    results = load_all(libraries, loader)
    for m in missing:
        warnings.append(f"{m.describe()}. Fix: {m.fix}")
    for r in results:
        if r.error:
            warnings.append(f"could not load {r.library.path}: {r.error}")
        elif r.shadowed:
            warnings.append(f"{r.library.filename} was already loaded from {r.loaded_path}, "
                            f"not from {r.library.path}")
    log = _logger()
    for w in warnings:
        log.warning("%s", w)
    report = EnsureReport(info, tuple(needs), tuple(results), tuple(missing), tuple(warnings),
                          (time.perf_counter() - t0) * 1e3, tuple(majors))
    log.debug("%s in %.1f ms", report.summary(), report.elapsed_ms)
    return report


def _group(needs: Sequence[Need]) -> List[Tuple[Optional[int], Optional[int], Tuple[str, ...], Tuple[str, ...]]]:
    """Merge needs that share a CUDA and cuDNN major into one resolution."""
    groups: Dict[Tuple[int, Optional[int]], Tuple[List[str], List[str]]] = {}
    for n in needs:
        req, opt = groups.setdefault((n.cuda_major, n.cudnn_major), ([], []))
        req.extend(x for x in n.libraries if x not in req)
        opt.extend(x for x in n.optional if x not in opt)
    out = []
    for (cuda, cudnn), (req, opt) in groups.items():
        out.append((cuda, cudnn, tuple(req), tuple(x for x in opt if x not in req)))
    return out  # type: ignore[return-value]


def _raise_for(report: EnsureReport) -> None:
    from .errors import LibraryLoadError, LibraryNotFoundError

    if report.missing:
        first = report.missing[0]
        fixes = " && ".join(dict.fromkeys(m.fix for m in report.missing))
        raise LibraryNotFoundError(report.missing,
                                   "; ".join(m.describe() for m in report.missing)
                                   if len(report.missing) > 1 else first.describe(), fixes)
    failed = {str(r.library.path): r.error or "" for r in report.libraries if not r.ok}
    if failed:
        raise LibraryLoadError(failed)


def _reset_for_tests() -> None:
    """Forget cached reports (the loaded libraries stay loaded)."""
    with _LOCK:
        _REPORTS.clear()
        _LAST.clear()
