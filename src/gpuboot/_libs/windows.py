"""Windows: DLL directories, ``PATH`` and a preload by absolute path.

``os.add_dll_directory`` affects only loads that use
``LOAD_LIBRARY_SEARCH_USER_DIRS`` or the default dirs; CTranslate2 loads
``cublas64_12.dll`` with plain ``LoadLibraryA`` (src/cuda/cublas_stub.cc),
which ignores it and searches ``PATH``.  So gpuboot does all three: add the
directories, prepend them to ``PATH``, and load each DLL by absolute path
(Windows reuses an already-loaded module of the same base name).

The Windows API is reached through ``WindowsAPI`` so this module runs, and is
tested, on Linux with a fake.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List, MutableMapping, Optional, Sequence

try:
    from typing import Protocol
except ImportError:  # pragma: no cover - Python < 3.8
    from typing_extensions import Protocol  # type: ignore[assignment]

from .loader import Loader, prepend_path
from .platform import library_path_variable


class WindowsAPI(Protocol):
    def add_dll_directory(self, path: str) -> object: ...

    def load_library(self, path: str) -> object: ...

    def module_path(self, name: str) -> Optional[str]: ...


class NativeWindowsAPI:  # pragma: no cover - exercised on Windows only (tests/test_windows.py under Wine)
    """The real calls: ``os.add_dll_directory``, ``ctypes.WinDLL`` and
    ``GetModuleHandleW`` + ``GetModuleFileNameW``.

    Every kernel32 function is given its ``argtypes`` and ``restype`` once, on
    a ``WinDLL`` of gpuboot's own (never ``ctypes.windll.kernel32``, whose
    prototypes other code may set): without them ctypes passes a module handle
    as a C ``int``, and a 64-bit DLL that Windows mapped above 4 GiB (ASLR)
    raises ``ctypes.ArgumentError: int too long to convert``.
    """

    def __init__(self) -> None:
        self._k32: object = None

    def _kernel32(self) -> Any:
        if self._k32 is None:
            import ctypes
            from ctypes import wintypes

            k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
            k32.GetModuleHandleW.restype = wintypes.HMODULE
            k32.GetModuleHandleW.argtypes = [wintypes.LPCWSTR]
            k32.GetModuleFileNameW.restype = wintypes.DWORD
            k32.GetModuleFileNameW.argtypes = [wintypes.HMODULE, wintypes.LPWSTR, wintypes.DWORD]
            self._k32 = k32
        return self._k32

    def add_dll_directory(self, path: str) -> object:
        return os.add_dll_directory(path)  # type: ignore[attr-defined,unused-ignore]

    def load_library(self, path: str) -> object:
        import ctypes

        return ctypes.WinDLL(path)  # type: ignore[attr-defined,unused-ignore]

    def module_path(self, name: str) -> Optional[str]:
        import ctypes

        k32 = self._kernel32()
        handle = k32.GetModuleHandleW(name)
        if not handle:
            return None
        buf = ctypes.create_unicode_buffer(32768)
        n = k32.GetModuleFileNameW(handle, buf, len(buf))
        return buf.value[:n] if n else name


class WindowsLoader(Loader):
    platform = "win32"
    env_var, separator = library_path_variable("win32")

    def __init__(self, api: Optional[WindowsAPI] = None) -> None:
        super().__init__()
        self.api: WindowsAPI = api if api is not None else NativeWindowsAPI()
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
