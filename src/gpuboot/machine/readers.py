"""How each fact of a ``Machine`` snapshot is read from this machine, when it is first asked for and not given."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

__all__ = ["read"]


def read(fact: str, ask: Callable[[str], Any]) -> Any:
    """Fact ``fact`` read from this machine; ``ask(name)`` gives the snapshot's other facts a reader depends on
    (the readers live beside this module; each is imported only when its fact is asked for)."""
    if fact == "platform":
        return "win32" if sys.platform == "win32" else "linux"
    if fact == "environ":
        return os.environ  # the process's own: ensure() on Windows puts the wheels' DLL directories on its PATH
    if fact in ("search_paths", "sites"):
        return tuple(sys.path)
    if fact == "root":
        return "/"
    if fact == "driver":
        from .driver import detect_driver

        return detect_driver(root=ask("root"), platform=ask("platform"))
    if fact == "nvml":
        try:
            import pynvml
        except ImportError:
            return None
        return pynvml
    if fact == "probe":
        from .probe import probe_driver

        return probe_driver(root=ask("root"), environ=ask("environ"), platform=ask("platform"))
    if fact == "cuda_order":
        from .order import cuda_order_from_driver

        return cuda_order_from_driver(ask("environ"))
    if fact == "cpu_threads":
        from .process import cpu_threads

        return cpu_threads()
    if fact == "ram":
        from .process import available_ram

        return available_ram()
    if fact in ("distributions", "malformed"):
        from .metadata import scan_distributions

        good, bad = scan_distributions(list(ask("sites")))
        return {"distributions": tuple(good), "malformed": tuple(bad)}
    if fact == "loaded":
        from .process import mapped_paths

        return tuple(mapped_paths()) if ask("platform") == "linux" else None  # Windows keeps no /proc
    if fact == "initial_environ":
        from .process import initial_environ

        return initial_environ()
    if fact == "wsl":
        from .hostfacts import is_wsl

        return ask("platform") == "linux" and is_wsl(ask("root"))
    if fact == "ldconfig":
        from .ldconfig import ldconfig_cache

        return ldconfig_cache()
    if fact == "windows_api":
        from .winapi import NATIVE

        return NATIVE
    if fact == "ask_consumers":
        return True
    raise AssertionError(fact)
