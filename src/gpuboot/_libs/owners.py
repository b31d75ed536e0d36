"""Which pip distribution installed a file: the RECORD files of NVIDIA's wheels, read once per site directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..base import canonical_name

__all__ = ["Owners", "OWNER_CACHE", "OWNER_PREFIXES"]

#: The .dist-info directories read: NVIDIA's wheels (nvidia-*) and cuTENSOR's (cutensor-cu12/-cu13).
OWNER_PREFIXES = ("nvidia", "cutensor")


def _listdir(path: Path) -> List[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


class Owners:
    """Maps files under one site directory to the distribution that installed
    them, reading only the RECORD files of NVIDIA's wheels (``OWNER_PREFIXES``).

    The map is built on the first lookup (most files name their CUDA major and
    need no owner) and kept per process, keyed by the modification times of
    the site directory and of each RECORD read -- as ``importlib.metadata``
    caches directory listings -- so a later search costs a few ``stat`` calls
    however many unrelated distributions the site holds.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._map: Optional[Dict[str, Tuple[str, str]]] = None

    def lookup(self, path: Path) -> Tuple[Optional[str], Optional[str]]:
        if self._map is None:
            self._map = _owner_map(self.root)
        try:
            rel = path.relative_to(self.root).as_posix()
        except ValueError:
            return None, None
        return self._map.get(rel, (None, None))


# root -> (root mtime, ((RECORD path, mtime), ...), map)
OWNER_CACHE: Dict[str, Tuple[int, Tuple[Tuple[str, int], ...], Dict[str, Tuple[str, str]]]] = {}


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _metadata_name_version(info_dir: str) -> Tuple[Optional[str], str]:
    """``Name`` and ``Version`` from a ``.dist-info/METADATA``'s header lines
    (core metadata is RFC 822-style: headers, then a blank line).  Read
    directly: importing ``importlib.metadata`` (and ``email``) costs 30-40 ms,
    most of a cuDNN preload's overhead."""
    name: Optional[str] = None
    version = ""
    try:
        with open(os.path.join(info_dir, "METADATA"), encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                if key == "Name":
                    name = value.strip()
                elif key == "Version":
                    version = value.strip()
    except OSError:
        pass
    return name, version


def _record_paths(record: str) -> List[str]:
    """The file paths a ``RECORD`` lists (CSV: path, hash, size; a path with a
    comma or a quote is quoted, which only then needs the csv module)."""
    try:
        with open(record, encoding="utf-8", errors="replace", newline="") as f:
            text = f.read()
    except OSError:
        return []
    if '"' in text:
        import csv

        return [row[0] for row in csv.reader(text.splitlines()) if row]
    return [line.split(",", 1)[0] for line in text.splitlines() if line]


def _owner_map(root: Path) -> Dict[str, Tuple[str, str]]:
    key = str(root)
    cached = OWNER_CACHE.get(key)
    root_mtime = _mtime(key)
    if cached is not None and cached[0] == root_mtime and all(_mtime(p) == m for p, m in cached[1]):
        return cached[2]
    out: Dict[str, Tuple[str, str]] = {}
    records: List[Tuple[str, int]] = []
    for entry in _listdir(root):
        if not (entry.startswith(OWNER_PREFIXES) and entry.endswith(".dist-info")):
            continue
        info_dir = os.path.join(key, entry)
        record = os.path.join(info_dir, "RECORD")
        records.append((record, _mtime(record)))
        name, version = _metadata_name_version(info_dir)
        name = name or entry[: -len(".dist-info")].rsplit("-", 1)[0]
        canonical = canonical_name(name)
        for rel in _record_paths(record):
            rel = rel.replace("\\", "/")
            if rel.startswith("/") or ".." in rel.split("/"):
                continue  # never follow RECORD paths outside the site dir
            out[rel] = (canonical, version)
    if len(OWNER_CACHE) > 256:
        OWNER_CACHE.clear()
    OWNER_CACHE[key] = (root_mtime, tuple(records), out)
    return out
