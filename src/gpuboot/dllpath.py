"""Make located libraries loadable: preload them, give child processes their environment, alias links.

* Linux: ``dlopen(path, RTLD_GLOBAL)`` in dependency order (cublasLt before
  cublas), skipping names already loaded, keeping every handle alive.
* Windows: ``os.add_dll_directory`` for each directory, the directories
  prepended to ``PATH``, then a load by absolute path.
* Soname alias links (``libcudnn.so`` -> ``.../libcudnn.so.9``) are created
  only in gpuboot's user cache directory, never in site-packages, and never
  across ABI majors.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, MutableMapping, Optional, Sequence, Tuple, cast

from . import _host
from ._libs.loader import Loader, prepend_path
from ._libs.pathsafety import safe_directory
from ._libs.platform import check_platform, library_path_variable
from ._libs.types import Library, LoadedLibrary
from ._log import log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._libs.types import Platform

__all__ = ["preload", "subprocess_env", "alias", "cache_dir", "get_loader", "load_all", "preloaded"]


_LOADERS: Dict[str, Loader] = {}
_LOCK = threading.RLock()
#: Every library gpuboot preloaded into this process, in load order.
_PRELOADED: List[Library] = []


def preloaded() -> List[Library]:
    """The libraries gpuboot has preloaded into this process, load order."""
    with _LOCK:
        return list(_PRELOADED)


def get_loader(platform: Optional[str] = None) -> Loader:
    """The loader for ``platform`` (default: the current host's), created once.

    Where the current host names its Windows API calls (``_host.Host.windows_api``:
    tests on Linux), a loader made with them is not cached.
    """
    plat: Platform = check_platform(platform)
    windows_api = _host.current().windows_api
    if windows_api is not None:
        from ._libs.windows import WindowsLoader

        return WindowsLoader(windows_api)  # type: ignore[arg-type]
    with _LOCK:
        loader = _LOADERS.get(plat)
        if loader is None:
            if plat == "win32":
                from ._libs.windows import WindowsLoader

                loader = WindowsLoader()
            else:
                from ._libs.linux import LinuxLoader

                loader = LinuxLoader()
            _LOADERS[plat] = loader
        return loader


def load_all(libraries: Sequence[Library], loader: Loader,
             environ: Optional[MutableMapping[str, str]] = None) -> List[LoadedLibrary]:
    """Preload ``libraries`` in order; never raises for one library's failure.

    A library that failed is tried once more after the others only when that
    can change the outcome: its loader message names a missing dependency
    that another library of the set has since provided (on Windows, whose
    message names no file, when a library after it in the list loaded).  A
    file of the wrong architecture, a truncated file or a dependency nothing
    here provides is not tried again.  Each result carries the loader's message.
    """
    with _LOCK:
        given = _host.current().environ  # a stand-in environment is a dict the loader may change (PATH)
        loader.prepare(_directories(libraries), environ if environ is not None else
                       (os.environ if given is None else cast(MutableMapping[str, str], given)))
        results = [_load_one(lib, loader) for lib in libraries]
        provided = {r.library.loader_name for r in results if r.ok}
        for i, res in enumerate(results):
            if res.error is not None and _may_load_now(res.error, libraries, results, i, provided, loader):
                results[i] = _load_one(res.library, loader)
        _PRELOADED.extend(r.library for r in results if r.ok and r.library not in _PRELOADED)
        return results


_MISSING_DEPENDENCY = re.compile(r"(?:^|\s)([^\s:/]+\.so[.\d]*): cannot open shared object file")


def _may_load_now(error: str, libraries: Sequence[Library], results: Sequence[LoadedLibrary], index: int,
                  provided: Iterable[str], loader: Loader) -> bool:
    """Could a second attempt at ``libraries[index]`` succeed?"""
    if loader.platform == "win32":
        return any(r.ok for r in results[index + 1:])
    m = _MISSING_DEPENDENCY.search(error)
    return m is not None and m.group(1) != libraries[index].loader_name and m.group(1) in set(provided)


def _load_one(lib: Library, loader: Loader) -> LoadedLibrary:
    t0 = time.perf_counter()
    try:
        already = loader.loaded_path(lib.loader_name)
    except Exception as exc:  # ctypes.ArgumentError, OSError, ...: any failure of the query
        # The already-loaded query failed (a Windows API error, a ctypes
        # conversion): report it as this library's failure, never raise it.
        message = f"cannot ask the loader whether {lib.loader_name} is loaded: {type(exc).__name__}: {exc}"
        return LoadedLibrary(library=lib, loaded_path=None, already_loaded=False, error=message,
                             elapsed_ms=(time.perf_counter() - t0) * 1e3)
    if already is not None:
        if str(already) != str(lib.path):
            log.debug("%s already loaded from %s", lib.loader_name, already)
        return LoadedLibrary(library=lib, loaded_path=already, already_loaded=True, error=None,
                             elapsed_ms=(time.perf_counter() - t0) * 1e3)
    try:
        loader.load(lib.path)
    except OSError as exc:
        message = loader.explain(lib.path, str(exc) or exc.__class__.__name__)
        return LoadedLibrary(library=lib, loaded_path=None, already_loaded=False, error=message,
                             elapsed_ms=(time.perf_counter() - t0) * 1e3)
    return LoadedLibrary(library=lib, loaded_path=lib.path, already_loaded=False, error=None,
                         elapsed_ms=(time.perf_counter() - t0) * 1e3)


def preload(libraries: Sequence[Library]) -> List[LoadedLibrary]:
    """Load ``libraries`` into this process, in the order given (``locate()``
    returns load order), so later loads by name find them.

    Idempotent: a name already loaded (by gpuboot or anyone) is not loaded
    again; ``LoadedLibrary.already_loaded`` says so and ``loaded_path`` names
    the file that is really mapped.

    Returns:
        ``list[LoadedLibrary]``, one per input, same order.

    Raises:
        LibraryLoadError: one or more libraries could not be loaded; the
            others were loaded.  ``failures`` maps path -> loader message.
    """
    results = load_all(libraries, get_loader())
    failures = {str(r.library.path): r.error for r in results if r.error}
    if failures:
        from .errors import LibraryLoadError

        raise LibraryLoadError(failures)  # type: ignore[arg-type]
    return results


def _directories(libraries: Iterable[Library]) -> List[Path]:
    out: List[Path] = []
    for lib in libraries:
        if lib.directory not in out:
            out.append(lib.directory)
    return out


# --------------------------------------------------------------------------- child processes


def subprocess_env(base: Optional[Mapping[str, str]] = None, *,
                   libraries: Optional[Sequence[Library]] = None) -> Dict[str, str]:
    """An environment for child processes that finds the wheel libraries.

    ``LD_LIBRARY_PATH`` (Windows: ``PATH``) gets the directories of
    ``libraries`` -- default: what gpuboot preloaded in this process (what
    ``ensure()`` loaded), else what the installed consumers need, else what is
    found of cudart, cuBLAS and cuDNN -- plus gpuboot's alias
    directory when it holds links, in front of the old value.  Empty entries
    (the loader reads them as the current directory), relative entries and
    world-writable directories are dropped from a Linux ``LD_LIBRARY_PATH``;
    on Windows only empty entries are dropped (``PATH`` also finds programs).

    Args:
        base: the environment to start from; default ``os.environ``.
        libraries: whose directories to add.

    Returns:
        A new ``dict[str, str]``; ``base`` is not changed.
    """
    plat = check_platform()
    env = dict(_host.environ() if base is None else base)
    if libraries is None:
        libraries = _default_libraries(plat)
    dirs = [str(d) for d in _directories(libraries) if safe_directory(d)]
    if plat != "win32":
        links = alias_dir(create=False)
        if links is not None and any(links.iterdir()):
            dirs.append(str(links))
    var, sep = library_path_variable(plat)
    old = env.get(var, "")
    if plat != "win32":
        old = sep.join(e for e in old.split(sep) if e and os.path.isabs(e) and safe_directory(Path(e)))
    value = prepend_path(old, dirs, sep)
    if value:
        env[var] = value
    else:
        env.pop(var, None)
    return env


def _default_libraries(platform: str) -> Sequence[Library]:
    done = preloaded()
    if done:
        return done
    from ._libs.needs import resolve_needs
    from .consumers import installed_needs

    return resolve_needs(installed_needs(), platform=platform).libraries


# --------------------------------------------------------------------------- alias links

_SONAME = re.compile(r"^(?P<base>.+?\.so)(?P<ver>(?:\.\d+)*)$")


def _split(name: str) -> Optional[Tuple[str, Tuple[int, ...]]]:
    m = _SONAME.match(name)
    if not m:
        return None
    ver = tuple(int(x) for x in m.group("ver").split(".") if x)
    return m.group("base"), ver


def check_alias(target_filename: str, alias_name: str) -> None:
    """Allow an alias only when it names the same ABI as the target.

    ``libcudnn.so`` or ``libcudnn.so.9`` may point at ``libcudnn.so.9.1``;
    ``libcublas.so.12`` may never point at ``libcublas.so.11`` (a different
    major is a different ABI: the loader accepts it and the program crashes or
    computes garbage later).

    Raises:
        AbiMismatchError: the alias would cross an ABI boundary.
        ValueError: either name is not a shared-object name.
    """
    target = _split(target_filename)
    wanted = _split(alias_name)
    if target is None or wanted is None or "/" in alias_name:
        raise ValueError(f"not a shared-object name: {alias_name!r} -> {target_filename!r}")
    if wanted[0] != target[0] or wanted[1] != target[1][: len(wanted[1])]:
        from .errors import AbiMismatchError

        fix = f"install the wheel that ships {alias_name} (`gpuboot doctor` names it)"
        raise AbiMismatchError(
            f"refusing to alias {target_filename} as {alias_name}: a different major version "
            "is a different ABI, and a renamed or symlinked copy crashes or computes garbage later",
            fix)


def alias_dir(create: bool = True) -> Optional[Path]:
    """gpuboot's alias directory for this Python environment:
    ``<user cache>/gpuboot/lib-<hash of sys.prefix>``, mode 0700.

    Raises:
        CacheDirError: it exists but is owned by another user, is not a
            directory, or is writable by others.
    """
    base = cache_dir(create=create)
    if base is None:
        return None
    tag = hashlib.sha256(os.fsencode(sys.prefix)).hexdigest()[:12]
    path = base / f"lib-{tag}"
    if not path.exists():
        if not create:
            return None
        path.mkdir(mode=0o700, exist_ok=True)
    _check_private(path)
    return path


def cache_dir(create: bool = True) -> Optional[Path]:
    """gpuboot's user cache directory (``platformdirs.user_cache_dir``),
    created with mode 0700; ``GPUBOOT_CACHE_DIR`` overrides it.

    Raises:
        CacheDirError: unusable (see ``alias_dir``).
    """
    from .errors import CacheDirError

    override = os.environ.get("GPUBOOT_CACHE_DIR", "")
    if override:
        if not os.path.isabs(override):
            raise CacheDirError(f"GPUBOOT_CACHE_DIR must be an absolute path, not {override!r}",
                                "export GPUBOOT_CACHE_DIR=/an/absolute/path")
        path = Path(override)
    else:
        import platformdirs

        path = Path(platformdirs.user_cache_dir("gpuboot", appauthor=False))
    if not path.exists():
        if not create:
            return None
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheDirError(f"cannot create gpuboot's cache directory {path}: {exc}",
                                "export GPUBOOT_CACHE_DIR=/a/directory/you/own") from None
    _check_private(path)
    return path


def _check_private(path: Path) -> None:
    from .errors import CacheDirError

    try:
        st = path.lstat()
    except OSError as exc:
        raise CacheDirError(f"cannot use {path}: {exc}", "export GPUBOOT_CACHE_DIR=/a/directory/you/own") from None
    fix = f"remove {path} or export GPUBOOT_CACHE_DIR=/a/directory/you/own"
    if not stat.S_ISDIR(st.st_mode):
        raise CacheDirError(f"{path} is not a directory", fix)
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise CacheDirError(f"{path} is owned by uid {st.st_uid}, not by you (uid {os.getuid()})", fix)
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheDirError(f"{path} is writable by other users (mode {stat.S_IMODE(st.st_mode):o})",
                            f"chmod 700 {path}")


def alias(library: Library, alias_name: str) -> Path:
    """Create (atomically) the link ``<alias dir>/<alias_name>`` ->
    ``library.path`` for a consumer that asks for a name no wheel ships
    (``libcudnn.so``).  Existing correct links are kept.

    Returns:
        The link's path.  Put ``subprocess_env()`` in a child's environment so
        the child's loader searches the alias directory.

    Raises:
        AbiMismatchError: ``alias_name`` is another ABI major.
        CacheDirError: the cache directory is unusable.
        NotImplementedError: on Windows (DLL names cannot be aliased).
    """
    if library.filename.endswith(".dll"):
        raise NotImplementedError("DLL names cannot be aliased; gpuboot puts the DLL directory on PATH")
    check_alias(library.filename, alias_name)
    directory = alias_dir()
    assert directory is not None
    link = directory / alias_name
    target = str(library.path)
    try:
        if os.readlink(link) == target:
            return link
    except OSError:
        pass
    tmp = directory / f".{alias_name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        os.symlink(target, tmp)
        os.replace(tmp, link)  # rename(2) is atomic: readers see old or new, never none
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return link
