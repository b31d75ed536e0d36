"""Candidate files for catalog libraries, in search order, each with the CUDA majors it can serve; never loads."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..base.record import Record
from ..binaries.names import soname_of
from . import catalog as cat
from .owners import Owners
from .pathsafety import safe_directory, search_roots
from .platform import check_platform
from .types import Library

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..machine.snapshot import Machine
    from .types import Platform, Source

__all__ = ["Candidate", "Search", "identify"]

_CU_DIR = re.compile(r"^cu(\d+)$")
_DIST_CU = re.compile(r"-cu(\d+)$")
_CUDA_DIR = re.compile(r"cuda[-_]?(\d+)(?:\.\d+)*", re.IGNORECASE)


class Candidate(Record):
    """A found file: the ``Library``, its place in search order (lower first)
    and the CUDA majors it can serve."""

    library: Library
    order: int
    majors: Tuple[int, ...]


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


#: Wheel directories outside ``nvidia/``: cuTENSOR installs ``cutensor/lib`` (cutensor-cu12/-cu13).
_TOP_LEVEL = ("cutensor",)


def _wheel_dirs(root: Path, platform: Platform) -> List[Tuple[Path, Optional[int], str]]:
    """(directory, CUDA major of its layout or None, component) under ``root``.

    The layouts real wheels use (tests/data/wheels): ``nvidia/<component>/lib``
    (Windows ``bin``); ``nvidia/cu<N>/lib`` (Windows ``bin/x86_64``, and
    ``bin/x64`` for cuSPARSELt 13, ``bin`` for cuDSS); NVVM under
    ``nvidia/cuda_nvcc/nvvm/lib64`` (Windows ``nvvm/bin``) for CUDA 12; and
    ``cutensor/lib`` (``bin``) beside ``nvidia/``."""
    nvidia = root / "nvidia"
    win = platform == "win32"
    out: List[Tuple[Path, Optional[int], str]] = []
    for entry in sorted(_listdir(nvidia)):
        m = _CU_DIR.match(entry)
        if m:
            major = int(m.group(1))
            base = nvidia / entry
            subs = [base / "bin" / "x86_64", base / "bin" / "x64", base / "bin"] if win else [base / "lib"]
            out.extend((sub, major, "") for sub in subs)
        else:
            out.append((nvidia / entry / ("bin" if win else "lib"), None, entry))
            if entry == "cuda_nvcc":
                out.append((nvidia / entry / "nvvm" / ("bin" if win else "lib64"), None, entry))
    for top in _TOP_LEVEL:
        sub = root / top / ("bin" if win else "lib")
        if os.path.isdir(sub):
            out.append((sub, None, top))
    return out


def _keys_naming(spec: cat.LibrarySpec, platform: Platform, name: str) -> Tuple[int, ...]:
    """The variant keys of ``spec`` whose file names include ``name``, newest first."""
    return tuple(k for k in sorted(spec.variants, reverse=True)
                 if any(_name_matches(name, pat) for pat in spec.filenames(platform, k)))


def _majors_for(spec: cat.LibrarySpec, keys: Tuple[int, ...], layout_major: Optional[int],
                owners: Optional[Owners], path: Path) -> Tuple[Optional[int], Tuple[int, ...]]:
    """Work out the CUDA major of a found file whose name (its soname where
    the file has one) is catalog variant(s) ``keys``.

    Evidence, cheapest first: a name that only one CUDA major uses
    (``libcublas.so.12``: its soname decides even against a ``cu13``
    directory); the ``cu<N>`` layout directory; the owning distribution's
    ``-cu<N>`` suffix (read only now, for ambiguous names such as
    ``libcurand.so.10`` or ``libcudnn.so.9``); a ``cuda-12.4`` directory name.

    Returns ``(cuda_major, majors_it_can_serve)``; cuda_major is ``None`` when
    the evidence is ambiguous, and the tuple then lists every possibility.
    """
    possible: Tuple[int, ...] = tuple(sorted(keys)) if spec.key == cat.KEY_CUDA else cat.CUDA_MAJORS
    if spec.key == cat.KEY_CUDA and len(possible) == 1:
        return possible[0], possible
    if layout_major is not None and layout_major in possible:
        return layout_major, (layout_major,)
    dist = owners.lookup(path)[0] if owners is not None else None
    if dist:
        m = _DIST_CU.search(dist)
        if m and int(m.group(1)) in possible:
            major = int(m.group(1))
            return major, (major,)
    m = _CUDA_DIR.search(str(path))
    if m and int(m.group(1)) in possible:
        return int(m.group(1)), (int(m.group(1)),)
    return None, possible


def _match(spec: cat.LibrarySpec, platform: Platform, names: Iterable[str]) -> List[str]:
    """The files in ``names`` that are named as a variant of ``spec``, each once."""
    listed = list(names)
    found: List[str] = []
    for key in sorted(spec.variants, reverse=True):
        for pattern in spec.filenames(platform, key):
            if any(ch in pattern for ch in "*?["):
                hits = sorted(fnmatch.filter(listed, pattern))
            else:
                hits = [pattern] if pattern in listed else []
            found.extend(n for n in hits if n not in found)
    return found


def identify(spec: cat.LibrarySpec, platform: Platform, path: Path, filename: str, source: Source, root: Path,
             layout_major: Optional[int] = None, owners: Optional[Owners] = None) -> Optional[Candidate]:
    """The candidate a file named ``filename`` makes for ``spec``, judged by the
    name its binary carries (ELF soname / PE DLL name) where it has one: a
    ``libcublas.so.12`` whose soname is ``libcublas.so.11`` is CUDA 11's
    cuBLAS.  ``None`` when the binary is another library altogether.  The
    order is filled in by the caller."""
    soname = soname_of(path)
    ident = soname or filename
    keys = _keys_naming(spec, platform, ident)
    if not keys:
        return None
    cuda, majors = _majors_for(spec, keys, layout_major, owners, path)
    major = cuda if spec.key == cat.KEY_CUDA and cuda is not None else keys[0]
    return Candidate(library=Library(name=spec.name, path=path, filename=filename, cuda_major=cuda, major=major,
                                     source=source, root=root, owner=owners, soname=soname), order=0, majors=majors)


class Search:
    """One search over every source of a ``Machine`` snapshot (its platform, wheel roots, environment and
    loader cache); gathers candidates for a set of names."""

    def __init__(self, machine: Machine) -> None:
        self.platform: Platform = check_platform(machine.platform)
        self.environ = machine.environ
        self.roots: List[Path] = search_roots(machine.search_paths)
        self.machine = machine

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
                order = self._scan(wanted, directory, "wheel", root, layout_major, owners, out, order)
        for source, directory, root in self._other_dirs():
            if safe_directory(directory):
                order = self._scan(specs, directory, source, root, None, None, out, order)
        # The loader's cache is read only for what is still missing (it costs a
        # subprocess the first time).
        missing = [s for s in specs
                   if not any(cuda_major is None or cuda_major in c.majors for c in out[s.name])
                   and not _part_of_another_cudnn(s, out)]
        if missing:
            for s, cand in self._system(missing, order):
                out[s.name].append(cand)
        return out

    def _scan(self, specs: Sequence[cat.LibrarySpec], directory: Path, source: Source, root: Path,
              layout_major: Optional[int], owners: Optional[Owners], out: Dict[str, List[Candidate]],
              order: int) -> int:
        """Add the candidates ``directory`` holds for ``specs`` to ``out``; returns the next order."""
        listing = _listdir(directory)
        for s in specs:
            for filename in _match(s, self.platform, listing):
                path = directory / filename
                if not path.is_file():
                    continue  # a broken symlink or a directory is no library
                cand = identify(s, self.platform, path, filename, source, root, layout_major, owners)
                if cand is not None:
                    out[s.name].append(Candidate(library=cand.library, order=order, majors=cand.majors))
                    order += 1
        return order

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
                for filename in _match(s, self.platform, listing):
                    cand = identify(s, self.platform, directory / filename, filename, "system", directory)
                    if cand is not None:
                        out.append((s, Candidate(library=cand.library, order=order, majors=cand.majors)))
                        order += 1
            return out
        cache = self.machine.ldconfig
        for s in specs:
            # The cache may name one file twice (libnvvm.so -> libnvvm.so.4 and
            # libnvvm.so.4): each real file once, under the name its binary
            # carries where the cache has that name, else the first.
            by_file: Dict[str, Candidate] = {}
            for soname in _match(s, self.platform, cache):
                for raw in cache[soname]:
                    path = Path(raw)
                    if not path.is_file() or not safe_directory(path.parent):
                        continue
                    cand = identify(s, self.platform, path, soname, "system", path.parent)
                    if cand is None:
                        continue
                    real = os.path.realpath(raw)
                    kept = by_file.get(real)
                    if kept is None or (kept.library.filename != kept.library.soname
                                        and cand.library.filename == cand.library.soname):
                        by_file[real] = Candidate(library=cand.library, order=kept.order if kept else order,
                                                  majors=cand.majors)
                        if kept is None:
                            order += 1
            out.extend((s, c) for c in sorted(by_file.values(), key=lambda c: c.order))
        return out


def _part_of_another_cudnn(s: cat.LibrarySpec, found: Mapping[str, List[Candidate]]) -> bool:
    """A cuDNN sub-library of a major other than every cuDNN found (cuDNN 8's
    ``cudnn_ops_infer`` beside a cuDNN 9 wheel): never used, so not worth the
    loader cache's subprocess."""
    cudnn = found.get("cudnn")
    if s.key != cat.KEY_CUDNN or s.name == "cudnn" or not cudnn:
        return False
    return not any(c.library.major in s.variants for c in cudnn)
