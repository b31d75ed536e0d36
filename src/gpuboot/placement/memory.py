"""GPU memory at run time, from NVML: what a CUDA device has free, and whether a new job fits under a threshold.

NVML reads the driver's counters; no CUDA context is created and no GPU memory
is taken, so a server can call ``check_pressure()`` before admitting every job.
"""

from __future__ import annotations

from typing import Mapping, Optional

from .._gpus.device import Device
from .._gpus.nvml import discover
from ..base.record import Record
from ..machine.snapshot import current

__all__ = ["MemoryInfo", "memory_info", "MemoryPressure", "check_pressure", "DEFAULT_THRESHOLD", "MemoryCheck",
           "check_memory"]

#: Default pressure threshold: the fraction of a GPU's memory in use above which
#: new work is refused (what a TTS server seen in the field used: 85 %).
DEFAULT_THRESHOLD = 0.85


class MemoryInfo(Record):
    """Memory of one CUDA device, bytes.

    Attributes:
        gpu: the NVML ``Device`` (its ``cuda_ordinal`` is the one asked for).
        total, free: bytes, from NVML (memory info v2 where the driver has it).
        used: ``total - free``: what other processes and the driver's
            reservations hold.
    """

    gpu: Device
    total: int
    used: int
    free: int

    @property
    def used_fraction(self) -> float:
        """``used / total`` (0.0 for a device that reports no memory)."""
        return self.used / self.total if self.total else 0.0


def memory_info(cuda_ordinal: int = 0, *, environ: Optional[Mapping[str, str]] = None) -> MemoryInfo:
    """Total, used and free memory of the GPU CUDA numbers ``cuda_ordinal`` in
    this process (``CUDA_VISIBLE_DEVICES`` applied; not the NVML index).

    Args:
        cuda_ordinal: as for ``torch.device("cuda", i)`` / ``WhisperModel(device_index=i)``.
        environ: where ``CUDA_VISIBLE_DEVICES`` is read (default ``os.environ``).

    Raises:
        LookupError: no visible GPU has that ordinal (no driver, hidden, or
            out of range); the message says which GPUs are visible.
    """
    inv = discover(environ=environ)
    for d in inv.visible:
        if d.cuda_ordinal == cuda_ordinal:
            return MemoryInfo(gpu=d, total=d.total_memory, used=max(0, d.total_memory - d.free_memory),
                              free=d.free_memory)
    seen = ", ".join(f"cuda:{d.cuda_ordinal}" for d in inv.visible) or "none"
    why = f" ({inv.error})" if inv.error else ""
    raise LookupError(f"no visible GPU has CUDA ordinal {cuda_ordinal}; visible: {seen}{why}")


class MemoryPressure(Record):
    """``check_pressure`` result; true when the job may be admitted.

    Attributes:
        ok: the device stays at or under ``threshold`` with ``need_bytes`` more in use.
        used_fraction: the fraction in use now.
        threshold: the limit asked for.
        info: the ``MemoryInfo`` read (``None`` when the device could not be read).
        reason: one sentence with the numbers.
    """

    ok: bool
    used_fraction: float
    threshold: float
    info: Optional[MemoryInfo]
    reason: str

    def __bool__(self) -> bool:
        return self.ok


def check_pressure(cuda_ordinal: int = 0, *, threshold: float = DEFAULT_THRESHOLD, need_bytes: int = 0,
                   environ: Optional[Mapping[str, str]] = None) -> MemoryPressure:
    """May a job that needs ``need_bytes`` more start on this GPU without
    pushing it past ``threshold`` of its memory?  Reads NVML, never CUDA.

    A device that cannot be read (no driver, hidden) is not admitted, and the
    reason says why.

    Raises:
        ValueError: ``threshold`` outside (0, 1] or ``need_bytes`` negative.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], not {threshold}")
    if need_bytes < 0:
        raise ValueError(f"need_bytes must be >= 0, not {need_bytes}")
    try:
        info = memory_info(cuda_ordinal, environ=environ)
    except LookupError as exc:
        return MemoryPressure(ok=False, used_fraction=1.0, threshold=threshold, info=None, reason=str(exc))
    after = (info.used + need_bytes) / info.total if info.total else 1.0
    ok = after <= threshold
    verb = "admit" if ok else "refuse"
    reason = (f"{verb}: cuda:{cuda_ordinal} {info.used / 2**30:.2f} of {info.total / 2**30:.2f} GiB in use "
              f"({info.used_fraction:.0%})" + (f", {after:.0%} with {need_bytes / 2**30:.2f} GiB more" if need_bytes
                                                else "") + f"; threshold {threshold:.0%}")
    return MemoryPressure(ok=ok, used_fraction=info.used_fraction, threshold=threshold, info=info, reason=reason)


# --------------------------------------------------------------------------- will it fit


class MemoryCheck(Record):
    """``check_memory`` result; true when it fits."""

    ok: bool
    required_bytes: int
    free_bytes: int
    reason: str

    def __bool__(self) -> bool:
        return self.ok


def check_memory(required_bytes: int, device: Optional[Device]) -> MemoryCheck:
    """Whether ``required_bytes`` fits in ``device``'s free memory (``None``:
    the CPU's available RAM).  The result is truthy when it fits and says why.

    Raises:
        ValueError: ``required_bytes`` is negative.
    """
    if required_bytes < 0:
        raise ValueError(f"required_bytes must be >= 0, not {required_bytes}")
    free = device.free_memory if device is not None else current().ram
    where = device.describe() if device is not None else "CPU RAM"
    ok = required_bytes <= free
    verb = "fits in" if ok else "does not fit in"
    return MemoryCheck(ok=ok, required_bytes=required_bytes, free_bytes=free,
                       reason=f"{required_bytes / 2**30:.2f} GiB {verb} {free / 2**30:.2f} GiB free ({where})")
