"""``gpuboot.ensure()``: make what the installed consumers need loadable, once per process.

The no-driver path imports only ``os``, ``sys`` and ``_thread``: on a machine
without an NVIDIA driver ``ensure()`` must cost a few ``stat`` calls, not the
tens of milliseconds that importing ``dataclasses``, ``typing``, ``pathlib``
or ``logging`` costs (bench/ measures it).  The report is therefore a plain
``Record``.
"""

from __future__ import annotations

import _thread
import sys
import time

from .base.record import Record
from .machine.driver import DriverInfo
from .machine.snapshot import current

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Hashable, List, Optional, Sequence, Tuple

    from ._libs.types import LoadedLibrary, MissingLibrary
    from .consumers.types import Need
    from .machine.snapshot import Machine

__all__ = ["ensure", "EnsureReport", "last_report"]


class EnsureReport(Record):
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

    driver: DriverInfo
    needs: Tuple[Need, ...] = ()
    libraries: Tuple[LoadedLibrary, ...] = ()
    missing: Tuple[MissingLibrary, ...] = ()
    warnings: Tuple[str, ...] = ()
    elapsed_ms: float = 0.0
    cuda_majors: Tuple[int, ...] = ()

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


def ensure(*, strict: bool = False, consumers: Optional[Sequence[str]] = None) -> EnsureReport:
    """Make the NVIDIA libraries that installed consumers need loadable.

    Works out, from package metadata only (nothing imported), what the
    installed consumers need -- ctranslate2 -> CUDA 12 cuBLAS (+ cuDNN 9 for
    4.5.0-4.6.2, cuDNN 8 for 4.0-4.4, CUDA 11 for 3.x), onnxruntime-gpu,
    torch -- locates those libraries (``locate.resolve``) and preloads them
    (``dllpath``).  With no consumer installed it preloads the cudart, cuBLAS
    and cuDNN wheels it finds, reporting nothing missing.

    Without an NVIDIA driver it returns at once having loaded nothing (a few
    ``stat`` calls).  Idempotent and thread-safe: the first call does the
    work under a lock, later calls with the same arguments (on the same
    machine: ``machine.snapshot.current()``'s origin) return the same report.  Problems are logged on
    ``logging.getLogger("gpuboot")``.

    Args:
        strict: raise instead of warn when a needed library is missing or
            fails to load.  Without a driver nothing is loaded, but the
            libraries are still looked for (files only: ``locate``), so a
            build machine or CI job without a GPU catches a missing wheel.
        consumers: distribution names to provide for (default: every consumer
            gpuboot knows that is installed).

    Returns:
        An ``EnsureReport``.

    Raises:
        LibraryNotFoundError: ``strict`` and a needed library is missing (with
            a driver or without one); the message names it and the exact
            ``pip install`` command.
        LibraryLoadError: ``strict`` and a library could not be loaded.
    """
    machine = current()
    key = (tuple(consumers) if consumers is not None else None, machine.origin)
    report = _REPORTS.get(key)
    if report is None:
        with _LOCK:
            report = _REPORTS.get(key)
            if report is None:
                report = _run(machine, consumers)
                _REPORTS[key] = report
                _LAST.append(report)
                del _LAST[:-1]
    if strict:
        _raise_for(report if report.driver.present else _installed(machine, consumers, key, report))
    return report


def _installed(machine: Machine, consumers: Optional[Sequence[str]], key: Hashable,
               report: EnsureReport) -> EnsureReport:
    """Without a driver, for ``strict``: what the consumers need, looked for and not loaded (cached as ``ensure``
    caches its reports)."""
    found = _REPORTS.get(("installed", key))
    if found is None:
        from ._libs.needs import resolve_needs
        from .consumers.installed import installed_needs

        plan = resolve_needs(machine, installed_needs(machine, consumers))
        found = report._replace(needs=plan.needs, missing=plan.missing, cuda_majors=plan.cuda_majors)
        with _LOCK:
            _REPORTS[("installed", key)] = found
    return found


def _run(machine: Machine, consumers: Optional[Sequence[str]]) -> EnsureReport:
    t0 = time.perf_counter()
    info = machine.driver
    if not info.present:
        if "logging" in sys.modules:  # unconfigured logging would drop a debug record anyway
            from .base.log import log

            log.debug("no NVIDIA driver (%s); loading nothing", info.evidence)
        return EnsureReport(driver=info, elapsed_ms=(time.perf_counter() - t0) * 1e3)

    from ._libs.needs import resolve_needs
    from .base.log import log
    from .consumers.installed import installed_needs
    from .dllpath import get_loader, load_all

    needs = installed_needs(machine, consumers)
    plan = resolve_needs(machine, needs)
    results = load_all(plan.libraries, get_loader())
    warnings: List[str] = [f"{m.describe()}. Fix: {m.fix}" for m in plan.missing]
    for r in results:
        if r.error:
            warnings.append(f"could not load {r.library.path}: {r.error}")
        elif r.shadowed:
            warnings.append(f"{r.library.filename} was already loaded from {r.loaded_path}, "
                            f"not from {r.library.path}")
    for w in warnings:
        log.warning("%s", w)
    report = EnsureReport(driver=info, needs=plan.needs, libraries=tuple(results), missing=plan.missing,
                          warnings=tuple(warnings),
                          elapsed_ms=(time.perf_counter() - t0) * 1e3, cuda_majors=plan.cuda_majors)
    log.debug("%s in %.1f ms", report.summary(), report.elapsed_ms)
    return report


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
