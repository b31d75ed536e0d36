"""Find NVIDIA libraries: ``locate()`` and ``resolve()``, the public entry points, bound by ``import gpuboot``.

``gpuboot.locate`` is one object however it is reached: the function
``locate``.  After this module runs, the function replaces it in
``sys.modules`` and carries its public names as attributes, so
``gpuboot.locate([...])``, ``import gpuboot.locate as m; m.resolve``,
``from gpuboot.locate import resolve`` and
``importlib.import_module("gpuboot.locate")`` agree with each other and with
type checkers (which read this file as the module it is).  The module stays
light (no ``typing``, ``pathlib`` or ``subprocess`` at import): the search and
the resolution live in ``_libs/search.py`` and ``_libs/resolve.py`` and are
imported on the first call.

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

from ._libs.types import Library, MissingLibrary, Resolution

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Mapping, Optional, Sequence, Tuple

    from .machine.snapshot import Machine

__all__ = ["locate", "resolve", "Resolution", "Library", "MissingLibrary"]


def resolve(names: Sequence[str], *, cuda_major: Optional[int] = None,
            cudnn_major: Optional[int] = None, optional: Sequence[str] = (),
            search_paths: Optional[Sequence[str]] = None,
            environ: Optional[Mapping[str, str]] = None) -> Resolution:
    """Resolve ``names`` (and their dependencies) to files of ONE CUDA major.

    A consumer built for CUDA 12 must get ``libcublas.so.12`` and never
    ``.so.13``, so the whole set is resolved together: with ``cuda_major``
    given, only that major is accepted; otherwise the installed consumers
    decide (``gpuboot.consumers.table``: the first one that loads one of ``names``
    -- ctranslate2 4.8.5 needs cuBLAS 12 -- and ``decided_by`` names it);
    with none installed, the major that provides the most required names
    wins (ties: the one found earliest in search order).  Within the major, files come from one location where possible
    (the root that provides the most names).  Asking for ``"cudnn"`` also
    brings its sub-libraries (``libcudnn_ops.so.9`` and the rest) when present.

    Args:
        names: catalog names (``"cublas"``, ``"cudnn"``).
        cuda_major: 11, 12 or 13, or ``None`` to choose.
        cudnn_major: 8 or 9, or ``None`` to take the newest found.
        optional: names to include when found, never reported missing.
        search_paths: replaces ``sys.path`` as the list of wheel roots.
        environ: the environment to read ``CONDA_PREFIX`` / ``CUDA_PATH`` from.

    Returns:
        A ``Resolution``; nothing is loaded.

    Raises:
        UnknownLibraryError: a name is not in the catalog.
    """
    from ._libs import resolve as _resolve

    machine = _machine(search_paths, environ)
    decided_by = ""
    if cuda_major is None:
        cuda_major, decided_by = _consumers_major(machine, names)
    found = _resolve.resolve(machine, names, cuda_major=cuda_major, cudnn_major=cudnn_major, optional=optional)
    return found._replace(decided_by=decided_by) if decided_by else found


def _machine(search_paths: Optional[Sequence[str]], environ: Optional[Mapping[str, str]] = None) -> Machine:
    """The current machine, with the wheel roots and the environment the caller gave."""
    from .machine.snapshot import current

    machine = current()
    given = {"search_paths": tuple(search_paths)} if search_paths is not None else {}
    if environ is not None:
        given["environ"] = environ  # type: ignore[assignment]
    return machine.replace(**given) if given else machine


def _consumers_major(machine: Machine, names: Sequence[str]) -> Tuple[Optional[int], str]:
    """``(cuda_major, who)``: the CUDA major of the first installed consumer that loads one of ``names``, or
    ``(None, "")``."""
    from .consumers.installed import installed_needs

    wanted = set(names)
    for need in installed_needs(machine):
        if wanted & set(need.libraries + need.optional):
            return need.cuda_major, f"{need.consumer} {need.version} needs CUDA {need.cuda_major} ({need.source})"
    return None, ""


def locate(names: Optional[Sequence[str]] = None, *, cuda_major: Optional[int] = None,
           search_paths: Optional[Sequence[str]] = None, cudnn_major: Optional[int] = None) -> List[Library]:
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
        cuda_major: accept only this CUDA major (11, 12 or 13); by default
            the installed consumers' major, as ``resolve`` chooses it.
        search_paths: replaces ``sys.path`` as the wheel roots (absolute paths;
            relative and empty entries are ignored).
        cudnn_major: accept only this cuDNN major (8 or 9).

    Returns:
        ``list[Library]``.

    Raises:
        UnknownLibraryError: a name is not in the catalog.
    """
    from ._libs import resolve as _resolve

    machine = _machine(search_paths)
    if names is not None and cuda_major is None:
        cuda_major = _consumers_major(machine, names)[0]
    return _resolve.locate(machine, names, cuda_major=cuda_major, cudnn_major=cudnn_major)


# The function carries the module's public names, and stands in for this
# module in ``sys.modules``: ``gpuboot.locate``, ``import gpuboot.locate``,
# ``importlib.import_module("gpuboot.locate")`` and pickle's lookup of
# ``gpuboot.locate.locate`` all give this one function (see the docstring).
for _name in (*__all__, "__all__"):
    setattr(locate, _name, globals()[_name])
del _name
import sys as _sys  # noqa: E402

_sys.modules[__name__] = locate  # type: ignore[assignment]
