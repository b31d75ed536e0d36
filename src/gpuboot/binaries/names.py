"""What a shared library says about itself: its ELF soname and needed libraries, or its PE DLL name and imports.

The loader judges a library by these, not by its file name: glibc registers a
loaded object under its ``DT_SONAME`` and satisfies later ``dlopen`` calls and
``DT_NEEDED`` entries by it (ld.so(8)); a Windows DLL names itself in its
export directory and lists what it needs in its import directory (PE format,
Microsoft "PE Format" specification, sections "The .edata Section" and "The
.idata Section").  A ``libcublas.so.12`` that is a link to
``libcublas.so.11`` still says ``libcublas.so.11``.

Only headers are read (``layout.py``, by seek and read) -- the ELF program headers, the dynamic section
and the few strings it points at; the PE headers, section table and two directory tables -- a few kilobytes even
for a 500 MB library, never loaded.  Results are cached per (real path, size, mtime).
"""

from __future__ import annotations

import os
import struct
from typing import Any, Dict, List, Optional, Tuple

from ..base.record import Record
from .layout import cstring, elf, open_image, pe, unpack

__all__ = ["BinaryInfo", "read_binary", "soname_of"]


class BinaryInfo(Record):
    """What a library's headers say.

    Attributes:
        kind: ``"elf"`` or ``"pe"``.
        soname: ELF ``DT_SONAME`` / the PE export directory's DLL name, or
            ``None`` when the file names none.
        needed: ELF ``DT_NEEDED`` / the PE import directory's DLL names, in order.
        bits: 32 or 64.
        machine: ELF ``e_machine`` / PE ``Machine`` (62 / 0x8664: x86-64).
    """

    kind: str
    soname: Optional[str]
    needed: Tuple[str, ...]
    bits: int
    machine: int


_CACHE: Dict[Tuple[int, int, int, int, bool], Optional[BinaryInfo]] = {}


def read_binary(path: os.PathLike[str] | str, *, needed: bool = True) -> Optional[BinaryInfo]:
    """The headers of the ELF or PE file at ``path``, or ``None`` when it is
    neither, is truncated or malformed, or cannot be read.  With
    ``needed=False`` the ELF ``DT_NEEDED`` names are not read (``needed`` is
    then empty): the soname alone costs fewer reads."""
    try:
        st = os.stat(path)  # follows links: the file the loader would map
    except OSError:
        return None
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, needed)
    if key in _CACHE:
        return _CACHE[key]
    info: Optional[BinaryInfo] = None
    try:
        f, image = open_image(path)
        with f, image:
            info = _elf(image, needed) if image[:4] == b"\x7fELF" else _pe(image)
    except (OSError, struct.error, ValueError):  # UnicodeDecodeError is a ValueError
        info = None
    if len(_CACHE) > 4096:
        _CACHE.clear()
    _CACHE[key] = info
    return info


def soname_of(path: os.PathLike[str] | str) -> Optional[str]:
    """The name the loader knows the library at ``path`` by (ELF soname or PE
    DLL name), or ``None``."""
    info = read_binary(path, needed=False)
    return info.soname if info is not None else None


def _elf(image: Any, with_needed: bool) -> Optional[BinaryInfo]:
    header = elf(image)
    if header is None:
        return None
    entries, base = header.dynamic(image)
    nameless = BinaryInfo(kind="elf", soname=None, needed=(), bits=header.bits, machine=header.machine)
    if base is None:
        return nameless
    soname_off = next((v for t, v in entries if t == 14), None)  # DT_SONAME
    soname = cstring(image, base + soname_off) if soname_off is not None else None
    needed = tuple(cstring(image, base + v) for t, v in entries if t == 1) if with_needed else ()  # DT_NEEDED
    return nameless._replace(soname=soname, needed=needed)


def _pe(image: Any) -> Optional[BinaryInfo]:
    layout = pe(image)
    if layout is None:
        return None
    dirs = layout.directories
    soname: Optional[str] = None
    if dirs and dirs[0][0]:  # the export directory: its DLL name
        export = layout.offset(dirs[0][0])
        soname = cstring(image, layout.offset(unpack("<I", image, export + 12)[0]))
    needed: List[str] = []
    if len(dirs) > 1 and dirs[1][0]:  # the import directory: one 20-byte descriptor per DLL, then zeros
        pos = layout.offset(dirs[1][0])
        for _ in range(4096):
            desc = bytes(image[pos:pos + 20])
            if len(desc) < 20 or desc == b"\x00" * 20:
                break
            needed.append(cstring(image, layout.offset(struct.unpack_from("<I", desc, 12)[0])))
            pos += 20
    return BinaryInfo(kind="pe", soname=soname, needed=tuple(needed), bits=layout.bits, machine=layout.machine)
