"""Which pip distribution installed a file: the RECORD files of NVIDIA's wheels, read once per site directory."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

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


def _owner_map(root: Path) -> Dict[str, Tuple[str, str]]:
    key = str(root)
    cached = OWNER_CACHE.get(key)
    root_mtime = _mtime(key)
    if cached is not None and cached[0] == root_mtime and all(_mtime(p) == m for p, m in cached[1]):
        return cached[2]
    from importlib.metadata import PathDistribution

    out: Dict[str, Tuple[str, str]] = {}
    records: List[Tuple[str, int]] = []
    for entry in _listdir(root):
        if not (entry.startswith(OWNER_PREFIXES) and entry.endswith(".dist-info")):
            continue
        record = os.path.join(key, entry, "RECORD")
        records.append((record, _mtime(record)))
        dist = PathDistribution(root / entry)
        try:
            name = dist.metadata["Name"] or entry.split("-")[0]
            version = dist.version or ""
            files = dist.files or []
        except Exception:  # a broken dist-info must not stop the search
            continue
        canonical = re.sub(r"[-_.]+", "-", name).lower()
        for f in files:
            rel = str(f).replace("\\", "/")
            if rel.startswith("/") or ".." in rel.split("/"):
                continue  # never follow RECORD paths outside the site dir
            out[rel] = (canonical, version)
    if len(OWNER_CACHE) > 256:
        OWNER_CACHE.clear()
    OWNER_CACHE[key] = (root_mtime, tuple(records), out)
    return out


