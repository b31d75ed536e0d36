"""The GPU code a binary carries: its fatbin entries (cubin or PTX, target architecture, PTX ISA), never loaded.

``nvcc`` puts a module's device code in a *fatbin*: an ELF section
``.nv_fatbin`` (``__nv_relfatbin`` for relocatable device code) on Linux, a PE
section ``.nv_fatb`` on Windows (PE image section names are cut to eight
characters).  The section is a run of containers; each container is a
16-byte header (magic ``0xBA55ED50``, version 1, header size, size of what
follows) and then entries, each a header (kind, header size, payload size,
code version, target architecture, flags) followed by its payload.  The layout
below was read off fatbins that ``nvcc`` 13.0 built with chosen ``-gencode``
targets and off the ctranslate2 4.8.5 wheel, and every field gpuboot uses is
checked against ``cuobjdump`` (the ``nvidia-cuda-cuobjdump`` wheel) in
``tests/test_fatbin.py``:

=======  ====  =========================================================
offset   size  field
=======  ====  =========================================================
0        2     kind: 1 PTX, 2 cubin (ELF)
4        4     entry header size (64; 80 or 112 for CUDA 13's longer headers)
8        8     payload size (padded to 8 bytes)
20       2     code version, minor (PTX ISA minor; cubin ABI minor)
22       2     code version, major (PTX ISA major; cubin ABI major)
24       4     target: ``sm_86`` is 86, ``sm_100`` is 100
40       8     flags: 0x2000 compressed (LZ4, CUDA <= 12), 0x8000 compressed
               (ZSTD, CUDA 13), 0x100000 arch-specific target (``sm_90a``),
               0x200000 family-specific target (``sm_100f``)
=======  ====  =========================================================

Only headers are read, through a read-only memory map: the payloads (the
kernels themselves, most of the section) are skipped, never decompressed.
Results are cached per (device, inode, size, mtime).
"""

from __future__ import annotations

import mmap
import os
import struct
from typing import Dict, FrozenSet, List, Literal, Optional, Tuple

from ..base.record import Record
from .layout import elf, pe

__all__ = ["GpuCode", "Module", "Fatbin", "read_fatbin", "FATBIN_SECTIONS"]

#: Where fatbins live: ELF section names (Linux) and PE section names (Windows, cut to 8 characters).
FATBIN_SECTIONS: Dict[str, Tuple[str, ...]] = {"elf": (".nv_fatbin", "__nv_relfatbin"), "pe": (".nv_fatb",)}

_MAGIC = 0xBA55ED50
_KINDS = {1: "ptx", 2: "cubin"}
_COMPRESSED = 0x2000 | 0x8000
_ARCH_SPECIFIC = 0x100000
_FAMILY_SPECIFIC = 0x200000
_ENTRY = struct.Struct("<HHIQIIHHIIIQ")  # the first 48 bytes of an entry header
_CONTAINER = struct.Struct("<IHHQ")


class GpuCode(Record):
    """One kind of GPU code a binary carries.

    Attributes:
        kind: ``"cubin"`` (machine code for one architecture) or ``"ptx"``
            (virtual code the driver JIT-compiles).
        target: the architecture number: 86 for ``sm_86`` / ``compute_86``,
            120 for ``sm_120``.
        suffix: ``"a"`` for an arch-specific target (``sm_90a``: that
            architecture only), ``"f"`` for a family-specific one (``sm_100f``:
            its major, minor at least this), else ``""``.
        version: the code version: the PTX ISA version for PTX (``(8, 7)``),
            the cubin ABI version for a cubin (``(1, 8)``).
        compressed: the payload is compressed (LZ4 or ZSTD).
        count: how many entries of this kind, target and version the binary holds.
    """

    kind: Literal["cubin", "ptx"]
    target: int
    suffix: str = ""
    version: Tuple[int, int] = (0, 0)
    compressed: bool = False
    count: int = 1

    @property
    def cc(self) -> Tuple[int, int]:
        """The compute capability the target names: ``sm_86`` is ``(8, 6)``, ``sm_120`` ``(12, 0)``."""
        return self.target // 10, self.target % 10

    @property
    def name(self) -> str:
        """``"sm_86"`` for a cubin, ``"compute_86"`` for PTX, with its suffix (``"sm_90a"``)."""
        return f"{'sm' if self.kind == 'cubin' else 'compute'}_{self.target}{self.suffix}"


class Module(Record):
    """The GPU code of one fatbin container (one compiled source file): a kernel in it runs on a GPU only
    through one of these entries.

    Attributes:
        code: its entries (``count`` 1 each).
        count: how many containers of the binary hold exactly these entries.
        kernels: ``False`` when it is known to hold no kernel: no PTX, and its first cubin is an uncompressed ELF
            with no ``.text.<kernel>`` section (the image ``nvcc -shared`` device-links, which nothing launches).
            Compressed cubins are not opened: they count as holding kernels.
    """

    code: Tuple[GpuCode, ...]
    count: int = 1
    kernels: bool = True

    @property
    def specific(self) -> bool:
        """Every entry is arch- or family-specific (``sm_90a``-only kernels): written for those GPUs alone,
        which a library calls only there."""
        return all(c.suffix for c in self.code)


class Fatbin(Record):
    """What the fatbins of one binary hold.

    Attributes:
        path: the file read.
        code: each distinct (kind, target, suffix, version), cubins first, by target.
        modules: each distinct set of entries one container holds, most common first.
        containers: fatbin containers found.
        entries: entries found (cubin and PTX; other kinds are skipped).
        malformed: the section ended in something that is not a container; what came before is reported.
    """

    path: str
    code: Tuple[GpuCode, ...] = ()
    modules: Tuple[Module, ...] = ()
    containers: int = 0
    entries: int = 0
    malformed: bool = False

    @property
    def cubins(self) -> Tuple[GpuCode, ...]:
        return tuple(c for c in self.code if c.kind == "cubin")

    @property
    def ptx(self) -> Tuple[GpuCode, ...]:
        return tuple(c for c in self.code if c.kind == "ptx")

    def describe(self) -> str:
        """``"cubins sm_53, sm_60, sm_86; PTX compute_86 (ISA 8.7)"``, or ``"no GPU code"``."""
        parts = []
        if self.cubins:
            parts.append("cubins " + ", ".join(dict.fromkeys(c.name for c in self.cubins)))
        if self.ptx:
            parts.append("PTX " + ", ".join(f"{c.name} (ISA {c.version[0]}.{c.version[1]})" for c in self.ptx))
        return "; ".join(parts) or "no GPU code"


_CACHE: Dict[Tuple[int, int, int, int], Optional[Fatbin]] = {}


def read_fatbin(path: os.PathLike[str] | str) -> Optional[Fatbin]:
    """The GPU code in the ELF or PE file at ``path``: a ``Fatbin`` (empty
    ``code`` when the file has no fatbin section), or ``None`` when the file
    is neither ELF nor PE, is truncated, or cannot be read.  Never raises for
    what the file holds; costs one read-only map and the entry headers."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _CACHE:
        return _CACHE[key]
    result: Optional[Fatbin]
    try:
        with open(path, "rb") as f:
            if st.st_size < 64:
                result = None
            else:
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                    result = _read(m, os.fspath(path))
    except (OSError, ValueError, struct.error, OverflowError):
        result = None
    if len(_CACHE) > 1024:
        _CACHE.clear()
    _CACHE[key] = result
    return result


def _read(m: mmap.mmap, path: str) -> Optional[Fatbin]:
    if m[:4] == b"\x7fELF":
        sections = _elf_sections(m)
        wanted = FATBIN_SECTIONS["elf"]
    elif m[:2] == b"MZ":
        layout = pe(m)
        sections = [(s.name, s.offset, s.size) for s in layout.sections] if layout is not None else None
        wanted = FATBIN_SECTIONS["pe"]
    elif m[:4] == _CONTAINER.pack(_MAGIC, 1, 16, 0)[:4]:  # a bare fatbin file (nvcc -fatbin)
        sections, wanted = [("", 0, len(m))], ("",)
    else:
        return None
    if sections is None:
        return None
    found: Dict[_Key, int] = {}
    modules: Dict[_ModuleKey, int] = {}
    containers = entries = 0
    malformed = False
    for name, offset, size in sections:
        if name not in wanted:
            continue
        c, e, bad = _walk(m, offset, min(offset + size, len(m)), found, modules)
        containers, entries, malformed = containers + c, entries + e, malformed or bad
    mods = [Module(code=_codes({k: 1 for k in keys}), count=n, kernels=kernels)
            for (keys, kernels), n in modules.items()]
    mods.sort(key=lambda mod: -mod.count)
    return Fatbin(path=path, code=_codes(found), modules=tuple(mods), containers=containers, entries=entries,
                  malformed=malformed)


def _codes(found: Dict[_Key, int]) -> Tuple[GpuCode, ...]:
    code = [GpuCode(kind="cubin" if kind == "cubin" else "ptx", target=target, suffix=suffix, version=version,
                    compressed=compressed, count=n) for (kind, target, suffix, version, compressed), n in found.items()]
    code.sort(key=lambda c: (c.kind != "cubin", c.target, c.suffix, c.version))
    return tuple(code)


_Key = Tuple[str, int, str, Tuple[int, int], bool]
_ModuleKey = Tuple[FrozenSet[_Key], bool]


def _has_kernels(m: mmap.mmap, start: int, size: int) -> bool:
    """An uncompressed cubin (an ELF64) at ``m[start:start+size]`` has a ``.text.<kernel>`` section; ``True`` when
    it cannot be told (compressed, or not a readable ELF)."""
    if size < 64 or m[start:start + 4] != b"\x7fELF" or m[start + 4] != 2:
        return True
    shoff = struct.unpack_from("<Q", m, start + 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", m, start + 0x3A)
    if shentsize < 64 or not shnum or shstrndx >= shnum or shoff + shnum * shentsize > size:
        return True
    strtab = struct.unpack_from("<Q", m, start + shoff + shstrndx * shentsize + 24)[0]
    for i in range(shnum):
        name = struct.unpack_from("<I", m, start + shoff + i * shentsize)[0]
        at = start + strtab + name
        if strtab + name + 6 <= size and m[at:at + 6] == b".text.":
            return True
    return False


def _walk(m: mmap.mmap, pos: int, end: int, found: Dict[_Key, int],
          modules: Dict[_ModuleKey, int]) -> Tuple[int, int, bool]:
    """Count the entries of the containers in ``m[pos:end]`` into ``found`` and each container's set of entries
    into ``modules``; (containers, entries, malformed)."""
    containers = entries = 0
    while pos + _CONTAINER.size <= end:
        magic, _version, header, size = _CONTAINER.unpack_from(m, pos)
        if magic == 0:  # padding between containers
            pos += 8
            continue
        if magic != _MAGIC or header < _CONTAINER.size or pos + header + size > end:
            return containers, entries, True
        containers += 1
        at, stop = pos + header, pos + header + size
        keys = set()
        kernels: Optional[bool] = None
        while at + _ENTRY.size <= stop:
            (kind, _v, head, payload, _csize, _x, minor, major, target, _no, _nl, flags) = _ENTRY.unpack_from(m, at)
            if head < 64 or at + head + payload > stop:
                return containers, entries, True
            name = _KINDS.get(kind)
            if name is not None:
                suffix = "a" if flags & _ARCH_SPECIFIC else ("f" if flags & _FAMILY_SPECIFIC else "")
                k = (name, target, suffix, (major, minor), bool(flags & _COMPRESSED))
                found[k] = found.get(k, 0) + 1
                keys.add(k)
                entries += 1
                if kernels is None and name == "cubin":
                    kernels = bool(flags & _COMPRESSED) or _has_kernels(m, at + head, payload)
                elif name == "ptx":
                    kernels = True
            at += head + payload
        if keys:
            mkey = (frozenset(keys), kernels is not False)
            modules[mkey] = modules.get(mkey, 0) + 1
        pos = stop
    return containers, entries, False


def _elf_sections(m: mmap.mmap) -> Optional[List[Tuple[str, int, int]]]:
    """(name, file offset, size) of each section of a little-endian ELF64 file (what CUDA ships for), or
    ``None``."""
    header = elf(m)
    if header is None or header.bits != 64 or header.order != "<" or not header.shoff or header.shentsize < 64:
        return None
    return [(s.name, s.offset, s.size) for s in header.sections(m) if s.type != 8]  # SHT_NOBITS: not in the file
