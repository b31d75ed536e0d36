"""Value types shared by locate, dllpath and ensure."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Protocol, Tuple

try:  # Python >= 3.8
    from typing import Literal
except ImportError:  # pragma: no cover
    from typing_extensions import Literal  # type: ignore[assignment]

Source = Literal["wheel", "conda", "cuda_path", "system"]
Platform = Literal["linux", "win32"]


class OwnerLookup(Protocol):
    def lookup(self, path: Path) -> Tuple[Optional[str], Optional[str]]: ...


@dataclass(frozen=True)
class Library:
    """One NVIDIA library file that ``locate()`` found.  Finding never loads.

    Attributes:
        name: catalog name (``"cublas"``).
        path: absolute path of the file.
        filename: the soname (Linux) or DLL name (Windows), ``path.name``.
        cuda_major: the CUDA major the file belongs to, or ``None`` when
            neither its directory, its owner nor its name tells.
        major: the catalog variant: the CUDA major for toolkit libraries, the
            cuDNN major (8, 9) for cuDNN, 2 for NCCL, 1 for driver libraries.
        distribution: the pip distribution that installed it, from its
            ``.dist-info/RECORD`` (``"nvidia-cublas-cu12"``), else ``None``.
            Read on first access (a property): finding a library never lists
            the site directory unless the CUDA major needs the owner to tell.
        version: that distribution's version, else ``None``.
        source: where it was found: ``"wheel"`` (a ``sys.path`` entry),
            ``"conda"`` (``$CONDA_PREFIX``), ``"cuda_path"`` (``$CUDA_PATH`` /
            ``$CUDA_HOME``) or ``"system"`` (the loader's cache, System32).
        root: the search root it was found under (a ``sys.path`` entry, the
            conda prefix, ...).
    """

    name: str
    path: Path
    filename: str
    cuda_major: Optional[int]
    major: int
    source: Source
    root: Path
    owner: Optional[OwnerLookup] = field(default=None, compare=False, repr=False)

    @property
    def distribution(self) -> Optional[str]:
        return self.owner.lookup(self.path)[0] if self.owner is not None else None

    @property
    def version(self) -> Optional[str]:
        return self.owner.lookup(self.path)[1] if self.owner is not None else None

    @property
    def directory(self) -> Path:
        return self.path.parent

    def __repr__(self) -> str:
        return (f"Library(name={self.name!r}, path={str(self.path)!r}, cuda_major={self.cuda_major}, "
                f"distribution={self.distribution!r}, version={self.version!r}, source={self.source!r})")


@dataclass(frozen=True)
class MissingLibrary:
    """A library that was asked for and not found at the wanted version.

    ``other_versions`` lists what was found at other versions (a CUDA 11
    cuBLAS where CUDA 12 is needed); ``fix`` is the exact install command.
    """

    name: str
    cuda_major: Optional[int]
    major: Optional[int]
    fix: str
    other_versions: Tuple[Library, ...] = ()

    def describe(self) -> str:
        want = f"CUDA {self.cuda_major}" if self.cuda_major else "any CUDA"
        if self.name.startswith("cudnn") and self.major:
            want += f", cuDNN {self.major}"
        text = f"{self.name} ({want}) is not installed"
        if self.other_versions:
            seen = ", ".join(sorted({f"{lib.filename} ({lib.path.parent})"
                                     for lib in self.other_versions}))
            text += (f"; found only other ABI versions: {seen}. Another major is a "
                     "different ABI: never rename or symlink it")
        return text


@dataclass(frozen=True)
class LoadedLibrary:
    """The outcome of preloading one ``Library``.

    Attributes:
        library: what was asked to load.
        loaded_path: the file the process actually has mapped for that name
            (differs from ``library.path`` when another copy was loaded first).
        already_loaded: a library of that name was in the process before.
        error: the loader's message when loading failed, else ``None``.
        elapsed_ms: time spent in the loader, milliseconds.
    """

    library: Library
    loaded_path: Optional[Path]
    already_loaded: bool
    error: Optional[str] = None
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def shadowed(self) -> bool:
        """True when a different file of the same name was loaded first."""
        return (self.loaded_path is not None and self.error is None
                and _real(self.loaded_path) != _real(self.library.path))


def _real(path: Path) -> str:
    try:
        return str(path.resolve())
    except OSError:
        return str(path)
