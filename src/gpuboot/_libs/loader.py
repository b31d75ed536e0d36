"""The abstract loader every platform module implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Dict, List, MutableMapping, Optional, Sequence

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .types import Platform


class Loader(ABC):
    """Makes located libraries loadable in this process.

    Attributes:
        platform: ``"linux"`` or ``"win32"``.
        env_var: the variable child processes read to find libraries
            (``LD_LIBRARY_PATH`` / ``PATH``).
        separator: its list separator.
    """

    platform: Platform
    env_var: str
    separator: str

    def __init__(self) -> None:
        #: path -> handle; kept for the life of the process so nothing unloads.
        self.handles: Dict[str, object] = {}

    @abstractmethod
    def loaded_path(self, filename: str) -> Optional[Path]:
        """The file already loaded under ``filename`` (a soname / DLL name),
        or ``None`` when nothing of that name is loaded.  Loads nothing."""

    @abstractmethod
    def load(self, path: Path) -> object:
        """Load ``path`` by absolute path so later loads by name reuse it.

        Raises:
            OSError: the loader's own message.
        """

    def explain(self, path: Path, message: str) -> str:
        """The loader's ``message`` for ``path``, made clearer where possible."""
        del path
        return message

    def prepare(self, directories: Sequence[Path], environ: MutableMapping[str, str]) -> None:
        """Put ``directories`` where this platform's consumers look before the
        preload (Windows: DLL directories and ``PATH``). Default: nothing."""
        del directories, environ


def prepend_path(value: str, directories: Sequence[str], sep: str) -> str:
    """``directories`` first, then the old entries, without repeats or empty
    entries (an empty entry means the current directory to the loader)."""
    out: List[str] = []
    for entry in list(directories) + value.split(sep):
        if entry and entry not in out:
            out.append(entry)
    return sep.join(out)
