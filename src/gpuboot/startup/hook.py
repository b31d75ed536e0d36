"""``gpuboot hook``: the opt-in start-up hook's ``.pth`` file, written into one environment's site-packages.

The file is one line that imports ``gpuboot_hook`` (a top-level module of
this distribution, ``sys`` only) and arms it with the consumers' import names;
it does nothing when gpuboot is gone.  gpuboot owns only this file
(``gpuboot-hook.pth``): ``uninstall`` removes it and nothing else.
"""

from __future__ import annotations

import os
import sysconfig
from typing import Optional, Tuple

__all__ = ["PTH_NAME", "hook_line", "site_directory", "install_hook", "uninstall_hook", "hook_path"]

#: The file gpuboot writes (and the only one ``uninstall`` removes).
PTH_NAME = "gpuboot-hook.pth"


def import_names() -> Tuple[str, ...]:
    """Every consumer's top-level import names (its row's ``imports``), once each, table order."""
    from ..consumers.table import CONSUMER_TABLE

    return tuple(dict.fromkeys(name for row in CONSUMER_TABLE for name in row.imports))


def hook_line(names: Optional[Tuple[str, ...]] = None) -> str:
    """The ``.pth`` line: ``site`` executes lines that start with ``import``.  Quiet when gpuboot is uninstalled
    and the file left behind (pip does not know it)."""
    watched = import_names() if names is None else names
    body = f"try:\n import gpuboot_hook\nexcept ImportError:\n pass\nelse:\n gpuboot_hook.arm({watched!r})\n"
    return f"import sys; exec({body!r})\n"


def site_directory(site: Optional[str] = None) -> str:
    """Where the file goes: ``site`` (an existing absolute directory), else this interpreter's ``purelib``.

    Raises:
        ValueError: ``site`` is relative, missing or not a directory.
    """
    if site is None:
        return sysconfig.get_paths()["purelib"]
    if not os.path.isabs(site):
        raise ValueError(f"the site directory must be an absolute path, not {site!r}")
    if not os.path.isdir(site):
        raise ValueError(f"no such directory: {site}")
    return os.path.normpath(site)


def hook_path(site: Optional[str] = None) -> str:
    return os.path.join(site_directory(site), PTH_NAME)


def install_hook(site: Optional[str] = None) -> str:
    """Write the hook into ``site`` (default: this interpreter's site-packages); returns the file's path.
    Written to a temporary name and renamed into place.  The temporary name does not start with a dot: Wine marks
    such files hidden, the mark survives the rename, and ``site`` skips hidden ``.pth`` files (Python 3.13)."""
    import tempfile

    path = hook_path(site)
    fd, tmp = tempfile.mkstemp(prefix="gpuboot-hook-", suffix=".tmp", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(hook_line())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def uninstall_hook(site: Optional[str] = None) -> Optional[str]:
    """Remove the hook from ``site``; returns the removed path, or ``None`` when there was none."""
    path = hook_path(site)
    if not os.path.lexists(path):
        return None
    os.unlink(path)
    return path
