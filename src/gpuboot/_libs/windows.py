"""Windows: DLL directories, ``PATH`` and a preload by absolute path.

``os.add_dll_directory`` affects only loads that use
``LOAD_LIBRARY_SEARCH_USER_DIRS`` or the default dirs; CTranslate2 loads
``cublas64_12.dll`` with plain ``LoadLibraryA`` (src/cuda/cublas_stub.cc),
which ignores it and searches ``PATH``.  So gpuboot does all three: add the
directories, prepend them to ``PATH``, and load each DLL by absolute path
(Windows reuses an already-loaded module of the same base name).

The Windows API is reached through ``machine.winapi.WindowsAPI`` (a fact of the
``Machine`` snapshot) so this module runs, and is tested, on Linux with a fake.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, MutableMapping, Optional, Sequence

from ..machine.winapi import WindowsAPI
from .loader import Loader, prepend_path
from .platform import library_path_variable


class WindowsLoader(Loader):
    platform = "win32"
    env_var, separator = library_path_variable("win32")

    def __init__(self, api: WindowsAPI) -> None:
        super().__init__()
        self.api = api
        #: directory -> handle from add_dll_directory (kept: closing it removes the dir)
        self.dll_directories: dict[str, object] = {}

    def loaded_path(self, filename: str) -> Optional[Path]:
        found = self.api.module_path(filename)
        return Path(found) if found else None

    def load(self, path: Path) -> object:
        key = str(path)
        if key not in self.handles:
            self.handles[key] = self.api.load_library(key)
        return self.handles[key]

    def prepare(self, directories: Sequence[Path], environ: MutableMapping[str, str]) -> None:
        dirs: List[str] = []
        for d in directories:
            s = str(d)
            if s not in dirs:
                dirs.append(s)
        for s in dirs:
            if s not in self.dll_directories:
                self.dll_directories[s] = self.api.add_dll_directory(s)
        environ["PATH"] = prepend_path(environ.get("PATH", ""), dirs, ";")
