"""Import optional Python dependencies and, when one cannot be used, say which package failed and why.

"faster-whisper is not installed" is the wrong message when faster-whisper is
installed but one of its own dependencies (tokenizers, av, ctranslate2, ...)
fails to load: the user would reinstall the wrong thing.  ``import_optional``
finds the package the failing module belongs to (``importlib.metadata``) and
raises the exception that fits:

- ``MissingDependencyError``: the package itself, or a dependency of it, is not installed;
- ``BrokenDependencyError``: installed, but its import fails (a shared object
  that cannot load, a damaged install);
- ``IncompatibleDependencyError``: installed, but the installed versions do not
  fit together (``cannot import name ...``).
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Optional, Tuple

from ..errors import BrokenDependencyError, IncompatibleDependencyError, MissingDependencyError

__all__ = ["import_optional", "faster_whisper", "installed_version", "distribution_of", "describe"]


def installed_version(distribution: str) -> Optional[str]:
    """The installed version of ``distribution``, or ``None``."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def distribution_of(module: str) -> Optional[str]:
    """The distribution that provides top-level ``module`` (``"av"`` -> ``"av"``,
    ``"yaml"`` -> ``"PyYAML"``), or ``None`` when none installed does."""
    from importlib import metadata

    top = module.split(".")[0]
    names = metadata.packages_distributions().get(top)
    if names:
        return names[0]
    return top if installed_version(top) else None


def describe(distribution: str) -> str:
    """``"faster-whisper 1.2.1"``, or the bare name when it is not installed."""
    version = installed_version(distribution)
    return f"{distribution} {version}" if version else distribution


def _culprit(exc: BaseException) -> Optional[str]:
    """The top-level module whose import failed: ``ImportError.name`` where the
    import system set it, else the innermost module on the traceback."""
    name = getattr(exc, "name", None)
    if isinstance(exc, ImportError) and name:
        return str(name).split(".")[0]
    found: Optional[str] = None
    tb = exc.__traceback__
    while tb is not None:
        mod = tb.tb_frame.f_globals.get("__name__")
        if isinstance(mod, str) and not mod.startswith(("importlib", "gpuboot", "__main__", "<")):
            found = mod
        tb = tb.tb_next
    return found.split(".")[0] if found else None


def _requirement_named(requirer: str, module: str) -> str:
    """The name under which ``requirer`` declares the dependency that provides
    ``module`` (its ``Requires-Dist``), else the module name."""
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        requires = metadata.requires(requirer) or []
    except metadata.PackageNotFoundError:
        return module
    wanted = canonicalize_name(module)
    for line in requires:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name) == wanted:
            return req.name
    return module


def import_failure(module: str, distribution: str, exc: BaseException, install: str) -> Exception:
    """The gpuboot error that tells the truth about ``exc``, raised while
    importing ``module`` (from ``distribution``; ``install`` is the command
    that installs it when it is missing)."""
    error = f"{type(exc).__name__}: {exc}".strip()
    culprit = _culprit(exc)
    own = culprit is None or culprit == module.split(".")[0]
    if own and isinstance(exc, ModuleNotFoundError) and installed_version(distribution) is None:
        return MissingDependencyError(f"{distribution} is not installed ({exc})", install)
    if own:
        who, pin = describe(distribution), installed_version(distribution)
        return BrokenDependencyError(
            f"{who} is installed but fails to import ({error})",
            f"pip install --force-reinstall --no-deps '{distribution}=={pin}'" if pin else install)
    assert culprit is not None
    dist = distribution_of(culprit)
    requirer = describe(distribution)
    if dist is None:
        needed = _requirement_named(distribution, culprit)
        return MissingDependencyError(
            f"{requirer} cannot be imported: {needed}, which it needs, is not installed ({exc})",
            f"pip install {needed}")
    if isinstance(exc, ImportError) and str(exc).startswith("cannot import name"):
        return IncompatibleDependencyError(
            f"{requirer} and {describe(dist)} are incompatible ({error})",
            f"pip install --upgrade '{distribution}' '{dist}'")
    pin = installed_version(dist)
    return BrokenDependencyError(
        f"{describe(dist)} (needed by {requirer}) fails to import ({error})",
        f"pip install --force-reinstall --no-deps '{dist}=={pin}'")


def import_optional(module: str, distribution: str, install: str) -> ModuleType:
    """Import ``module``; raise the error that names the real cause.

    Raises:
        MissingDependencyError: ``distribution`` or a package it needs is not installed.
        BrokenDependencyError: an installed package fails to import.
        IncompatibleDependencyError: installed versions do not work together.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, OSError from ctypes, AttributeError of a mismatch, ...
        raise import_failure(module, distribution, exc, install) from None


WHISPER_INSTALL = "pip install 'gpuboot[whisper]'"


def faster_whisper() -> ModuleType:
    """The ``faster_whisper`` module (see ``import_optional`` for the errors)."""
    return import_optional("faster_whisper", "faster-whisper", WHISPER_INSTALL)


#: Known incompatibilities: (substring of the error, what it means, the fix).
#: Each is also a bound in pyproject.toml's extras, re-checked by
#: tests/test_dependencies.py.
KNOWN_CONFLICTS: Tuple[Tuple[str, str, str], ...] = (
    ("metadata_errors",
     "faster-whisper passes metadata_errors= to av.open(), which av 19 removed",
     "pip install 'av<19'"),
)


def decoder_conflict(exc: BaseException) -> IncompatibleDependencyError:
    """The error for a decode that failed inside faster-whisper/av for a reason
    that is not the file (a ``TypeError`` of an API change, ...)."""
    error = f"{type(exc).__name__}: {exc}"
    pair = f"{describe('faster-whisper')} and {describe('av')}"
    for needle, meaning, fix in KNOWN_CONFLICTS:
        if re.search(re.escape(needle), error):
            return IncompatibleDependencyError(f"{pair} are incompatible: {meaning} ({error})", fix)
    return IncompatibleDependencyError(
        f"{pair} are incompatible: decoding failed inside the libraries, not because of the audio ({error})",
        "pip install 'gpuboot[whisper]' (installs versions tested together)")
