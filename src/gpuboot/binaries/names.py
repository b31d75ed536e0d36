"""What a shared library says about itself: its ELF soname and needed libraries, or its PE DLL name and imports.

The loader judges a library by these, not by its file name: glibc registers a
loaded object under its ``DT_SONAME`` and satisfies later ``dlopen`` calls and
``DT_NEEDED`` entries by it (ld.so(8)); a Windows DLL names itself in its
export directory and lists what it needs in its import directory (PE format,
Microsoft "PE Format" specification, sections "The .edata Section" and "The
.idata Section").  A ``libcublas.so.12`` that is a link to
``libcublas.so.11`` still says ``libcublas.so.11``.

Only headers are read -- the ELF program headers, the dynamic section and the
few strings it points at; the PE headers, section table and two directory
tables -- a few kilobytes even for a 500 MB library, never loaded.  Results
are cached per (real path, size, mtime).
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO, Dict, List, Optional, Tuple

from ..base.record import Record

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
_MAX_STRING = 4096


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
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] == b"\x7fELF":
                info: Optional[BinaryInfo] = _elf(f, head, needed)
            elif head[:2] == b"MZ":
                info = _pe(f, head)
            else:
                info = None
    except (OSError, struct.error, ValueError, UnicodeDecodeError):
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


def _cstring(f: BinaryIO, offset: int) -> str:
    f.seek(offset)
    raw = f.read(_MAX_STRING)
    end = raw.find(b"\x00")
    if end < 0:
        raise ValueError("unterminated string")
    return raw[:end].decode("utf-8")


def _elf(f: BinaryIO, head: bytes, with_needed: bool = True) -> Optional[BinaryInfo]:
    if len(head) < 52:
        return None
    bits = {1: 32, 2: 64}.get(head[4])
    order = {1: "<", 2: ">"}.get(head[5])
    if bits is None or order is None:
        return None
    machine = struct.unpack_from(order + "H", head, 18)[0]
    if bits == 64:
        phoff = struct.unpack_from(order + "Q", head, 32)[0]
        phentsize, phnum = struct.unpack_from(order + "HH", head, 54)
        ph_fmt, dyn_fmt = order + "IIQQQQ", order + "qQ"  # type, flags, offset, vaddr, paddr, filesz
    else:
        phoff = struct.unpack_from(order + "I", head, 28)[0]
        phentsize, phnum = struct.unpack_from(order + "HH", head, 42)
        ph_fmt, dyn_fmt = order + "IIIIII", order + "iI"  # type, offset, vaddr, paddr, filesz, memsz
    if not phoff or not phnum or phnum > 4096:
        return BinaryInfo(kind="elf", soname=None, needed=(), bits=bits, machine=machine)
    f.seek(phoff)
    table = f.read(phentsize * phnum)
    loads: List[Tuple[int, int, int]] = []  # vaddr, offset, filesz
    dynamic: Optional[Tuple[int, int]] = None  # offset, filesz
    for i in range(phnum):
        entry = table[i * phentsize:(i + 1) * phentsize]
        if bits == 64:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(ph_fmt, entry)
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz, _memsz = struct.unpack_from(ph_fmt, entry)
        if p_type == 1:  # PT_LOAD
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:  # PT_DYNAMIC
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return BinaryInfo(kind="elf", soname=None, needed=(), bits=bits, machine=machine)
    f.seek(dynamic[0])
    raw = f.read(min(dynamic[1], 1 << 20))
    step = struct.calcsize(dyn_fmt)
    strtab = None
    soname_off: Optional[int] = None
    needed_offs: List[int] = []
    for pos in range(0, len(raw) - step + 1, step):
        tag, val = struct.unpack_from(dyn_fmt, raw, pos)
        if tag == 0:  # DT_NULL
            break
        if tag == 1:  # DT_NEEDED
            needed_offs.append(val)
        elif tag == 5:  # DT_STRTAB (a virtual address)
            strtab = val
        elif tag == 14:  # DT_SONAME
            soname_off = val
    if strtab is None:
        return BinaryInfo(kind="elf", soname=None, needed=(), bits=bits, machine=machine)
    base = next((off + strtab - vaddr for vaddr, off, size in loads if vaddr <= strtab < vaddr + size), None)
    if base is None:
        return BinaryInfo(kind="elf", soname=None, needed=(), bits=bits, machine=machine)
    soname = _cstring(f, base + soname_off) if soname_off is not None else None
    needed = tuple(_cstring(f, base + off) for off in needed_offs) if with_needed else ()
    return BinaryInfo(kind="elf", soname=soname, needed=needed, bits=bits, machine=machine)


def _pe(f: BinaryIO, head: bytes) -> Optional[BinaryInfo]:
    lfanew = struct.unpack_from("<I", head, 0x3C)[0]
    f.seek(lfanew)
    if f.read(4) != b"PE\x00\x00":
        return None
    coff = f.read(20)
    machine, nsections = struct.unpack_from("<HH", coff, 0)
    opt_size = struct.unpack_from("<H", coff, 16)[0]
    opt = f.read(opt_size)
    magic = struct.unpack_from("<H", opt, 0)[0]
    if magic == 0x20B:
        bits, dirs_at = 64, 112
    elif magic == 0x10B:
        bits, dirs_at = 32, 96
    else:
        return None
    ndirs = struct.unpack_from("<I", opt, dirs_at - 4)[0]
    dirs = [struct.unpack_from("<II", opt, dirs_at + 8 * i) for i in range(min(ndirs, 2))]
    sections: List[Tuple[int, int, int]] = []
    for _ in range(nsections):
        sec = f.read(40)
        vsize, vaddr, rawsize, rawptr = struct.unpack_from("<IIII", sec, 8)
        sections.append((int(vaddr), int(max(vsize, rawsize)), int(rawptr)))

    def offset(rva: int) -> int:
        for vaddr, size, rawptr in sections:
            if vaddr <= rva < vaddr + size:
                return rva - vaddr + rawptr
        raise ValueError(f"RVA {rva:#x} is in no section")

    soname: Optional[str] = None
    if dirs and dirs[0][0]:
        f.seek(offset(dirs[0][0]))
        export = f.read(40)
        soname = _cstring(f, offset(struct.unpack_from("<I", export, 12)[0]))
    needed: List[str] = []
    if len(dirs) > 1 and dirs[1][0]:
        pos = offset(dirs[1][0])
        for _ in range(4096):
            f.seek(pos)
            desc = f.read(20)
            if len(desc) < 20 or desc == b"\x00" * 20:
                break
            needed.append(_cstring(f, offset(struct.unpack_from("<I", desc, 12)[0])))
            pos += 20
    return BinaryInfo(kind="pe", soname=soname, needed=tuple(needed), bits=bits, machine=machine)
