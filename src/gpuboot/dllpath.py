"""Make located libraries loadable in this process: preload them.

* Linux: ``dlopen(path, RTLD_GLOBAL)`` in dependency order (cublasLt before
  cublas), skipping names already loaded, keeping every handle alive.
* Windows: ``os.add_dll_directory`` for each directory, the directories
  prepended to ``PATH``, then a load by absolute path.

Child processes get their environment from ``shellenv.subprocess_env``; a
soname a consumer asks for that no wheel ships gets a link from
``_libs/aliases.alias``.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, MutableMapping, Optional, Sequence, Tuple, cast

from ._libs.loader import Loader
from ._libs.platform import check_platform
from ._libs.types import Library, LoadedLibrary
from .base.log import log
from .machine.snapshot import current

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._libs.types import Platform

__all__ = ["preload", "get_loader", "load_all", "preloaded", "directories"]


_LOADERS: Dict[Tuple[str, int], Tuple[object, Loader]] = {}
_LOCK = threading.RLock()
#: Every library gpuboot preloaded into this process, in load order.
_PRELOADED: List[Library] = []


def preloaded() -> List[Library]:
    """The libraries gpuboot has preloaded into this process, load order."""
    with _LOCK:
        return list(_PRELOADED)


def get_loader(platform: Optional[str] = None) -> Loader:
    """The loader for ``platform`` (default: the current machine's), with the current machine's Windows API
    calls (``Machine.windows_api``); created once per platform and API, and kept with the handles it holds."""
    machine = current()
    plat: Platform = check_platform(platform or machine.platform)
    api = machine.windows_api if plat == "win32" else None
    key = (plat, id(api))
    with _LOCK:
        entry = _LOADERS.get(key)
        if entry is None:
            if plat == "win32":
                from ._libs.windows import WindowsLoader

                entry = (api, WindowsLoader(cast(Any, api)))
            else:
                from ._libs.linux import LinuxLoader

                entry = (api, LinuxLoader())
            _LOADERS[key] = entry  # the API is kept with it: its id is not reused while the loader lives
        return entry[1]


def load_all(libraries: Sequence[Library], loader: Loader,
             environ: Optional[MutableMapping[str, str]] = None) -> List[LoadedLibrary]:
    """Preload ``libraries`` in order; never raises for one library's failure.

    A library that failed is tried once more after the others only when that
    can change the outcome: its loader message names a missing dependency
    that another library of the set has since provided (on Windows, whose
    message names no file, when a library after it in the list loaded).  A
    file of the wrong architecture, a truncated file or a dependency nothing
    here provides is not tried again.  Each result carries the loader's message.
    ``environ`` is the environment the loader prepares (Windows: ``PATH``): default the current machine's,
    this process's ``os.environ``.
    """
    with _LOCK:
        target = environ if environ is not None else cast(MutableMapping[str, str], current().environ)
        loader.prepare(directories(libraries), target)
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
        TypeError: an item is not a ``Library``.
    """
    from .base.record import expect

    if isinstance(libraries, (str, bytes)):
        raise TypeError("preload() takes a list of Library values (from gpuboot.locate()), not a string")
    for lib in libraries:
        expect(lib, Library, "each item of libraries", "from gpuboot.locate()")
    results = load_all(libraries, get_loader())
    failures = {str(r.library.path): r.error for r in results if r.error}
    if failures:
        from .errors import LibraryLoadError

        raise LibraryLoadError(failures)  # type: ignore[arg-type]
    return results


def directories(libraries: Iterable[Library]) -> List[Path]:
    """The directories of ``libraries``, each once, first seen first."""
    out: List[Path] = []
    for lib in libraries:
        if lib.directory not in out:
            out.append(lib.directory)
    return out
