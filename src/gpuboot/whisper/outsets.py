"""One recording's transcripts as one set: written together (all new or all old), trusted only whole.

``write_set`` writes every format under a temporary name (``.<stem>.<random>.<format>.tmp``) in the target
directory, gives all of them one modification time (the set's stamp), moves
the old files aside, renames the new ones into place and only then deletes
the old ones; a failure (a full disk, Ctrl-C) puts the old files back, so a
reader never meets half a transcript nor a mix of two runs.  ``set_complete``
(``gpuboot transcribe --skip-existing``) trusts a set only when every file is
there, non-empty, parses as its format (``srt``, ``webvtt-py``, ``json``) and
carries the set's one stamp: a set that a killed run left mixed is done again.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Sequence

__all__ = ["set_paths", "write_set", "set_complete", "PARSERS"]


def set_paths(base: Path, formats: Sequence[str]) -> Dict[str, Path]:
    """``{format: <base>.<format>}``: ``base`` is the output directory joined with the recording's stem."""
    return {fmt: base.parent / f"{base.name}.{fmt}" for fmt in formats}


_UMASK: List[int] = []
_UMASK_LOCK = threading.Lock()


def _new_file_mode() -> int:
    """What ``open(..., "w")`` would give a new file: 0o666 less the umask (read once)."""
    with _UMASK_LOCK:
        if not _UMASK:
            try:  # Linux 4.7+: read it without changing it
                with open("/proc/self/status", encoding="ascii") as f:
                    mask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
            except (OSError, StopIteration, ValueError, IndexError):
                mask = os.umask(0o022)
                os.umask(mask)
            _UMASK.append(mask)
    return 0o666 & ~_UMASK[0]


def write_set(base: Path, rendered: Mapping[str, str]) -> List[Path]:
    """Write ``<base>.<format>`` for each rendered format, all or nothing; returns the paths.

    A file that was there keeps its permission bits; a new one gets the umask's.

    Raises:
        OSError: the directory cannot be created or a file cannot be written (the old set is back in place).
    """
    directory = base.parent
    directory.mkdir(parents=True, exist_ok=True)
    paths = set_paths(base, list(rendered))
    stamp = time.time_ns()
    temps: Dict[str, str] = {}
    aside: Dict[str, str] = {}
    moved: List[str] = []
    placed: List[str] = []
    try:
        for fmt, text in rendered.items():
            fd = _create(directory, f".{base.name}.", f".{fmt}.tmp", temps, fmt)
            with open(fd, "w", encoding="utf-8") as f:
                f.write(text)
            tmp = temps[fmt]
            try:
                mode = os.stat(paths[fmt]).st_mode & 0o7777
            except OSError:
                mode = _new_file_mode()
            os.chmod(tmp, mode)
            os.utime(tmp, ns=(stamp, stamp))
        for fmt in rendered:
            if os.path.lexists(paths[fmt]):
                os.close(_create(directory, f".{base.name}.", f".{fmt}.old", aside, fmt))
                moved.append(fmt)  # noted first: whether it moved is told by the path being gone
                os.replace(paths[fmt], aside[fmt])
        for fmt in rendered:  # every old file is aside: a path that exists now is a new file
            placed.append(fmt)
            os.replace(temps[fmt], paths[fmt])
            del temps[fmt]
    except BaseException:
        for fmt in placed:
            with contextlib.suppress(OSError):
                os.unlink(paths[fmt])
        for fmt in moved:
            if not os.path.lexists(paths[fmt]):  # os.replace is atomic: gone means it is aside
                with contextlib.suppress(OSError):
                    os.replace(aside[fmt], paths[fmt])
                    del aside[fmt]
        raise
    finally:
        for leftover in (*temps.values(), *aside.values()):
            with contextlib.suppress(OSError):
                os.unlink(leftover)
    return list(paths.values())


def _create(directory: Path, prefix: str, suffix: str, names: Dict[str, str], key: str) -> int:
    """A new file ``<prefix><random><suffix>`` in ``directory`` (``O_EXCL``, mode 0600), its name put in
    ``names[key]`` *before* it exists: a signal handler that raises (SIGTERM as ``Terminated``) lands mostly
    right after a system call returns, and with ``tempfile.mkstemp`` that is inside it, before the caller has
    the name to remove.  Returns the open descriptor."""
    while True:
        names[key] = os.path.join(directory, f"{prefix}{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(names[key], os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        except FileExistsError:
            del names[key]


def _parses_json(path: Path) -> bool:
    data = json.loads(path.read_text(encoding="utf-8"))
    return isinstance(data, dict) and isinstance(data.get("text"), str) and isinstance(data.get("segments"), list)


def _parses_cues(path: Path) -> bool:
    from ..subtitles.files import read_cues

    read_cues(path)
    return True


def _parses_text(path: Path) -> bool:
    path.read_bytes().decode("utf-8")
    return True


#: How ``--skip-existing`` knows a written file is whole: its format parses (a new format is one row).
PARSERS: Dict[str, Callable[[Path], bool]] = {
    "txt": _parses_text,
    "srt": _parses_cues,
    "vtt": _parses_cues,
    "json": _parses_json,
}


def set_complete(base: Path, formats: Sequence[str]) -> bool:
    """Every ``<base>.<format>`` is there, non-empty, parses, and all carry one modification time (written as
    one set by ``write_set``).  ``False`` for no formats."""
    if not formats:
        return False
    stamps = set()
    for fmt, path in set_paths(base, formats).items():
        try:
            st = path.stat()
            if not path.is_file() or st.st_size == 0 or not PARSERS[fmt](path):
                return False
        except (OSError, ValueError, UnicodeDecodeError):
            return False
        stamps.add(st.st_mtime_ns)
    return len(stamps) == 1
