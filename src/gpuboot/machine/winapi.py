"""The Windows API calls the Windows loader makes: the real ones (``NATIVE``), or a stand-in a ``Machine``
snapshot is given (tests run the Windows loader on Linux with a fake)."""

from __future__ import annotations

import os
from typing import Any, Optional

try:
    from typing import Protocol
except ImportError:  # pragma: no cover - Python < 3.8
    from typing_extensions import Protocol  # type: ignore[assignment]

__all__ = ["WindowsAPI", "NativeWindowsAPI", "NATIVE"]


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


#: The real calls (made only on Windows).
NATIVE = NativeWindowsAPI()
