"""Candidate files for catalog libraries, in search order, each with the CUDA majors it can serve; never loads."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from . import _catalog as cat
from ._owners import Owners
from ._pathsafety import safe_directory, search_roots
from ._record import Record
from ._types import Library

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._types import Platform, Source

__all__ = ["Candidate", "Search", "ldconfig_cache"]

_CU_DIR = re.compile(r"^cu(\d+)$")
_DIST_CU = re.compile(r"-cu(\d+)$")
_CUDA_DIR = re.compile(r"cuda[-_]?(\d+)(?:\.\d+)*", re.IGNORECASE)


class Candidate(Record):
    """A found file: the ``Library``, its place in search order (lower first)
    and the CUDA majors it can serve."""

    __slots__ = ("library", "order", "majors")
    _fields = __slots__
    library: Library
    order: int
    majors: Tuple[int, ...]

    def __init__(self, library: Library, order: int, majors: Tuple[int, ...]) -> None:
        self._set(library=library, order=order, majors=majors)


def _name_matches(filename: str, pattern: str) -> bool:
    """``fnmatch`` only for the few names with a wildcard: compiling a regular
    expression per catalog name costs a millisecond on the first call."""
    if "*" in pattern or "?" in pattern or "[" in pattern:
        return fnmatch.fnmatchcase(filename, pattern)
    return filename == pattern


def _listdir(path: Path) -> List[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _wheel_dirs(root: Path, platform: Platform) -> List[Tuple[Path, Optional[int], str]]:
    """(directory, CUDA major of its layout or None, component) under ``root/nvidia``."""
    nvidia = root / "nvidia"
    out: List[Tuple[Path, Optional[int], str]] = []
    for entry in sorted(_listdir(nvidia)):
        m = _CU_DIR.match(entry)
        if m:
            major = int(m.group(1))
            sub = (nvidia / entry / "bin" / "x86_64") if platform == "win32" else (nvidia / entry / "lib")
            out.append((sub, major, ""))
        else:
            sub = nvidia / entry / ("bin" if platform == "win32" else "lib")
            out.append((sub, None, entry))
    return out


def _majors_for(spec: cat.LibrarySpec, variant_key: int, filename: str, platform: Platform,
                layout_major: Optional[int], owners: Optional[Owners],
                path: Path) -> Tuple[Optional[int], Tuple[int, ...]]:
    """Work out the CUDA major of a found file.

    Evidence, cheapest first: the ``cu<N>`` layout directory; a name that only
    one CUDA major uses (``libcublas.so.12``); the owning distribution's
    ``-cu<N>`` suffix (read only now, for ambiguous names such as
    ``libcurand.so.10`` or ``libcudnn.so.9``); a ``cuda-12.4`` directory name.

    Returns ``(cuda_major, majors_it_can_serve)``; cuda_major is ``None`` when
    the evidence is ambiguous, and the tuple then lists every possibility.
    """
    if layout_major is not None:
        return layout_major, (layout_major,)
    possible: Tuple[int, ...] = cat.CUDA_MAJORS
    if spec.key == cat.KEY_CUDA:
        possible = tuple(k for k, v in spec.variants.items()
                         if any(_name_matches(filename, pat)
                                for pat in (v.windows if platform == "win32" else v.linux)))
        if len(possible) == 1:
            return possible[0], possible
    dist = owners.lookup(path)[0] if owners is not None else None
    if dist:
        m = _DIST_CU.search(dist)
        if m:
            major = int(m.group(1))
            return major, (major,)
    if spec.key == cat.KEY_CUDA:
        m = _CUDA_DIR.search(str(path))
        if m and int(m.group(1)) in possible:
            return int(m.group(1)), (int(m.group(1)),)
        return None, possible
    m = _CUDA_DIR.search(str(path))
    if m:
        return int(m.group(1)), (int(m.group(1)),)
    return None, cat.CUDA_MAJORS


def _match(spec: cat.LibrarySpec, platform: Platform, names: Iterable[str]) -> List[Tuple[int, str]]:
    """(variant key, filename) for each file in ``names`` that is ``spec``."""
    found: List[Tuple[int, str]] = []
    listed = list(names)
    for key in sorted(spec.variants, reverse=True):
        for pattern in spec.filenames(platform, key):
            if any(ch in pattern for ch in "*?["):
                found.extend((key, n) for n in sorted(fnmatch.filter(listed, pattern)))
            elif pattern in listed:
                found.append((key, pattern))
    return found


class Search:
    """One search over every source; gathers candidates for a set of names."""

    def __init__(self, platform: Platform, search_paths: Optional[Sequence[str]],
                 environ: Mapping[str, str]) -> None:
        self.platform = platform
        self.environ = environ
        self.roots: List[Path] = search_roots(search_paths)

    def candidates(self, specs: Sequence[cat.LibrarySpec],
                   cuda_major: Optional[int] = None) -> Dict[str, List[Candidate]]:
        out: Dict[str, List[Candidate]] = {s.name: [] for s in specs}
        order = 0
        wheel_specs = [s for s in specs if s.key != cat.KEY_DRIVER]
        for root in self.roots:
            dirs = _wheel_dirs(root, self.platform)
            if not dirs:
                continue
            owners = Owners(root)
            for directory, layout_major, component in dirs:
                wanted = [s for s in wheel_specs if not component or s.component == component]
                if not wanted or not safe_directory(directory):
                    continue
                listing = _listdir(directory)
                for s in wanted:
                    for key, filename in _match(s, self.platform, listing):
                        path = directory / filename
                        if not path.is_file():
                            continue  # a broken symlink or a directory is no library
                        cuda, majors = _majors_for(s, key, filename, self.platform, layout_major, owners, path)
                        lib = Library(s.name, path, filename, cuda, key, "wheel", root, owners)
                        out[s.name].append(Candidate(lib, order, majors))
                        order += 1
        for source, directory, root in self._other_dirs():
            if not safe_directory(directory):
                continue
            listing = _listdir(directory)
            for s in specs:
                for key, filename in _match(s, self.platform, listing):
                    path = directory / filename
                    if not path.is_file():
                        continue
                    cuda, majors = _majors_for(s, key, filename, self.platform, None, None, path)
                    lib = Library(s.name, path, filename, cuda, key, source, root)
                    out[s.name].append(Candidate(lib, order, majors))
                    order += 1
        # The loader's cache is read only for what is still missing (it costs a
        # subprocess the first time).
        missing = [s for s in specs
                   if not any(cuda_major is None or cuda_major in c.majors for c in out[s.name])]
        if missing:
            for s, cand in self._system(missing, order):
                out[s.name].append(cand)
        return out

    def _other_dirs(self) -> List[Tuple[Source, Path, Path]]:
        env = self.environ
        dirs: List[Tuple[Source, Path, Path]] = []
        conda = env.get("CONDA_PREFIX", "")
        if conda and os.path.isabs(conda):
            root = Path(conda)
            sub = root / "Library" / "bin" if self.platform == "win32" else root / "lib"
            dirs.append(("conda", sub, root))
        for var in ("CUDA_PATH", "CUDA_HOME"):
            value = env.get(var, "")
            if not value or not os.path.isabs(value):
                continue
            root = Path(value)
            if self.platform == "win32":
                subs = [root / "bin", root / "bin" / "x64"]
            else:
                subs = [root / "lib64", root / "lib", root / "targets" / "x86_64-linux" / "lib",
                        root / "targets" / "sbsa-linux" / "lib"]
            dirs.extend(("cuda_path", s, root) for s in subs if all(s != d[1] for d in dirs))
        return dirs

    def _system(self, specs: Sequence[cat.LibrarySpec], order: int) -> List[Tuple[cat.LibrarySpec, Candidate]]:
        out: List[Tuple[cat.LibrarySpec, Candidate]] = []
        if self.platform == "win32":
            sysroot = self.environ.get("SystemRoot", r"C:\Windows")
            directory = Path(sysroot) / "System32"
            listing = _listdir(directory)
            for s in specs:
                for key, filename in _match(s, self.platform, listing):
                    path = directory / filename
                    cuda, majors = _majors_for(s, key, filename, self.platform, None, None, path)
                    out.append((s, Candidate(Library(s.name, path, filename, cuda, key, "system", directory),
                                              order, majors)))
                    order += 1
            return out
        cache = ldconfig_cache()
        for s in specs:
            for key in sorted(s.variants, reverse=True):
                for pattern in s.filenames(self.platform, key):
                    for soname in sorted(fnmatch.filter(cache, pattern)):
                        for raw in cache[soname]:
                            path = Path(raw)
                            if not path.is_file() or not safe_directory(path.parent):
                                continue
                            cuda, majors = _majors_for(s, key, soname, self.platform, None, None, path)
                            out.append((s, Candidate(Library(s.name, path, soname, cuda, key, "system",
                                                              path.parent), order, majors)))
                            order += 1
        return out


_LDCONFIG_CACHE: Optional[Dict[str, List[str]]] = None


def ldconfig_cache() -> Dict[str, List[str]]:
    """soname -> paths from ``ldconfig -p`` for this machine's word size, read
    once per process.  Empty where ldconfig is absent (Alpine, macOS)."""
    global _LDCONFIG_CACHE
    if _LDCONFIG_CACHE is not None:
        return _LDCONFIG_CACHE
    table: Dict[str, List[str]] = {}
    exe = next((p for p in ("/sbin/ldconfig", "/usr/sbin/ldconfig") if os.path.exists(p)), None)
    if exe is not None:
        try:
            text = subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=10,
                                  env={"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        want64 = sys.maxsize > 2**32
        for line in text.splitlines():
            m = re.match(r"\s+(\S+) \(([^)]*)\) => (/\S.*)$", line)
            if not m:
                continue
            flags = m.group(2)
            is64 = "64" in flags
            if is64 != want64:
                continue
            table.setdefault(m.group(1), []).append(m.group(3))
    _LDCONFIG_CACHE = table
    return table


