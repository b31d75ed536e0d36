"""The layout of an ELF or PE file, read from its bytes (a file read where it is asked, or a memory map): the one
reader of binary structure that the names a binary carries (``names.py``) and its GPU code (``fatbin.py``) both
use.

ELF (System V ABI, "ELF Header", "Section Header", "Program Header", "Dynamic Section"): 32- and 64-bit, either
byte order.  PE (Microsoft "PE Format": the COFF header, the optional header's data directories, the section
table).  Every offset is checked against the file's size: a truncated or malformed file raises ``ValueError``
(or ``struct.error``), never reads past its end; the callers turn that into "not a binary".
"""

from __future__ import annotations

import os
import struct
from typing import Any, Iterator, List, Optional, Tuple

from ..base.record import Record

__all__ = ["Section", "Elf", "Pe", "FileImage", "open_image", "unpack", "elf", "pe", "cstring"]

#: A read-only view of a file's bytes: ``FileImage`` or a ``mmap`` (``fatbin.py`` maps the file it walks).
Image = Any


class FileImage:
    """The bytes of an open file read where they are asked (``len``, indexing, slices, ``find``), by seek and
    read: the few kilobytes of headers a library's names take, without mapping it (nor importing ``mmap``)."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self._size = os.fstat(f.fileno()).st_size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            start, stop, _ = key.indices(self._size)
            if stop <= start:
                return b""
            self._f.seek(start)
            return self._f.read(stop - start)
        data = self[key:key + 1] if key >= 0 else b""
        if not data:
            raise IndexError("image index out of range")
        return data[0]

    def find(self, sub: bytes, start: int, end: int) -> int:
        at = self[start:end].find(sub)
        return start + at if at >= 0 else -1

    def __enter__(self) -> FileImage:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class Section(Record):
    """One section: its name, file offset and size in the file (``type`` 8, ``SHT_NOBITS``: none in the file)."""

    name: str
    offset: int
    size: int
    type: int = 0


class Elf(Record):
    """An ELF file's header: 32 or 64 bits, byte order (``"<"``/``">"``), ``e_machine`` and where its tables are."""

    bits: int
    order: str
    machine: int
    phoff: int
    phentsize: int
    phnum: int
    shoff: int
    shentsize: int
    shnum: int
    shstrndx: int

    def segments(self, image: Image) -> Iterator[Tuple[int, int, int, int]]:
        """``(p_type, p_offset, p_vaddr, p_filesz)`` of each program header."""
        fmt = self.order + ("IIQQQQ" if self.bits == 64 else "IIIIII")
        for i in range(self.phnum if self.phoff and self.phnum <= 4096 else 0):
            entry = _slice(image, self.phoff + i * self.phentsize, struct.calcsize(fmt))
            if self.bits == 64:
                p_type, _flags, offset, vaddr, _paddr, filesz = struct.unpack(fmt, entry)
            else:
                p_type, offset, vaddr, _paddr, filesz, _memsz = struct.unpack(fmt, entry)
            yield p_type, offset, vaddr, filesz

    def sections(self, image: Image) -> List[Section]:
        """Every section, named from the section-name string table."""
        if not self.shoff or not self.shnum or self.shstrndx >= self.shnum:
            return []
        if self.shoff + self.shnum * self.shentsize > len(image):
            raise ValueError("section table past the end of the file")
        fmt = self.order + ("IIQQQQ" if self.bits == 64 else "IIIIII")
        heads = [struct.unpack(fmt, _slice(image, self.shoff + i * self.shentsize, struct.calcsize(fmt)))
                 for i in range(self.shnum)]
        strtab = heads[self.shstrndx][4]
        return [Section(name=_name(image, strtab + h[0]), offset=h[4], size=h[5], type=h[1]) for h in heads]

    def dynamic(self, image: Image) -> Tuple[List[Tuple[int, int]], Optional[int]]:
        """``(dynamic entries (tag, value), file offset of the dynamic string table or None)``, from
        ``PT_DYNAMIC`` and the ``PT_LOAD`` segment that maps ``DT_STRTAB``."""
        loads: List[Tuple[int, int, int]] = []
        dynamic: Optional[Tuple[int, int]] = None
        for p_type, offset, vaddr, filesz in self.segments(image):
            if p_type == 1:  # PT_LOAD
                loads.append((vaddr, offset, filesz))
            elif p_type == 2:  # PT_DYNAMIC
                dynamic = (offset, filesz)
        if dynamic is None:
            return [], None
        fmt = self.order + ("qQ" if self.bits == 64 else "iI")
        step = struct.calcsize(fmt)
        raw = _slice(image, dynamic[0], min(dynamic[1], 1 << 20, max(0, len(image) - dynamic[0])))
        entries: List[Tuple[int, int]] = []
        for pos in range(0, len(raw) - step + 1, step):
            tag, val = struct.unpack_from(fmt, raw, pos)
            if tag == 0:  # DT_NULL
                break
            entries.append((tag, val))
        strtab = next((v for t, v in entries if t == 5), None)  # DT_STRTAB, a virtual address
        base = None if strtab is None else next(
            (off + strtab - vaddr for vaddr, off, size in loads if vaddr <= strtab < vaddr + size), None)
        return entries, base


class Pe(Record):
    """A PE image's layout: its ``Machine``, 32 or 64 bits, the first data directories (export, import) as
    ``(rva, size)``, and its sections as ``(virtual address, size, file offset)`` and ``Section``s."""

    machine: int
    bits: int
    directories: Tuple[Tuple[int, int], ...]
    spans: Tuple[Tuple[int, int, int], ...]
    sections: Tuple[Section, ...]

    def offset(self, rva: int) -> int:
        """The file offset of a relative virtual address.

        Raises:
            ValueError: the address is in no section.
        """
        for vaddr, size, rawptr in self.spans:
            if vaddr <= rva < vaddr + size:
                return rva - vaddr + rawptr
        raise ValueError(f"RVA {rva:#x} is in no section")


def open_image(path: os.PathLike[str] | str) -> Tuple[Any, Image]:
    """``(file, its FileImage)`` of ``path`` (close both); ``ValueError`` for an empty file."""
    f = open(path, "rb")
    try:
        image = FileImage(f)
        if not len(image):
            raise ValueError("an empty file")
        return f, image
    except (OSError, ValueError):
        f.close()
        raise


def unpack(fmt: str, image: Image, offset: int) -> Tuple[Any, ...]:
    """``struct.unpack`` of ``fmt`` at ``offset`` of ``image``; ``ValueError`` past its end."""
    return struct.unpack(fmt, _slice(image, offset, struct.calcsize(fmt)))


def _slice(image: Image, start: int, size: int) -> bytes:
    if start < 0 or size < 0 or start + size > len(image):
        raise ValueError("read past the end of the file")
    return bytes(image[start:start + size])


def cstring(image: Image, offset: int, *, limit: int = 4096, errors: str = "strict") -> str:
    """The NUL-terminated string at ``offset`` (at most ``limit`` bytes).

    Raises:
        ValueError: no NUL within ``limit`` bytes, or not UTF-8 (with ``errors="strict"``).
    """
    end = image.find(b"\x00", offset, min(offset + limit, len(image)))
    if offset < 0 or offset >= len(image) or end < 0:
        raise ValueError("unterminated string")
    return bytes(image[offset:end]).decode("utf-8" if errors == "strict" else "ascii", errors)


def _name(image: Image, offset: int) -> str:
    """A section's name (``""`` where the string table has none there)."""
    try:
        return cstring(image, offset, limit=256, errors="replace")
    except ValueError:
        return ""


def elf(image: Image) -> Optional[Elf]:
    """The ELF header of ``image``, or ``None`` when it is not an ELF file (or too short for a header)."""
    if len(image) < 52 or image[:4] != b"\x7fELF":
        return None
    bits = {1: 32, 2: 64}.get(image[4])
    order = {1: "<", 2: ">"}.get(image[5])
    if bits is None or order is None:
        return None
    machine = unpack(order + "H", image, 18)[0]
    if bits == 64:
        if len(image) < 64:
            return None
        phoff, shoff = unpack(order + "QQ", image, 32)
        phentsize, phnum, shentsize, shnum, shstrndx = unpack(order + "HHHHH", image, 54)
    else:
        phoff, shoff = unpack(order + "II", image, 28)
        phentsize, phnum, shentsize, shnum, shstrndx = unpack(order + "HHHHH", image, 42)
    return Elf(bits=bits, order=order, machine=machine, phoff=phoff, phentsize=phentsize, phnum=phnum, shoff=shoff,
               shentsize=shentsize, shnum=shnum, shstrndx=shstrndx)


def pe(image: Image) -> Optional[Pe]:
    """The layout of the PE image ``image``, or ``None`` when it is not one."""
    if len(image) < 64 or image[:2] != b"MZ":
        return None
    lfanew = unpack("<I", image, 0x3C)[0]
    if lfanew + 24 > len(image) or image[lfanew:lfanew + 4] != b"PE\x00\x00":
        return None
    machine, nsections = unpack("<HH", image, lfanew + 4)
    opt_size = unpack("<H", image, lfanew + 20)[0]
    opt = lfanew + 24
    magic = unpack("<H", image, opt)[0] if opt_size >= 2 else 0
    if magic not in (0x20B, 0x10B):
        return None
    bits, dirs_at = (64, 112) if magic == 0x20B else (32, 96)
    ndirs = unpack("<I", image, opt + dirs_at - 4)[0]
    dirs = tuple(unpack("<II", image, opt + dirs_at + 8 * i) for i in range(min(ndirs, 2)))
    spans: List[Tuple[int, int, int]] = []
    sections: List[Section] = []
    table = opt + opt_size
    for i in range(nsections):
        at = table + 40 * i
        raw = _slice(image, at, 40)
        name = raw[:8].rstrip(b"\x00").decode("ascii", "replace")
        vsize, vaddr, rawsize, rawptr = struct.unpack_from("<IIII", raw, 8)
        spans.append((vaddr, max(vsize, rawsize), rawptr))
        sections.append(Section(name=name, offset=rawptr, size=min(vsize, rawsize) if vsize else rawsize))
    return Pe(machine=machine, bits=bits, directories=dirs, spans=tuple(spans), sections=tuple(sections))
