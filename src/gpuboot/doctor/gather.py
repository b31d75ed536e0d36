"""``gather()``: this process and machine read into a doctor ``Context``; every source injectable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ..consumers import installed_distributions, malformed_distributions, read_metadata
from .report import Context

__all__ = ["gather"]

def _initial_environ() -> Optional[Dict[str, str]]:
    """The environment this process started with (``/proc/self/environ``):
    what the dynamic loader read at start."""
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        return None
    out: Dict[str, str] = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, _, v = item.partition(b"=")
            out[os.fsdecode(k)] = os.fsdecode(v)
    return out


def _loaded_objects() -> List[str]:
    from .._libs.loaded import mapped_paths

    return mapped_paths()


def gather(*, consumers: Optional[Sequence[str]] = None, platform: Optional[str] = None,
           environ: Optional[Mapping[str, str]] = None, search_paths: Optional[Sequence[str]] = None,
           nvml: Any = None, driver: Optional[bool] = None,
           metadata: Optional[Callable[[str], Optional[Tuple[str, Sequence[str]]]]] = None,
           loaded: Optional[List[str]] = None, initial_environ: Optional[Mapping[str, str]] = None,
           wsl: Optional[bool] = None, cpu_threads: Optional[int] = None, probe: Any = None,
           distributions: Optional[Callable[[], Sequence[Tuple[str, str, Sequence[str]]]]] = None,
           malformed: Optional[Callable[[], Sequence[Any]]] = None) -> Context:
    """Read this process and machine into a ``Context``; every argument
    replaces one source (tests).

    ``probe`` is a ``DriverProbe`` (``_gpus.probe``); when the driver check is
    not given (``driver=None``) and no probe is, the driver is asked
    (``probe_driver()``: a child process, ~60 ms)."""
    from .._gpus.driver import DriverInfo, detect_driver
    from .._gpus.nvml import discover
    from .._libs.platform import check_platform
    from .._libs.resolve import locate
    from ..consumers import CONSUMERS, installed_needs

    plat = check_platform(platform)
    env = dict(os.environ if environ is None else environ)
    meta = metadata or read_metadata
    info = detect_driver(plat) if driver is None else DriverInfo(present=driver, evidence="given by the caller")
    present, evidence = info.present, info.evidence
    names = CONSUMERS if consumers is None else tuple(consumers)
    needs = installed_needs(names, meta)
    inv = discover(nvml=nvml, environ=env, driver=info)
    installed = locate(search_paths=search_paths, platform=plat)
    if probe is None and driver is None:
        from .._gpus.probe import probe_driver

        probe = probe_driver(environ=env, platform=plat)
    if wsl is None:
        wsl = probe.wsl if probe is not None else (
            os.path.exists("/usr/lib/wsl/lib/libcuda.so.1") or "microsoft" in _read("/proc/version").lower())
    return Context(plat, env, _initial_environ() if initial_environ is None and environ is None else initial_environ,
                   present, evidence, inv, needs, installed,
                   _loaded_objects() if loaded is None else loaded, search_paths, meta, wsl, cpu_threads, probe,
                   installed_distributions if distributions is None else distributions,
                   malformed_distributions if malformed is None else malformed)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
