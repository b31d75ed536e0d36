"""The value types of finding and loading: ``Library``, ``MissingLibrary``, ``LoadedLibrary``, ``Resolution``."""

from __future__ import annotations

from ..base.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing and pathlib are not imported at run time: `import gpuboot` binds locate()
    from pathlib import Path
    from typing import Any, Dict, Literal, Optional, Protocol, Tuple

    Source = Literal["wheel", "conda", "cuda_path", "system"]
    Platform = Literal["linux", "win32"]

    class OwnerLookup(Protocol):
        def lookup(self, path: Path) -> Tuple[Optional[str], Optional[str]]: ...

__all__ = ["Library", "MissingLibrary", "LoadedLibrary", "Resolution", "Platform", "Source", "OwnerLookup"]


class KnownOwner(Record):
    """An owner already looked up: the distribution and version of one file
    (what a ``Library`` carries after a pickle round trip)."""

    distribution: Optional[str]
    version: Optional[str]

    def lookup(self, path: Path) -> Tuple[Optional[str], Optional[str]]:
        return self.distribution, self.version


class Library(Record):
    """One NVIDIA library file that ``locate()`` found.  Finding never loads.

    Attributes:
        name: catalog name (``"cublas"``).
        path: absolute path of the file.
        filename: the name it was found under (``path.name``, or the loader
            cache's name): what a load by name asks for.
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
        soname: the name the binary carries (ELF ``DT_SONAME``, PE export
            name), read from its headers; ``None`` when it carries none or is
            not a readable ELF/PE file.  ``cuda_major`` and ``major`` follow it.
    """

    #: ``owner`` is a lookup service, not a value: its answer is a function of
    #: ``path``, so two Libraries at one path are equal whoever found them.
    _not_values = ("owner",)
    name: str
    path: Path
    filename: str
    cuda_major: Optional[int]
    major: int
    source: Source
    root: Path
    owner: Optional[OwnerLookup] = None
    soname: Optional[str] = None

    def _pickle_state(self) -> Dict[str, Any]:
        # The owner travels as its answer (a Ray worker on another host cannot
        # read this site directory's RECORD files).
        state = super()._pickle_state()
        if self.owner is not None and not isinstance(self.owner, KnownOwner):
            distribution, version = self.owner.lookup(self.path)
            state["owner"] = KnownOwner(distribution=distribution, version=version)
        return state

    @property
    def loader_name(self) -> str:
        """The name the loader knows this file by once loaded: its soname (DLL
        name), else its file name."""
        return self.soname or self.filename

    @property
    def renamed(self) -> bool:
        """The file's name claims another ABI than the name its binary carries
        (a hand-made link or copy: ``libcublas.so.12`` -> ``libcublas.so.11``).
        The development link ``libnvvm.so`` -> ``libnvvm.so.4`` and the fully
        versioned file ``libcublas.so.12.1.3.1`` (soname ``libcublas.so.12``)
        name the same ABI and are not renamed."""
        if self.soname is None or self.soname == self.filename:
            return False
        return not (self.soname.startswith(self.filename + ".") or self.filename.startswith(self.soname + "."))

    @property
    def distribution(self) -> Optional[str]:
        return self.owner.lookup(self.path)[0] if self.owner is not None else None

    @property
    def version(self) -> Optional[str]:
        return self.owner.lookup(self.path)[1] if self.owner is not None else None

    @property
    def directory(self) -> Path:
        return self.path.parent


class MissingLibrary(Record):
    """A library that was asked for and not found at the wanted version.

    ``other_versions`` lists what was found at other versions (a CUDA 11
    cuBLAS where CUDA 12 is needed); ``fix`` is the exact install command (or
    an instruction when no wheel provides it); ``requirement`` is the pip
    requirement that provides it (``"nvidia-cudnn-cu12==9.*"``), or ``None``.
    """

    name: str
    cuda_major: Optional[int]
    major: Optional[int]
    fix: str
    other_versions: Tuple[Library, ...] = ()
    requirement: Optional[str] = None

    def describe(self) -> str:
        want = f"CUDA {self.cuda_major}" if self.cuda_major else "any CUDA"
        if self.name.startswith("cudnn") and self.major:
            want += f", cuDNN {self.major}"
        text = f"{self.name} ({want}) is not installed"
        if self.other_versions:
            seen = ", ".join(sorted({f"{lib.filename} ({lib.path.parent}"
                                     + (f"; soname {lib.soname}" if lib.renamed else "") + ")"
                                     for lib in self.other_versions}))
            text += (f"; found only other ABI versions: {seen}. Another major is a "
                     "different ABI: never rename or symlink it")
        return text


class LoadedLibrary(Record):
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


class Resolution(Record):
    """What ``resolve()`` settled on.

    Attributes:
        libraries: found libraries in load order (dependencies first).
        missing: required libraries that were not found at ``cuda_major``.
        cuda_major: the one CUDA major the set resolved to (``None`` when
            nothing was found and none was asked for).
        cudnn_major: the cuDNN major chosen, where cuDNN was asked for.
        decided_by: who chose ``cuda_major`` when the caller did not: the
            installed consumer that needs these libraries (``"ctranslate2
            4.8.5 needs CUDA 12 (...)"``), or ``""`` (asked for, or the major
            most of the names were found at).
    """

    libraries: Tuple[Library, ...]
    missing: Tuple[MissingLibrary, ...]
    cuda_major: Optional[int]
    cudnn_major: Optional[int] = None
    decided_by: str = ""

    @property
    def ok(self) -> bool:
        return not self.missing
