"""The comparisons, as pure functions over records: gpuboot's answer against another layer's.

Every function returns the disagreements as one line each (an empty list:
they agree).  The values have the shapes the layers give them: NVML's
``GPU-xxxxxxxx-...`` UUIDs, torch's ``_CUuuid`` text without the prefix, the
CUDA runtime's 16 raw bytes (``cudaDeviceProp.uuid``, through CuPy), bytes in
``int``; so tests feed real-shaped values and a disagreement is detected the
way it would be on a GPU machine.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

#: Memory figures from two layers may differ by this fraction (of the larger total) and still agree: NVML's total
#: counts memory the driver reserves that ``cudaMemGetInfo`` does not (about 0.6 % of an 80 GB H100), and a
#: context made between the two readings takes a few hundred MiB.
MEMORY_TOLERANCE = 0.01

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def normalise_uuid(value: Union[str, bytes, None]) -> str:
    """A GPU's UUID as NVML prints it (``GPU-5f3c2b9e-8d41-4a7c-9e0b-2d6f1a4c7e91``), lower case.

    Accepts NVML's text, torch's ``str(props.uuid)`` (no ``GPU-`` prefix), the CUDA runtime's 16 raw bytes, or 32
    hex digits; a ``MIG-`` UUID keeps its prefix.  ``""`` for ``None`` or an empty value."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 16:
            return "GPU-?" + bytes(value).hex()
        value = bytes(value).hex()
    text = value.strip().lower()
    if not text:
        return ""
    prefix = ""
    for p in ("gpu-", "mig-"):
        if text.startswith(p):
            prefix, text = p.upper(), text[len(p):]
            break
    if _HEX32.match(text):
        text = f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return (prefix or "GPU-") + text


@dataclass(frozen=True)
class DeviceView:
    """One GPU as one layer reports it, at one CUDA ordinal.

    Attributes:
        ordinal: the CUDA ordinal (torch's ``cuda:i``), for NVML the ordinal gpuboot gave it.
        name: the marketing name (``"NVIDIA H100 80GB HBM3"``).
        cc: compute capability ``(major, minor)``.
        uuid: as ``normalise_uuid`` writes it, or ``""`` when the layer did not say.
        total, free: bytes, or ``None`` when the layer did not say.
    """

    ordinal: int
    name: str
    cc: Tuple[int, int]
    uuid: str = ""
    total: Optional[int] = None
    free: Optional[int] = None


def _close(a: int, b: int, scale: int, tolerance: float) -> bool:
    return abs(a - b) <= tolerance * scale


def compare_devices(reference: Sequence[DeviceView], other: Sequence[DeviceView], *, ours: str = "gpuboot (NVML)",
                    theirs: str = "torch", tolerance: float = MEMORY_TOLERANCE) -> List[str]:
    """Count, then per CUDA ordinal: name, compute capability, UUID (the ordinal mapping), total memory within
    ``tolerance`` of the larger total, free memory within ``tolerance`` of the total."""
    problems: List[str] = []
    if len(reference) != len(other):
        problems.append(f"device count: {ours} {len(reference)} vs {theirs} {len(other)}")
    for a, b in zip(sorted(reference, key=lambda d: d.ordinal), sorted(other, key=lambda d: d.ordinal)):
        at = f"cuda:{a.ordinal}"
        if a.ordinal != b.ordinal:
            problems.append(f"{at}: {theirs} numbers it cuda:{b.ordinal}")
        if a.name.strip() != b.name.strip():
            problems.append(f"{at} name: {ours} {a.name!r} vs {theirs} {b.name!r}")
        if tuple(a.cc) != tuple(b.cc):
            problems.append(f"{at} compute capability: {ours} {a.cc[0]}.{a.cc[1]} vs {theirs} {b.cc[0]}.{b.cc[1]}")
        if a.uuid and b.uuid and a.uuid != b.uuid:
            problems.append(f"{at} UUID: {ours} {a.uuid} vs {theirs} {b.uuid} (the CUDA ordinal mapping is wrong)")
        if a.total is not None and b.total is not None:
            scale = max(a.total, b.total)
            if not _close(a.total, b.total, scale, tolerance):
                problems.append(f"{at} total memory: {ours} {a.total} vs {theirs} {b.total} bytes "
                                f"(more than {tolerance:.0%} apart)")
            if a.free is not None and b.free is not None and not _close(a.free, b.free, scale, tolerance):
                problems.append(f"{at} free memory: {ours} {a.free} vs {theirs} {b.free} bytes "
                                f"(more than {tolerance:.0%} of the total apart)")
    return problems


# --------------------------------------------------------------------------- CUDA_VISIBLE_DEVICES


@dataclass(frozen=True)
class VisibleShape:
    """One ``CUDA_VISIBLE_DEVICES`` value to try, and what CUDA's documented rules make of it.

    Attributes:
        label: what the shape is (``"a UUID prefix"``).
        value: the variable's value given the GPUs CUDA enumerates with it unset (their UUIDs in ordinal
            order), or ``None`` for unset.
        expect: the UUIDs CUDA then enumerates, in ordinal order, or ``None`` where the documented rules do not
            say (then only CUDA's own answer is compared).
        applies: whether the shape means anything on this machine (``"1"`` needs no second GPU to be
            hidden, MIG names need MIG instances).
    """

    label: str
    value: Callable[[Sequence[str]], Optional[str]]
    expect: Callable[[Sequence[str]], Optional[List[str]]]
    applies: Callable[[Sequence[str]], bool] = lambda gpus: True


def unique_prefix(uuid: str, others: Sequence[str]) -> str:
    """The shortest prefix of ``uuid`` longer than ``GPU-`` plus 4 hex digits that no other UUID starts with."""
    for n in range(len("GPU-") + 4, len(uuid) + 1):
        if not any(o != uuid and o.startswith(uuid[:n]) for o in others):
            return uuid[:n]
    return uuid


#: The shapes, CUDA C++ Programming Guide "CUDA Environment Variables" (integers and UUIDs, unique prefixes, the
#: first invalid entry ends the list); a repeated device leaves none (torch ``_parse_visible_devices``, nvitop).
VISIBLE_SHAPES: Tuple[VisibleShape, ...] = (
    VisibleShape("unset", lambda g: None, lambda g: list(g)),
    VisibleShape("empty", lambda g: "", lambda g: []),
    VisibleShape("-1", lambda g: "-1", lambda g: []),
    VisibleShape("0", lambda g: "0", lambda g: list(g[:1])),
    VisibleShape("0,0 (repeated)", lambda g: "0,0", lambda g: []),
    VisibleShape("1", lambda g: "1", lambda g: list(g[1:2])),
    VisibleShape("the last ordinal", lambda g: str(len(g) - 1), lambda g: list(g[-1:])),
    VisibleShape("one past the last", lambda g: str(len(g)), lambda g: []),
    VisibleShape("the full UUID", lambda g: g[0], lambda g: list(g[:1]), lambda g: bool(g)),
    VisibleShape("a UUID prefix", lambda g: unique_prefix(g[0], g), lambda g: list(g[:1]), lambda g: bool(g)),
    VisibleShape("GPU-bad", lambda g: "GPU-bad", lambda g: []),
    VisibleShape("0,bad", lambda g: "0,bad", lambda g: list(g[:1])),
    VisibleShape("0,-1,1 (an invalid entry ends the list)", lambda g: "0,-1,1", lambda g: list(g[:1])),
    VisibleShape("the last first", lambda g: ",".join(str(i) for i in reversed(range(len(g)))),
                 lambda g: list(reversed(g)), lambda g: len(g) > 1),
    VisibleShape("a UUID then an ordinal", lambda g: f"{g[-1]},0", lambda g: None, lambda g: bool(g)),
)


def mig_shapes(migs: Sequence[Tuple[str, str, int, int]]) -> Tuple[VisibleShape, ...]:
    """Shapes naming MIG instances, for ``(MIG uuid, parent GPU uuid, GPU instance, compute instance)`` each:
    ``MIG-<uuid>`` and ``MIG-<GPU-uuid>/<gi>/<ci>`` select that instance alone."""
    if not migs:
        return ()
    mig, parent, gi, ci = migs[0]  # CUDA enumerates one MIG instance per process: one is enough
    named = f"MIG-{parent}/{gi}/{ci}"
    return (VisibleShape("a MIG UUID", lambda g: mig, lambda g: [mig]),
            VisibleShape("MIG-<GPU UUID>/<GI>/<CI>", lambda g: named, lambda g: [mig]))


def compare_visible(label: str, value: Optional[str], expect: Optional[Sequence[str]], gpuboot: Sequence[str],
                    cuda: Optional[Sequence[str]], torch_count: Optional[int] = None) -> List[str]:
    """gpuboot's visible list for one shape against CUDA's (``None``: CUDA could not be asked) and against the
    documented rules; CUDA against the rules too (a wrong rule is gpuboot's to fix)."""
    shown = "unset" if value is None else repr(value)
    problems: List[str] = []
    if cuda is not None and list(gpuboot) != list(cuda):
        problems.append(f"CUDA_VISIBLE_DEVICES={shown} ({label}): gpuboot {list(gpuboot)} vs CUDA {list(cuda)}")
    if cuda is not None and expect is not None and list(cuda) != list(expect):
        problems.append(f"CUDA_VISIBLE_DEVICES={shown} ({label}): CUDA {list(cuda)} vs the documented rules "
                        f"{list(expect)}")
    if cuda is None and expect is not None and list(gpuboot) != list(expect):
        problems.append(f"CUDA_VISIBLE_DEVICES={shown} ({label}): gpuboot {list(gpuboot)} vs the documented rules "
                        f"{list(expect)}")
    if torch_count is not None and cuda is not None and torch_count != len(cuda):
        problems.append(f"CUDA_VISIBLE_DEVICES={shown} ({label}): torch.cuda.device_count() {torch_count} vs "
                        f"CUDA {len(cuda)}")
    return problems


# --------------------------------------------------------------------------- loading


_SONAME_KEY = re.compile(r"^(lib[A-Za-z0-9_+-]+?\.so\.\d+)")
_NVIDIA_PREFIXES = ("libcu", "libnv", "libnccl", "libnpp", "libcudnn")


def mapped_nvidia(maps_paths: Sequence[str]) -> Dict[str, List[str]]:
    """NVIDIA libraries among a process's mapped files: soname-like name (``libcublas.so.13``) -> the distinct real
    paths mapped under it.  The wheels ship soname-named files, so the file name up to its major is the name a
    load by name asks for."""
    out: Dict[str, List[str]] = {}
    for path in maps_paths:
        m = _SONAME_KEY.match(os.path.basename(path))
        if m and m.group(1).startswith(_NVIDIA_PREFIXES):
            paths = out.setdefault(m.group(1), [])
            if path not in paths:
                paths.append(path)
    return out


@dataclass(frozen=True)
class Preloaded:
    """One library ``ensure()`` preloaded: the file it chose and the file the process has mapped for that name."""

    filename: str
    path: str
    loaded_path: Optional[str]
    error: Optional[str] = None


def compare_loading(preloaded: Sequence[Preloaded], maps_paths: Sequence[str],
                    realpath: Callable[[str], str] = os.path.realpath) -> List[str]:
    """What ``ensure()`` preloaded against ``/proc/self/maps``: each library loaded, mapped once, from the file
    gpuboot chose (so every later load by name -- torch's too -- gets that copy)."""
    problems: List[str] = []
    mapped = mapped_nvidia(maps_paths)
    for key, paths in sorted(mapped.items()):
        if len(paths) > 1:
            problems.append(f"{key} is mapped {len(paths)} times: {', '.join(paths)}")
    real = {realpath(p) for p in maps_paths}
    for lib in preloaded:
        if lib.error:
            problems.append(f"ensure() could not load {lib.path}: {lib.error}")
            continue
        if lib.loaded_path is None or realpath(lib.loaded_path) not in real:
            problems.append(f"ensure() reports {lib.filename} loaded, but /proc/self/maps has no "
                            f"{lib.loaded_path or lib.path}")
        elif realpath(lib.loaded_path) != realpath(lib.path):
            problems.append(f"{lib.filename}: gpuboot chose {lib.path}, the process maps {lib.loaded_path}")
    return problems


# --------------------------------------------------------------------------- GPU code, choice, memory


def compare_code(consumer: str, verdict: str, ran: Optional[bool], error: str = "") -> List[str]:
    """gpuboot's verdict for a consumer's GPU code (``"native"``, ``"jit"``, ``"none"``) against what happened when
    its kernel was launched (``ran``: ``None`` when it was not launched)."""
    if ran is None:
        return []
    if verdict in ("native", "jit") and not ran:
        return [f"{consumer}: gpuboot says its code runs ({verdict}), but its kernel failed: {error}"]
    if verdict == "none" and ran:
        return [f"{consumer}: gpuboot says its code cannot run on this GPU, but its kernel ran"]
    return []


def compare_choice(torch_dtype: str, compute_types: Mapping[str, str], bf16_supported: Optional[bool],
                   ct2_supported: Optional[Sequence[str]]) -> List[str]:
    """``select_device()``'s precisions against torch's ``is_bf16_supported()`` and CTranslate2's own
    ``get_supported_compute_types("cuda")`` (``compute_types``: ``prefer`` -> the type chosen)."""
    problems: List[str] = []
    if bf16_supported is not None and (torch_dtype == "bfloat16") != bf16_supported:
        problems.append(f"torch_dtype {torch_dtype} vs torch.cuda.is_bf16_supported() {bf16_supported}")
    if ct2_supported is not None:
        for prefer, ctype in compute_types.items():
            if ctype not in ct2_supported:
                problems.append(f"prefer={prefer}: gpuboot chose compute_type {ctype}, which CTranslate2 does not "
                                f"support here ({sorted(ct2_supported)})")
    return problems


@dataclass(frozen=True)
class MemoryReading:
    """One GPU's memory, bytes: gpuboot's ``memory_info()``/``check_pressure()`` and torch's ``mem_get_info()``,
    read while ``allocated`` bytes were held (``before_used``: gpuboot's used figure before the allocation)."""

    total: int
    free: int
    torch_total: int
    torch_free: int
    used_fraction: float
    allocated: int
    before_used: int


def compare_memory(m: MemoryReading, tolerance: float = MEMORY_TOLERANCE) -> List[str]:
    """gpuboot's memory figures against torch's, and the allocation seen by gpuboot."""
    problems: List[str] = []
    scale = max(m.total, m.torch_total)
    if not _close(m.total, m.torch_total, scale, tolerance):
        problems.append(f"total: memory_info {m.total} vs torch.cuda.mem_get_info {m.torch_total} bytes")
    if not _close(m.free, m.torch_free, scale, tolerance):
        problems.append(f"free: memory_info {m.free} vs torch.cuda.mem_get_info {m.torch_free} bytes "
                        f"(with {m.allocated / 2**30:.1f} GiB allocated)")
    torch_used = (m.torch_total - m.torch_free) / m.torch_total if m.torch_total else 0.0
    if abs(m.used_fraction - torch_used) > tolerance:
        problems.append(f"check_pressure used_fraction {m.used_fraction:.3f} vs torch's {torch_used:.3f}")
    grew = (m.total - m.free) - m.before_used
    if grew < m.allocated * (1 - tolerance):
        problems.append(f"memory_info's used memory grew by {grew} bytes while {m.allocated} were allocated")
    return problems


def safe_name(text: str) -> str:
    """A file-name part from a GPU's name: ``"NVIDIA H100 80GB HBM3"`` -> ``"nvidia-h100-80gb-hbm3"``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "gpu"
