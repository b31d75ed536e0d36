"""``gather()``: this process and machine read into a doctor ``Context``; every source injectable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional, Sequence

from ..consumers.pairings import installed_distributions, malformed_distributions
from ..consumers.table import read_metadata
from ..machine import snapshot as _host
from ..machine.snapshot import current
from .report import Context

__all__ = ["gather"]


def _initial_environ() -> Optional[Dict[str, str]]:
    """The environment this process started with (``/proc/self/environ``):
    what the dynamic loader read at start."""
    given = current().initial_environ
    if given is not None:
        return dict(given)
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


def gather(*, consumers: Optional[Sequence[str]] = None) -> Context:
    """This process and machine read into a ``Context`` (the current ``_host.Host``'s stand-ins, if any).

    The driver is asked (``probe_driver()``: a child process, ~60 ms).

    Args:
        consumers: the distribution names checked (default: every consumer gpuboot knows).
    """
    from .._gpus.nvml import _discover
    from .._libs.loaded import mapped_paths
    from .._libs.platform import check_platform
    from .._libs.resolve import locate
    from ..consumers.binaries import installed_binaries
    from ..consumers.table import CONSUMERS, consumer, installed_needs
    from ..machine.driver import detect_driver
    from ..machine.hostfacts import is_wsl
    from ..machine.probe import probe_of_host

    host = current()
    plat = check_platform()
    env = dict(_host.environ())
    info = detect_driver()
    needs = installed_needs(CONSUMERS if consumers is None else tuple(consumers))
    inv = _discover(environ=env, driver=info)
    installed = locate()
    probe = probe_of_host(env)
    wsl = host.wsl
    if wsl is None:
        wsl = probe.wsl if probe is not None else is_wsl()
    binaries = {}
    for need in needs:
        row = consumer(need.consumer)
        if row is not None and row.binaries:
            binaries[need.consumer] = installed_binaries(row.name, row.binaries)
    return Context(platform=plat, environ=env,
                   initial_environ=_initial_environ() if host.environ is None else host.initial_environ,
                   driver_present=info.present, driver_evidence=info.evidence, inventory=inv, needs=needs,
                   installed=installed, loaded=mapped_paths(), search_paths=host.search_paths,
                   metadata=host.metadata or read_metadata, wsl=wsl, cpu_threads=_host.cpu_threads(), probe=probe,
                   distributions=host.distributions or installed_distributions,
                   malformed=host.malformed or malformed_distributions, binaries=binaries)
