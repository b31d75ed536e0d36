"""Which directories may go on a library search path: absolute, not writable by others, not the current directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import List, Optional, Sequence, Set, Tuple

__all__ = ["safe_directory", "search_roots"]


def safe_directory(path: Path) -> bool:
    """True when ``path`` may be put on a library search path: absolute, an
    existing directory, not writable by every user (no ``o+w``), and with no
    ancestor that another user could use to swap it (``o+w`` without the
    sticky bit; ``/tmp`` itself, mode 1777, is fine).  On Windows only the
    absolute-and-directory part applies."""
    if not path.is_absolute():
        return False
    try:
        st = path.stat()
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        return False
    if os.name == "nt":
        return True
    if st.st_mode & stat.S_IWOTH:
        return False
    return all(_ancestor_safe(str(p)) for p in path.parents)


def _ancestor_safe(path: str) -> bool:
    # Not cached: a directory's mode can change while the process runs.
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (mode & stat.S_IWOTH) or bool(mode & stat.S_ISVTX)


def search_roots(search_paths: Sequence[str]) -> List[Path]:
    """The wheel roots to search: ``search_paths`` (a ``Machine``'s: ``sys.path`` or what the caller gave)
    without empty or relative entries (both mean the current directory), repeats, or the current directory
    itself by any absolute path (``python -m`` puts it on ``sys.path``: never a library path)."""
    roots: List[Path] = []
    seen: Set[str] = set()
    cwd = _identity(".")
    for entry in search_paths:
        if not entry or not os.path.isabs(entry):
            continue
        if cwd is not None and _identity(entry) == cwd:  # the current directory, by any path
            continue
        if entry in seen:
            continue
        seen.add(entry)
        roots.append(Path(entry))
    return roots


def _identity(path: str) -> Optional[Tuple[int, int]]:
    """(device, inode) of a directory: the same for every path that reaches it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
