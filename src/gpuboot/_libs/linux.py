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
import sys
from pathlib import Path
from typing import Literal, Optional

from .loader import Loader
from .platform import library_path_variable

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


# e_machine values (elf.h) of the architectures NVIDIA ships wheels for, and a few others.
_MACHINES = {3: "x86 (32-bit)", 62: "x86-64", 183: "AArch64", 21: "PowerPC64", 243: "RISC-V", 40: "ARM (32-bit)"}


def _this_machine() -> int:
    import platform

    return {"x86_64": 62, "amd64": 62, "aarch64": 183, "arm64": 183, "ppc64le": 21, "riscv64": 243,
            "i686": 3, "i386": 3}.get(platform.machine().lower(), 0)


def explain_elf(path: Path) -> Optional[str]:
    """Why ``path`` cannot be this process's shared object, read from its ELF
    header, or ``None`` when the header looks right.  glibc reports a library
    of another architecture as "No such file or directory" (ld.so skips it),
    which sends people looking for a file that is there."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
        size = os.path.getsize(path)
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    if len(head) < 4 or head[:4] != b"\x7fELF":
        return f"it is not an ELF shared object ({size} bytes{', empty' if size == 0 else ''})"
    if len(head) < 20:
        return f"it is truncated ({size} bytes)"
    bits = {1: 32, 2: 64}.get(head[4], 0)
    order: Literal["little", "big"] = "little" if head[5] == 1 else "big"
    machine = int.from_bytes(head[18:20], order)
    want = _this_machine()
    if bits and bits != (64 if sys.maxsize > 2**32 else 32):
        return f"it is a {bits}-bit library in a {64 if sys.maxsize > 2**32 else 32}-bit process"
    if want and machine != want:
        return (f"it is built for {_MACHINES.get(machine, f'machine {machine}')}, this process is "
                f"{_MACHINES.get(want, str(want))}: install the wheel for this platform")
    if len(head) == 64:
        shoff = int.from_bytes(head[40:48], order)
        shnum = int.from_bytes(head[60:62], order)
        shentsize = int.from_bytes(head[58:60], order)
        if shoff and shoff + shnum * shentsize > size:
            return f"it is truncated ({size} bytes; its headers reach {shoff + shnum * shentsize})"
    return None


class LinuxLoader(Loader):
    platform = "linux"
    env_var, separator = library_path_variable("linux")

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

    def explain(self, path: Path, message: str) -> str:
        why = explain_elf(path)
        return f"{message} ({path.name}: {why})" if why else message

    def load(self, path: Path) -> object:
        key = str(path)
        if key not in self.handles:
            self.handles[key] = ctypes.CDLL(key, mode=os.RTLD_GLOBAL | os.RTLD_NOW)
        return self.handles[key]
