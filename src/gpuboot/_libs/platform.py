"""Which platform's library layout applies: ``"linux"`` or ``"win32"``."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Tuple

    from .types import Platform

__all__ = ["current_platform", "check_platform", "library_path_variable"]

#: The variable a child's loader reads to find libraries, and its list separator
#: (ld.so(8): LD_LIBRARY_PATH; Windows: PATH, searched by LoadLibrary).
_LIBRARY_PATH = {"linux": ("LD_LIBRARY_PATH", ":"), "win32": ("PATH", ";")}


def current_platform() -> Platform:
    """This host's platform: ``"win32"`` on Windows, else ``"linux"``."""
    return "win32" if sys.platform == "win32" else "linux"


def check_platform(platform: Optional[str] = None) -> Platform:
    """``platform`` (a ``Machine``'s), or when ``None`` this process's.

    Raises:
        ValueError: neither ``"linux"`` nor ``"win32"``.
    """
    if platform is None:
        return current_platform()
    if platform in ("linux", "win32"):
        return platform  # type: ignore[return-value]
    raise ValueError(f"platform must be 'linux' or 'win32', not {platform!r}")


def library_path_variable(platform: str) -> Tuple[str, str]:
    """``("LD_LIBRARY_PATH", ":")`` on Linux, ``("PATH", ";")`` on Windows."""
    return _LIBRARY_PATH["win32" if platform == "win32" else "linux"]
