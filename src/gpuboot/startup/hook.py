"""``gpuboot hook``: the opt-in start-up hook's ``.pth`` file, written into one environment's site-packages.

The file is one line that imports ``gpuboot_hook`` (a top-level module of
this distribution, ``sys`` only) and arms it with the consumers' import names;
it does nothing when gpuboot is gone.  gpuboot owns only this file
(``gpuboot-hook.pth``): ``uninstall`` removes it and nothing else.
"""

from __future__ import annotations

import errno
import os
import sysconfig
from typing import Optional, Tuple

__all__ = ["PTH_NAME", "hook_line", "site_directory", "user_site", "install_hook", "uninstall_hook", "hook_path"]

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


def user_site() -> str:
    """This user's site-packages (``site.getusersitepackages()``), which every Python of this user and version
    outside a virtual environment reads; created when missing.

    Raises:
        ValueError: this Python ignores the user site (a virtual environment, ``-s``, ``PYTHONNOUSERSITE``): a
            hook there would never run.
        HookError: it cannot be created.
    """
    import site
    import sys

    if sys.prefix != sys.base_prefix or not site.ENABLE_USER_SITE:
        raise ValueError("this Python does not read the user site-packages (a virtual environment, `python -s` "
                         "or PYTHONNOUSERSITE): install the hook into its own site-packages (`gpuboot hook "
                         "install`, as the environment's owner), or into a virtual environment you own")
    path = site.getusersitepackages()
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise _hook_error("create", path, exc) from None
    return path


def hook_path(site: Optional[str] = None) -> str:
    return os.path.join(site_directory(site), PTH_NAME)


#: Why a write into site-packages failed, by errno: (cause, fix).  The fixes need no sudo.
_SITE_FIXES = {
    errno.EACCES: ("this user may not change that directory (another user's or the system's environment)",
                   "install the hook where you can write: `gpuboot hook install --user` (your user site-packages, "
                   "outside a virtual environment), or a virtual environment you own (`python -m venv ~/venv && "
                   "~/venv/bin/pip install gpuboot && ~/venv/bin/gpuboot hook install`); or ask the environment's "
                   "owner to run it"),
    errno.EROFS: ("the file system is read-only",
                  "install the hook into a virtual environment on a writable file system, or `--user`"),
    errno.ENOSPC: ("no space left on the device", "free space there, then run it again"),
    errno.ENOENT: ("that directory cannot hold files", "pass a real site-packages directory with --site"),
}
_SITE_FIXES[errno.EPERM] = _SITE_FIXES[errno.EACCES]


def _hook_error(verb: str, where: str, exc: OSError, fix: str = "") -> Exception:
    from ..errors import HookError

    cause, known = _SITE_FIXES.get(exc.errno or 0, (exc.strerror or str(exc), "pass another --site, or `--user`"))
    return HookError(f"cannot {verb} {where}: {cause} ({exc.strerror or exc})", fix or known)


def install_hook(site: Optional[str] = None) -> str:
    """Write the hook into ``site`` (default: this interpreter's site-packages); returns the file's path.

    Raises:
        ValueError: ``site`` is not an absolute path to a directory.
        HookError: the file cannot be written there (the cause, and ways that need no sudo).

    Written to a temporary name and renamed into place.  The temporary name does not start with a dot: Wine marks
    such files hidden, the mark survives the rename, and ``site`` skips hidden ``.pth`` files (Python 3.13)."""
    import tempfile

    path = hook_path(site)
    try:
        fd, tmp = tempfile.mkstemp(prefix="gpuboot-hook-", suffix=".tmp", dir=os.path.dirname(path))
    except OSError as exc:
        raise _hook_error("write the hook into", os.path.dirname(path), exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(hook_line())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise _hook_error("write the hook into", os.path.dirname(path), exc) from None
    except BaseException:
        _discard(tmp)
        raise
    return path


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


def uninstall_hook(site: Optional[str] = None) -> Optional[str]:
    """Remove the hook from ``site``; returns the removed path, or ``None`` when there was none.

    Raises:
        ValueError: ``site`` is not an absolute path to a directory.
        HookError: the file cannot be removed (``GPUBOOT_HOOK=0`` still turns it off for one run).
    """
    path = hook_path(site)
    if not os.path.lexists(path):
        return None
    try:
        os.unlink(path)
    except OSError as exc:
        raise _hook_error("remove", path, exc, "ask the environment's owner to run `gpuboot hook uninstall` there; "
                          "meanwhile GPUBOOT_HOOK=0 turns the hook off for each run") from None
    return path
