"""Linux: preload with ``dlopen(path, RTLD_GLOBAL)``.

glibc satisfies a later ``dlopen("libcublas.so.12")`` -- or a ``DT_NEEDED``
entry -- with an already-loaded object whose SONAME matches, so a preload by
absolute path makes the by-name loads of CTranslate2, torch or onnxruntime
succeed.  ``LD_LIBRARY_PATH`` is read once at process start (ld.so(8)), so
setting it in a running process helps only child processes.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Optional

from ._loader import Loader

_RTLD_DI_LINKMAP = 2  # <dlfcn.h>


class _LinkMap(ctypes.Structure):
    _fields_ = [("l_addr", ctypes.c_void_p), ("l_name", ctypes.c_char_p),
                ("l_ld", ctypes.c_void_p), ("l_next", ctypes.c_void_p),
                ("l_prev", ctypes.c_void_p)]


def _dlinfo() -> Optional[ctypes._CFuncPtr]:  # type: ignore[name-defined]
    for lib in (None, "libdl.so.2"):  # glibc >= 2.34 has dlinfo in libc
        try:
            fn = ctypes.CDLL(lib).dlinfo
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        fn.restype = ctypes.c_int
        return fn
    return None


class LinuxLoader(Loader):
    platform = "linux"
    env_var = "LD_LIBRARY_PATH"
    separator = ":"

    def __init__(self) -> None:
        super().__init__()
        self._dlinfo = _dlinfo()

    def loaded_path(self, filename: str) -> Optional[Path]:
        if "/" in filename:
            raise ValueError("loaded_path takes a soname, not a path")
        try:
            # RTLD_NOLOAD: succeed only if an object of that name is loaded.
            lib = ctypes.CDLL(filename, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
        except OSError:
            return None
        return self._path_of(lib._handle) or Path(filename)

    def _path_of(self, handle: int) -> Optional[Path]:
        if self._dlinfo is None:
            return None
        lm = ctypes.POINTER(_LinkMap)()
        if self._dlinfo(ctypes.c_void_p(handle), _RTLD_DI_LINKMAP, ctypes.byref(lm)) != 0 or not lm:
            return None
        name = lm.contents.l_name
        return Path(os.fsdecode(name)) if name else None

    def load(self, path: Path) -> object:
        key = str(path)
        if key not in self.handles:
            self.handles[key] = ctypes.CDLL(key, mode=os.RTLD_GLOBAL | os.RTLD_NOW)
        return self.handles[key]
