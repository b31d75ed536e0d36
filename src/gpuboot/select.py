"""Choose the device and precision an expert would choose.

``select_device()`` picks a GPU among those CUDA will see (``devices.py``),
or MPS, or the CPU, and the precision for torch (``torch_dtype``) and for
CTranslate2 (``compute_type``), each rule with its source:

torch dtype
    * bfloat16 from CC 8.0 (Ampere): bf16 tensor cores (CUDA C Programming
      Guide, "Arithmetic Instructions" throughput table; NVIDIA A100 whitepaper).
    * float16 from CC 7.0 (Volta tensor cores) and on CC 6.0 / 6.2 (full-rate
      fp16: P100, Jetson TX2).
    * float32 on CC 6.1 (GTX 10xx: fp16 runs at 1/64 of the fp32 rate, same
      throughput table) and older.

CTranslate2 ``compute_type`` (CTranslate2 src/cuda/utils.cc, src/types.cc)
    * int8 needs CC > 6.0 or CC == 6.1 (dp4a); efficient float16 needs fp16
      tensor cores, CC >= 7.0; bfloat16 needs CC >= 8.0.
    * ``auto``: float16 where efficient -- the released Whisper weights are
      float16 (Systran's conversions are saved in float16), so nothing is
      lost -- else int8 (CC 6.1), else float32.
    * ``speed`` / ``memory``: int8_float16 where efficient (CTranslate2's own
      ``auto`` puts it first: int8 weights halve memory vs float16), else
      int8, else float32.
    * ``accuracy``: no int8 quantization: float16 (bfloat16 is not chosen:
      CTranslate2's ``auto`` never picks it and Whisper was trained in fp16),
      else float32.
    * Quirks: CC 12.0 (RTX 50xx) with ctranslate2 < 4.7 fails int8 GEMMs
      (CTranslate2 #1865, fixed #1982): no int8 there.  GTX 16xx (TU116/TU117,
      CC 7.5 without tensor cores) give garbage "!" output in float16
      (whisper-diarization #327): int8 instead.
    * Reconciled with ``ctranslate2.get_supported_compute_types("cuda", i)``
      when ctranslate2 imports and the call succeeds (it raises without a
      driver).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Mapping, Optional, Set, Tuple

from .devices import Device, Inventory, discover

__all__ = ["DeviceChoice", "select_device", "torch_dtype_for", "compute_type_for", "cpu_threads",
           "DeviceAssigner", "MemoryCheck", "check_memory", "recommend_whisper_model", "WHISPER_MEMORY",
           "PREFERENCES", "worker_rank"]

PREFERENCES = ("auto", "speed", "accuracy", "memory")


@dataclass(frozen=True)
class DeviceChoice:
    """The chosen device and precisions.

    Attributes:
        kind: ``"cuda"``, ``"mps"`` or ``"cpu"``.
        cuda_ordinal: the CUDA ordinal (``torch.device("cuda", i)``,
            ``WhisperModel(device_index=i)``), ``None`` unless ``kind="cuda"``.
        device: the NVML ``Device`` chosen, ``None`` unless ``kind="cuda"``.
        torch_dtype: ``"bfloat16"``, ``"float16"`` or ``"float32"``.
        compute_type: the CTranslate2 compute type (CTranslate2 has no MPS:
            on a Mac it is a CPU type).
        ct2_device: ``"cuda"`` or ``"cpu"``: where CTranslate2 should run.
        cpu_threads: CPUs this process may use (affinity and cgroup quota).
        reason: why, in one sentence.
        candidates: the visible GPUs considered, CUDA ordinal order.
        warnings: e.g. the ``CUDA_DEVICE_ORDER`` ambiguity.
    """

    kind: str
    cuda_ordinal: Optional[int]
    device: Optional[Device]
    torch_dtype: str
    compute_type: str
    ct2_device: str
    cpu_threads: int
    reason: str
    candidates: Tuple[Device, ...] = ()
    warnings: Tuple[str, ...] = ()
    driver_cuda_version: Optional[Tuple[int, int]] = None

    @property
    def torch_device(self) -> str:
        """``"cuda:1"``, ``"mps"`` or ``"cpu"``."""
        return f"cuda:{self.cuda_ordinal}" if self.kind == "cuda" else self.kind


# --------------------------------------------------------------------------- precision rules


def _is_gtx16(device: Device) -> bool:
    """GTX 16xx (TU116/TU117): CC 7.5 but no tensor cores."""
    return bool(re.search(r"GTX\s*16\d\d", device.name, re.IGNORECASE)) or bool(
        re.search(r"\bTU11[67]\b", device.name))


def torch_dtype_for(cc: Tuple[int, int], prefer: str = "auto") -> str:
    """torch dtype for compute capability ``cc`` (rules in the module doc).
    ``prefer="accuracy"`` always gives float32."""
    if prefer == "accuracy":
        return "float32"
    if cc >= (8, 0):
        return "bfloat16"
    if cc >= (7, 0) or cc in ((6, 0), (6, 2)):
        return "float16"
    return "float32"


def _ct2_capabilities(device: Device, ct2_version: Optional[str]) -> Tuple[bool, bool, bool, List[str]]:
    """(int8, float16, bfloat16) support by CTranslate2's rules and quirks, with notes."""
    cc = device.compute_capability
    notes: List[str] = []
    int8 = cc > (6, 0) or cc == (6, 1)
    fp16 = cc >= (7, 0)
    bf16 = cc >= (8, 0)
    if cc[0] == 12 and ct2_version is not None and _version_lt(ct2_version, "4.7"):
        int8 = False
        notes.append(f"no int8: ctranslate2 {ct2_version} < 4.7 fails int8 GEMMs on CC 12.0 "
                     "(CTranslate2 #1865, fixed in #1982)")
    if _is_gtx16(device):
        fp16 = False
        notes.append("no float16: GTX 16xx (no tensor cores) gives garbage output in float16 "
                     "(whisper-diarization #327)")
    return int8, fp16, bf16, notes


def _version_lt(a: str, b: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) < Version(b)
    except InvalidVersion:
        return False


def compute_type_for(device: Optional[Device], prefer: str = "auto", *, ct2_version: Optional[str] = None,
                     supported: Optional[Set[str]] = None) -> Tuple[str, str]:
    """CTranslate2 compute type for ``device`` (``None``: the CPU) and the reason.

    ``supported``, when given, is what ``ctranslate2.get_supported_compute_types``
    returned; the choice falls back along the same order until it is in it.
    """
    if device is None:
        chain = ["float32"] if prefer == "accuracy" else ["int8", "int8_float32", "float32"]
        why = ("float32: no quantization asked" if prefer == "accuracy" else
               "int8: CTranslate2's fastest CPU type (faster-whisper README: int8 1.54x faster than "
               "float32 for small on an i7-12700K)")
    else:
        int8, fp16, _bf16, notes = _ct2_capabilities(device, ct2_version)
        chain = []
        if prefer in ("speed", "memory"):
            if int8 and fp16:
                chain.append("int8_float16")
            if int8:
                chain.append("int8")
            if fp16:
                chain.append("float16")
        elif prefer == "accuracy":
            if fp16:
                chain.append("float16")
        else:  # auto
            if fp16:
                chain.append("float16")
            if int8:
                chain.append("int8")
        chain.append("float32")
        cc = f"CC {device.compute_capability[0]}.{device.compute_capability[1]}"
        first = chain[0]
        why = {
            "float16": f"float16: {cc} has fp16 tensor cores and Whisper's released weights are float16",
            "int8_float16": f"int8_float16: {cc}, int8 weights with fp16 compute (fastest, least memory)",
            "int8": f"int8: {cc} has int8 (dp4a) but no efficient float16",
            "float32": f"float32: {cc} has neither efficient float16 nor int8",
        }[first]
        if notes:
            why += "; " + "; ".join(notes)
    if supported is not None:
        for ctype in chain:
            if ctype in supported:
                if ctype != chain[0]:
                    why += f"; {chain[0]} not in ctranslate2's supported types, using {ctype}"
                return ctype, why
        fallback = "float32" if "float32" in supported or not supported else sorted(supported)[0]
        return fallback, why + f"; none preferred is supported, using {fallback}"
    return chain[0], why


# --------------------------------------------------------------------------- CPUs


def cpu_threads(*, cgroup_root: str = "/sys/fs/cgroup") -> int:
    """CPUs this process may use: its affinity mask (``taskset``, Docker
    ``--cpuset-cpus``) capped by the cgroup v2 CPU quota (Docker ``--cpus``)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        with open(os.path.join(cgroup_root, "cpu.max")) as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(int(quota) / int(period) + 0.5)))
    except (OSError, ValueError):
        pass
    return max(1, n)


# --------------------------------------------------------------------------- workers


def worker_rank(worker: Optional[int] = None, environ: Optional[Mapping[str, str]] = None) -> Optional[int]:
    """The worker's rank: ``worker`` if given, else ``LOCAL_RANK`` (torchrun)
    when it is a non-negative integer, else ``None``.

    Raises:
        ValueError: ``worker`` is negative.
    """
    if worker is not None:
        if worker < 0:
            raise ValueError(f"worker must be >= 0, not {worker}")
        return worker
    env = os.environ if environ is None else environ
    raw = env.get("LOCAL_RANK", "").strip(" \t\n\r")
    # ASCII digits only: str.isdigit() is also true for '²' and other digits int() refuses.
    return int(raw) if re.fullmatch(r"[0-9]{1,9}", raw) else None


class DeviceAssigner:
    """Hands out visible GPUs round-robin to the workers of one process (a
    server's worker pool).  Thread-safe: concurrent ``next()`` calls get
    consecutive slots, so N workers over G GPUs differ by at most one."""

    def __init__(self, select: Optional[Callable[..., DeviceChoice]] = None, **select_kwargs: Any) -> None:
        self._select = select or select_device
        self._kwargs = select_kwargs
        self._lock = threading.Lock()
        self._next = 0

    def next(self) -> DeviceChoice:
        with self._lock:
            slot = self._next
            self._next += 1
        return self._select(worker=slot, **self._kwargs)


# --------------------------------------------------------------------------- selection


def _mps_available() -> bool:
    if sys.platform != "darwin":
        return False
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.backends.mps.is_available())


def _ct2_version() -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version("ctranslate2")
    except metadata.PackageNotFoundError:
        return None


def _ct2_supported(ordinal: int) -> Optional[Set[str]]:
    import importlib.util

    if importlib.util.find_spec("ctranslate2") is None:
        return None
    try:
        import ctranslate2

        # Without a usable CUDA device the first call raises, and later calls in
        # the same process answer {"float32"} (ctranslate2 4.8.5): only a device
        # that CUDA counts has a meaningful answer.
        if ctranslate2.get_cuda_device_count() <= ordinal:
            return None
        return set(ctranslate2.get_supported_compute_types("cuda", ordinal))
    except Exception:  # raises RuntimeError without a driver or CUDA device
        return None


def _rank(d: Device) -> Tuple[int, int, Tuple[int, int]]:
    """Best GPU first: tensor cores (CC >= 7.0), then free memory, then CC."""
    return (1 if d.compute_capability >= (7, 0) and not _is_gtx16(d) else 0, d.free_memory, d.compute_capability)


def select_device(*, min_free_bytes: Optional[int] = None, prefer: str = "auto", worker: Optional[int] = None,
                  inventory: Optional[Inventory] = None, nvml: Any = None,
                  environ: Optional[Mapping[str, str]] = None, reconcile: bool = True,
                  ct2_version: Optional[str] = None) -> DeviceChoice:
    """Choose the device and precisions for this process.

    Among the GPUs CUDA will see (``CUDA_VISIBLE_DEVICES`` applied -- Ray sets
    it per worker, so a Ray task gets its own GPU with no special code), the
    best by tensor cores, free memory and compute capability; with a worker
    rank (``worker`` or ``LOCAL_RANK``) the GPU at ``rank % len(visible)``
    in CUDA ordinal order instead, so that every worker computes the same
    assignment.  Then MPS (torch on Apple silicon), then the CPU.

    Args:
        min_free_bytes: skip GPUs with less free memory (bytes).
        prefer: ``"auto"``, ``"speed"``, ``"accuracy"`` or ``"memory"``.
        worker: this worker's rank (``>= 0``).
        inventory, nvml, environ: stand-ins for discovery (tests).
        reconcile: check the CTranslate2 type with
            ``ctranslate2.get_supported_compute_types`` where possible.
        ct2_version: override the installed ctranslate2 version (tests).

    Returns:
        A ``DeviceChoice``.  Never raises for a missing GPU or driver.

    Raises:
        ValueError: unknown ``prefer``, negative ``worker`` or
            ``min_free_bytes``.
    """
    if prefer not in PREFERENCES:
        raise ValueError(f"prefer must be one of {', '.join(PREFERENCES)}, not {prefer!r}")
    if min_free_bytes is not None and min_free_bytes < 0:
        raise ValueError(f"min_free_bytes must be >= 0, not {min_free_bytes}")
    env = os.environ if environ is None else environ
    rank = worker_rank(worker, env)
    inv = inventory if inventory is not None else discover(nvml=nvml, environ=env)
    threads = cpu_threads()
    visible = list(inv.visible)
    warnings = list(inv.warnings)
    usable = [d for d in visible if min_free_bytes is None or d.free_memory >= min_free_bytes]
    if ct2_version is None:
        ct2_version = _ct2_version()

    if usable:
        if rank is not None:
            chosen = usable[rank % len(usable)]
            why = f"worker {rank} of round-robin over {len(usable)} visible GPU(s)"
        else:
            chosen = max(usable, key=_rank)
            why = (f"best of {len(usable)} visible GPU(s) by tensor cores, free memory and CC"
                   if len(usable) > 1 else "the only visible GPU")
        assert chosen.cuda_ordinal is not None
        supported = _ct2_supported(chosen.cuda_ordinal) if reconcile else None
        ctype, ct_why = compute_type_for(chosen, prefer, ct2_version=ct2_version, supported=supported)
        dtype = torch_dtype_for(chosen.compute_capability, prefer)
        reason = f"CUDA {chosen.describe()}: {why}; CTranslate2 {ct_why}; torch {dtype}"
        return DeviceChoice("cuda", chosen.cuda_ordinal, chosen, dtype, ctype, "cuda", threads, reason,
                            tuple(visible), tuple(warnings), inv.cuda_driver_version)

    if visible and min_free_bytes is not None:
        gpu_why = (f"no visible GPU has {min_free_bytes / 2**30:.1f} GiB free (best: "
                   f"{max(d.free_memory for d in visible) / 2**30:.1f} GiB)")
    elif inv.devices and not visible:
        gpu_why = f"CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES')!r} hides every GPU"
    elif inv.error:
        gpu_why = f"no usable GPU ({inv.error})"
    else:
        gpu_why = "no GPU found"
    ctype, ct_why = compute_type_for(None, prefer)
    if _mps_available():
        return DeviceChoice("mps", None, None, "float32" if prefer == "accuracy" else "float16", ctype, "cpu",
                            threads, f"MPS (Apple GPU): {gpu_why}; CTranslate2 has no MPS backend, so "
                            f"Whisper runs on the CPU: {ct_why}", tuple(visible), tuple(warnings),
                            inv.cuda_driver_version)
    return DeviceChoice("cpu", None, None, "float32", ctype, "cpu", threads,
                        f"CPU ({threads} threads): {gpu_why}; {ct_why}", tuple(visible), tuple(warnings),
                        inv.cuda_driver_version)


# --------------------------------------------------------------------------- memory

MiB = 2**20

#: Peak memory of faster-whisper, bytes, by model and precision, with the source.
#: GPU figures: faster-whisper README benchmarks (13 min of audio, beam 5,
#: RTX 3070 Ti 8 GB) and faster-whisper issue #1030 (large-v3, large-v3-turbo,
#: distil-large-v3).  No measured CTranslate2 figure exists for tiny/base/
#: small/medium on a GPU: openai-whisper's README "Required VRAM" (PyTorch,
#: float16) is used as an upper bound there.  CPU: the README's small on CPU
#: (i7-12700K, 8 threads).
WHISPER_MEMORY: Tuple[Tuple[str, str, int, str], ...] = (
    ("large-v3", "float16", 4521 * MiB, "faster-whisper issue #1030"),
    ("large-v3", "int8", 2953 * MiB, "faster-whisper issue #1030"),
    ("large-v2", "float16", 4525 * MiB, "faster-whisper README (GPU benchmark)"),
    ("large-v2", "int8", 2926 * MiB, "faster-whisper README (GPU benchmark)"),
    ("large-v3-turbo", "float16", 2537 * MiB, "faster-whisper issue #1030"),
    ("distil-large-v3", "float16", 2409 * MiB, "faster-whisper issue #1030"),
    ("distil-large-v3", "int8", 1481 * MiB, "faster-whisper issue #1030"),
    ("medium", "float16", 5 * 1024 * MiB, "openai-whisper README 'Required VRAM' (upper bound)"),
    ("small", "float16", 2 * 1024 * MiB, "openai-whisper README 'Required VRAM' (upper bound)"),
    ("small", "float32", 2257 * MiB, "faster-whisper README (CPU benchmark)"),
    ("small", "int8", 1477 * MiB, "faster-whisper README (CPU benchmark)"),
    ("base", "float16", 1024 * MiB, "openai-whisper README 'Required VRAM' (upper bound)"),
    ("tiny", "float16", 1024 * MiB, "openai-whisper README 'Required VRAM' (upper bound)"),
)
#: Best first: quality order of the models above (large-v3 is the most accurate).
WHISPER_ORDER: Tuple[str, ...] = ("large-v3", "large-v2", "large-v3-turbo", "distil-large-v3", "medium", "small",
                                  "base", "tiny")
#: Free memory kept back beyond the measured peak: 20 % (other allocations,
#: fragmentation, longer audio than the benchmark).
HEADROOM = 1.2
#: Largest model recommended on a CPU: the README benchmarks only small there.
CPU_MAX_MODEL = "small"


@dataclass(frozen=True)
class MemoryCheck:
    """``check_memory`` result; true when it fits."""

    ok: bool
    required_bytes: int
    free_bytes: int
    reason: str

    def __bool__(self) -> bool:
        return self.ok


def _available_ram() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def check_memory(required_bytes: int, device: Optional[Device]) -> MemoryCheck:
    """Whether ``required_bytes`` fits in ``device``'s free memory (``None``:
    the CPU's available RAM).  The result is truthy when it fits and says why.

    Raises:
        ValueError: ``required_bytes`` is negative.
    """
    if required_bytes < 0:
        raise ValueError(f"required_bytes must be >= 0, not {required_bytes}")
    free = device.free_memory if device is not None else _available_ram()
    where = device.describe() if device is not None else "CPU RAM"
    ok = required_bytes <= free
    verb = "fits in" if ok else "does not fit in"
    return MemoryCheck(ok, required_bytes, free,
                       f"{required_bytes / 2**30:.2f} GiB {verb} {free / 2**30:.2f} GiB free ({where})")


def _need(model: str, compute_type: str) -> Optional[Tuple[int, str]]:
    precision = "int8" if compute_type.startswith("int8") else compute_type
    if precision == "bfloat16":
        precision = "float16"
    rows = {(m, p): (b, s) for m, p, b, s in WHISPER_MEMORY}
    if (model, precision) in rows:
        return rows[(model, precision)]
    if (model, "float16") in rows:  # int8 needs less than float16: a safe upper bound
        return rows[(model, "float16")]
    return None


def recommend_whisper_model(choice: DeviceChoice, *, headroom: float = HEADROOM,
                            free_bytes: Optional[int] = None) -> str:
    """The most accurate Whisper model whose measured peak memory, times
    ``headroom``, fits the chosen device's free memory (CPU: available RAM,
    and at most ``small``).  Falls back to ``"tiny"``.

    Args:
        choice: from ``select_device``.
        headroom: factor over the measured peak (default 1.2).
        free_bytes: override the free memory (tests).
    """
    on_gpu = choice.kind == "cuda" and choice.device is not None
    if free_bytes is None:
        free_bytes = choice.device.free_memory if on_gpu and choice.device is not None else _available_ram()
    models: Iterable[str] = WHISPER_ORDER
    if not on_gpu:
        models = WHISPER_ORDER[WHISPER_ORDER.index(CPU_MAX_MODEL):]
    for model in models:
        need = _need(model, choice.compute_type)
        if need is not None and need[0] * headroom <= free_bytes:
            return model
    return "tiny"

