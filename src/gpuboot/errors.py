"""gpuboot's exceptions: one class per failure, each message ending in the fix."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Sequence


class GpubootError(Exception):
    """Base class of every error gpuboot raises on purpose.

    ``fix`` is the exact command or one-line instruction that resolves it.
    """

    fix: str = ""

    def __init__(self, message: str, fix: str = "") -> None:
        self.fix = fix
        super().__init__(f"{message}\n  fix: {fix}" if fix else message)


class UnknownLibraryError(GpubootError, KeyError):
    """A library name that is not in gpuboot's catalog."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        super().__init__(f"unknown NVIDIA library {name!r}",
                         "use one of: " + ", ".join(known))

    def __str__(self) -> str:  # KeyError would repr() the message
        return Exception.__str__(self)


class LibraryNotFoundError(GpubootError):
    """A library a consumer needs is not installed anywhere gpuboot searched.

    ``missing`` holds one ``MissingLibrary`` per absent library.
    """

    def __init__(self, missing: Sequence[object], message: str, fix: str) -> None:
        self.missing = tuple(missing)
        super().__init__(message, fix)


class LibraryLoadError(GpubootError):
    """The dynamic loader refused a library (wrong architecture, not a shared
    object, a missing dependency). ``failures`` maps path -> loader message."""

    def __init__(self, failures: dict[str, str], fix: str = "") -> None:
        self.failures = dict(failures)
        detail = "; ".join(f"{p}: {m}" for p, m in failures.items())
        super().__init__(f"could not load {len(failures)} NVIDIA "
                         f"librar{'y' if len(failures) == 1 else 'ies'}: {detail}",
                         fix or "run `gpuboot doctor` for the cause")


class AbiMismatchError(GpubootError):
    """An alias was asked for that would present one ABI version of a library
    as another (``libcublas.so.11`` as ``libcublas.so.12``).  The loader would
    accept it and the program would crash or compute garbage later."""


class CacheDirError(GpubootError):
    """gpuboot's cache directory is unusable (owned by another user, not a
    directory, not writable)."""


class ModelLoadError(GpubootError):
    """No device and compute type could run the Whisper model.

    ``trail`` lists each attempt and why it failed.
    """

    def __init__(self, message: str, fix: str, trail: Sequence[object] = ()) -> None:
        self.trail = tuple(trail)
        super().__init__(message, fix)


class ModelNotFoundError(GpubootError):
    """The model argument names neither a known Whisper size nor a directory
    holding a CTranslate2 model (``model.bin`` beside ``config.json``)."""


class AudioError(GpubootError):
    """The audio file is missing or could not be decoded."""


class MissingDependencyError(GpubootError):
    """An optional Python package gpuboot needs for this call is not installed."""


class BrokenDependencyError(GpubootError):
    """A Python package is installed but fails to import (a DLL or ``.so`` of
    tokenizers, av or ctranslate2 that cannot load, a damaged install).  The
    message names that package, its version and the import error."""


class IncompatibleDependencyError(GpubootError):
    """Two installed packages do not work together at their installed versions
    (e.g. faster-whisper 1.2.1 passes ``metadata_errors`` to ``av.open``, which
    av 19 rejects).  The message names both versions; the fix installs a
    combination that works."""


class DriverNotFoundError(GpubootError):
    """A GPU was asked for explicitly (``device="cuda"``) on a machine with no
    NVIDIA driver, so no CUDA library could ever run."""


class OutputDirError(GpubootError):
    """The output directory cannot take transcripts (checked before any transcription)."""


class HookError(GpubootError):
    """The start-up hook's ``.pth`` file cannot be written into, or removed from, the site-packages directory
    (not this user's to change, a read-only file system, a full disk)."""
