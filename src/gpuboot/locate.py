"""Find NVIDIA libraries installed by pip wheels, conda or a CUDA toolkit.

Finding never loads anything and never imports ``nvidia.*``: every current
CUDA 12/13 wheel is a PEP 420 namespace package whose ``__file__`` is ``None``
(seen with nvidia-cublas-cu12 12.9 on Python 3.11), so gpuboot walks the
directories itself.

Search order (first wins, per library, after the one-CUDA-major rule):

1. every ``sys.path`` entry (or ``search_paths``): ``nvidia/<component>/lib``
   and ``nvidia/cu<major>/lib`` (Windows ``nvidia/<component>/bin`` and
   ``nvidia/cu<major>/bin/x86_64``) -- so PYTHONPATH, ``pip install --target``,
   venvs and the user site all work (cuda-pathfinder 1.9.0 searches only
   ``site.getsitepackages()`` and the user site);
2. ``$CONDA_PREFIX/lib`` (Windows ``%CONDA_PREFIX%\\Library\\bin``);
3. ``$CUDA_PATH`` then ``$CUDA_HOME``: ``lib64``, ``lib``,
   ``targets/<arch>-linux/lib`` (Windows ``bin``, ``bin\\x64``);
4. the system loader's cache (``ldconfig -p``; Windows ``System32`` for the
   driver libraries), only for libraries not found above.

Entries that are empty, relative, or world-writable directories are skipped:
a library search path must never include the current directory or a place
another user can write to.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from . import _catalog as cat
from ._types import Library, MissingLibrary, Platform, Source

__all__ = ["locate", "resolve", "Resolution", "Library", "MissingLibrary"]

_CU_DIR = re.compile(r"^cu(\d+)$")
_DIST_CU = re.compile(r"-cu(\d+)$")
_CUDA_DIR = re.compile(r"cuda[-_]?(\d+)(?:\.\d+)*", re.IGNORECASE)


@dataclass
class _Candidate:
    library: Library
    order: int  # position in search order, lower first
    majors: Tuple[int, ...]  # CUDA majors this file can serve


@dataclass(frozen=True)
class Resolution:
    """What ``resolve()`` settled on.

    Attributes:
        libraries: found libraries in load order (dependencies first).
        missing: required libraries that were not found at ``cuda_major``.
        cuda_major: the one CUDA major the set resolved to (``None`` when
            nothing was found and none was asked for).
        cudnn_major: the cuDNN major chosen, where cuDNN was asked for.
    """

    libraries: Tuple[Library, ...]
    missing: Tuple[MissingLibrary, ...]
    cuda_major: Optional[int]
    cudnn_major: Optional[int] = None

    @property
    def ok(self) -> bool:
        return not self.missing


# --------------------------------------------------------------------------- helpers


def current_platform() -> Platform:
    return "win32" if sys.platform == "win32" else "linux"


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


class _Owners:
    """Maps files under one site directory to the distribution that installed
    them, reading only ``nvidia*.dist-info`` RECORD files.

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
_OWNER_CACHE: Dict[str, Tuple[int, Tuple[Tuple[str, int], ...], Dict[str, Tuple[str, str]]]] = {}


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _owner_map(root: Path) -> Dict[str, Tuple[str, str]]:
    key = str(root)
    cached = _OWNER_CACHE.get(key)
    root_mtime = _mtime(key)
    if cached is not None and cached[0] == root_mtime and all(_mtime(p) == m for p, m in cached[1]):
        return cached[2]
    from importlib.metadata import PathDistribution

    out: Dict[str, Tuple[str, str]] = {}
    records: List[Tuple[str, int]] = []
    for entry in _listdir(root):
        if not (entry.startswith("nvidia") and entry.endswith(".dist-info")):
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
    if len(_OWNER_CACHE) > 256:
        _OWNER_CACHE.clear()
    _OWNER_CACHE[key] = (root_mtime, tuple(records), out)
    return out


def _majors_for(spec: cat.LibrarySpec, variant_key: int, filename: str, platform: Platform,
                layout_major: Optional[int], owners: Optional[_Owners],
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
                         if any(fnmatch.fnmatchcase(filename, pat)
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


# --------------------------------------------------------------------------- search


class _Search:
    """One search over every source; gathers candidates for a set of names."""

    def __init__(self, platform: Platform, search_paths: Optional[Sequence[str]],
                 environ: Mapping[str, str]) -> None:
        self.platform = platform
        self.environ = environ
        roots = list(sys.path if search_paths is None else search_paths)
        self.roots: List[Path] = []
        seen: Set[str] = set()
        try:
            cwd: Optional[str] = os.path.realpath(os.getcwd())
        except OSError:
            cwd = None
        for entry in roots:
            if not entry or not os.path.isabs(entry):
                continue  # '' is the current directory; relative depends on it
            if search_paths is None and cwd is not None and os.path.realpath(entry) == cwd:
                continue  # `python -m` puts the current directory on sys.path: never a library path
            if entry in seen:
                continue
            seen.add(entry)
            self.roots.append(Path(entry))

    def candidates(self, specs: Sequence[cat.LibrarySpec],
                   cuda_major: Optional[int] = None) -> Dict[str, List[_Candidate]]:
        out: Dict[str, List[_Candidate]] = {s.name: [] for s in specs}
        order = 0
        wheel_specs = [s for s in specs if s.key != cat.KEY_DRIVER]
        for root in self.roots:
            dirs = _wheel_dirs(root, self.platform)
            if not dirs:
                continue
            owners = _Owners(root)
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
                        out[s.name].append(_Candidate(lib, order, majors))
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
                    out[s.name].append(_Candidate(lib, order, majors))
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

    def _system(self, specs: Sequence[cat.LibrarySpec], order: int) -> List[Tuple[cat.LibrarySpec, _Candidate]]:
        out: List[Tuple[cat.LibrarySpec, _Candidate]] = []
        if self.platform == "win32":
            sysroot = self.environ.get("SystemRoot", r"C:\Windows")
            directory = Path(sysroot) / "System32"
            listing = _listdir(directory)
            for s in specs:
                for key, filename in _match(s, self.platform, listing):
                    path = directory / filename
                    cuda, majors = _majors_for(s, key, filename, self.platform, None, None, path)
                    out.append((s, _Candidate(Library(s.name, path, filename, cuda, key, "system", directory),
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
                            out.append((s, _Candidate(Library(s.name, path, soname, cuda, key, "system",
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


# --------------------------------------------------------------------------- resolution


def _expand(names: Sequence[str]) -> List[str]:
    """Names plus their dependencies, dependencies first, without repeats."""
    out: List[str] = []

    def visit(name: str, trail: Tuple[str, ...]) -> None:
        s = cat.spec(name)
        if name in out or name in trail:
            return
        for dep in s.depends:
            visit(dep, (*trail, name))
        out.append(name)

    for n in names:
        visit(n, ())
    return out


def _fits(c: _Candidate, cuda_major: Optional[int], cudnn_major: Optional[int]) -> bool:
    if cuda_major is not None and cuda_major not in c.majors:
        return False
    if cudnn_major is not None and c.library.name.startswith("cudnn") and c.library.major != cudnn_major:
        return False
    return True


def resolve(names: Sequence[str], *, cuda_major: Optional[int] = None,
            cudnn_major: Optional[int] = None, optional: Sequence[str] = (),
            search_paths: Optional[Sequence[str]] = None, platform: Optional[str] = None,
            environ: Optional[Mapping[str, str]] = None) -> Resolution:
    """Resolve ``names`` (and their dependencies) to files of ONE CUDA major.

    A consumer built for CUDA 12 must get ``libcublas.so.12`` and never
    ``.so.13``, so the whole set is resolved together: with ``cuda_major``
    given, only that major is accepted; otherwise the major that provides
    the most required names wins (ties: the one found earliest in search
    order).  Within the major, files come from one location where possible
    (the root that provides the most names).  Asking for ``"cudnn"`` also
    brings its sub-libraries (``libcudnn_ops.so.9`` and the rest) when present.

    Args:
        names: catalog names (``"cublas"``, ``"cudnn"``).
        cuda_major: 11, 12 or 13, or ``None`` to choose.
        cudnn_major: 8 or 9, or ``None`` to take the newest found.
        optional: names to include when found, never reported missing.
        search_paths: replaces ``sys.path`` as the list of wheel roots.
        platform: ``"linux"`` or ``"win32"``; defaults to this host's.
        environ: the environment to read ``CONDA_PREFIX`` / ``CUDA_PATH`` from.

    Returns:
        A ``Resolution``; nothing is loaded.

    Raises:
        UnknownLibraryError: a name is not in the catalog.
        ValueError: ``platform`` is neither ``"linux"`` nor ``"win32"``.
    """
    plat = _platform(platform)
    required = _expand(list(names))
    opt = [n for n in _expand(list(optional)) if n not in required]
    # A cuDNN request brings its parts (the cuDNN 9 shim dlopens them by name).
    parts: List[str] = []
    for n in required + opt:
        parts.extend(p for p in cat.spec(n).parts if p not in required + opt + parts)
    parts = _expand(parts)
    all_names = required + [n for n in opt if n not in required] + [p for p in parts if p not in required + opt]
    specs = [cat.spec(n) for n in all_names]
    search = _Search(plat, search_paths, os.environ if environ is None else environ)
    cands = search.candidates(specs, cuda_major)

    chosen_cuda = cuda_major
    if chosen_cuda is None:
        chosen_cuda = _choose_major(required or all_names, cands)
    chosen_cudnn = cudnn_major
    if chosen_cudnn is None and "cudnn" in all_names:
        found = sorted({c.library.major for c in cands["cudnn"] if _fits(c, chosen_cuda, None)}, reverse=True)
        chosen_cudnn = found[0] if found else None

    fitting = {n: [c for c in cands[n] if _fits(c, chosen_cuda, chosen_cudnn)] for n in all_names}
    # Prefer one location: the root providing the most names.
    score: Dict[Path, int] = {}
    for n in all_names:
        for root in {c.library.root for c in fitting[n]}:
            score[root] = score.get(root, 0) + 1
    picked: Dict[str, Library] = {}
    for n in all_names:
        options = sorted(fitting[n], key=lambda c: (-score.get(c.library.root, 0), c.order))
        if options:
            picked[n] = options[0].library

    missing: List[MissingLibrary] = []
    for n in required:
        if n in picked:
            continue
        others = tuple(c.library for c in cands[n])
        major = chosen_cudnn if n.startswith("cudnn") else chosen_cuda
        missing.append(MissingLibrary(n, chosen_cuda, major, cat.install_command(n, chosen_cuda, major), others))
    ordered = [picked[n] for n in all_names if n in picked]
    return Resolution(tuple(_load_order(ordered)), tuple(missing), chosen_cuda, chosen_cudnn)


def _load_order(libs: List[Library]) -> List[Library]:
    """Dependencies first; a library's parts before the library itself."""
    present = {lib.name for lib in libs}
    by_name = {lib.name: lib for lib in libs}
    out: List[Library] = []

    def visit(name: str) -> None:
        lib = by_name.get(name)
        if lib is None or lib in out:
            return
        s = cat.spec(name)
        for dep in s.depends:
            if dep in present:
                visit(dep)
        for part in s.parts:
            if part in present:
                visit(part)
        out.append(lib)

    for lib in libs:
        visit(lib.name)
    return out


def _choose_major(names: Sequence[str], cands: Mapping[str, List[_Candidate]]) -> Optional[int]:
    best: Optional[Tuple[int, int, int]] = None
    best_major: Optional[int] = None
    for major in cat.CUDA_MAJORS:
        covered = 0
        first = 1 << 30
        for n in names:
            fits = [c.order for c in cands.get(n, []) if major in c.majors]
            if fits:
                covered += 1
                first = min(first, min(fits))
        if covered == 0:
            continue
        key = (covered, -first, major)
        if best is None or key > best:
            best, best_major = key, major
    return best_major


def _platform(platform: Optional[str]) -> Platform:
    if platform is None:
        return current_platform()
    if platform in ("linux", "win32"):
        return platform  # type: ignore[return-value]
    raise ValueError(f"platform must be 'linux' or 'win32', not {platform!r}")


def locate(names: Optional[Sequence[str]] = None, *, cuda_major: Optional[int] = None,
           search_paths: Optional[Sequence[str]] = None, platform: Optional[str] = None,
           cudnn_major: Optional[int] = None) -> List[Library]:
    """Find NVIDIA libraries; never loads them.

    With ``names``, the set is resolved to one CUDA major (see ``resolve``)
    and the found libraries come back in load order, dependencies included
    (``locate(["cublas"])`` also returns cublasLt, first).  Names that were not
    found are left out: use ``resolve()`` to learn what is missing and the
    command that installs it.

    With ``names=None``, every catalog library found at every version is
    listed in search order (an inventory, as ``gpuboot doctor`` shows it).

    Args:
        names: catalog names such as ``["cudart", "cublas", "cudnn"]``.
        cuda_major: accept only this CUDA major (11, 12 or 13).
        search_paths: replaces ``sys.path`` as the wheel roots (absolute paths;
            relative and empty entries are ignored).
        platform: ``"linux"`` or ``"win32"`` to locate a Windows layout from a
            Linux host (tests), default: this host.
        cudnn_major: accept only this cuDNN major (8 or 9).

    Returns:
        ``list[Library]``.

    Raises:
        UnknownLibraryError: a name is not in the catalog.
        ValueError: an unknown ``platform``.
    """
    if names is not None:
        return list(resolve(names, cuda_major=cuda_major, cudnn_major=cudnn_major,
                            search_paths=search_paths, platform=platform).libraries)
    plat = _platform(platform)
    specs = [cat.spec(n) for n in cat.WHEEL_LIBRARIES]
    cands = _Search(plat, search_paths, os.environ).candidates(specs)
    found = [c for n in cat.WHEEL_LIBRARIES for c in cands[n]
             if cuda_major is None or cuda_major in c.majors]
    return [c.library for c in sorted(found, key=lambda c: c.order)]

