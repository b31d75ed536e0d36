"""Device placement: the GPU (or MPS, or CPU) this process or worker should use, and the precisions for it.

``select_device()`` picks a GPU among those CUDA will see (``devices.py``),
or MPS, or the CPU; the precision rules are ``_precision.py``'s and the
Whisper memory table is ``_whisper_memory.py``'s.
"""

from __future__ import annotations

import re
import sys
import threading
from typing import Any, Callable, Literal, Mapping, Optional, Tuple

from ._gpus import precision as _precision
from ._gpus.device import Device, Inventory
from ._gpus.nvml import _discover
from ._gpus.precision import (
    ComputeType,
    Ct2Device,
    TorchDtype,
    compute_type_for,
    ct2_supported,
    lacks_tensor_cores,
    torch_dtype_for,
)
from .base.record import Record
from .machine import snapshot as _host
from .placement.reasons import cuda_verdict, driver_cause, driver_too_old, gpu_code, probe_cuda

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .machine.driver import DriverInfo

__all__ = ["DeviceChoice", "select_device", "DeviceAssigner", "PREFERENCES", "Preference", "DeviceKind",
           "worker_rank"]

#: What ``select_device(prefer=)`` optimises for.
Preference = Literal["auto", "speed", "accuracy", "memory"]
PREFERENCES: Tuple[Preference, ...] = ("auto", "speed", "accuracy", "memory")
#: A torch device type: where the chosen device is.
DeviceKind = Literal["cuda", "mps", "cpu"]


class DeviceChoice(Record):
    """The chosen device and precisions.

    Attributes:
        kind: ``"cuda"``, ``"mps"`` or ``"cpu"``.
        cuda_ordinal: the CUDA ordinal (``torch.device("cuda", i)``,
            ``WhisperModel(device_index=i)``), ``None`` unless ``kind="cuda"``.
        gpu: the NVML ``Device`` chosen, ``None`` unless ``kind="cuda"``
            (``device`` is its deprecated spelling).
        torch_dtype: ``"bfloat16"``, ``"float16"`` or ``"float32"``.
        compute_type: the CTranslate2 compute type (CTranslate2 has no MPS:
            on a Mac it is a CPU type).
        ct2_device: ``"cuda"`` or ``"cpu"``: where CTranslate2 should run.
        cpu_threads: CPUs this process may use (affinity and cgroup quota).
        reason: why, in one sentence.
        candidates: the visible GPUs considered, CUDA ordinal order.
        warnings: e.g. the ``CUDA_DEVICE_ORDER`` ambiguity, or a consumer that
            reaches the GPU only through a JIT compile of PTX.
        driver_cuda_version: the highest CUDA version the driver supports, when known.
        gpu_code: for the chosen GPU, each installed consumer's GPU code judged
            (``ConsumerCode``: native, JIT or none, read from its binaries'
            fatbins); ``()`` on the CPU.
        torch_runs: torch (when installed) carries code this GPU runs; when it
            does not, ``torch_device`` is ``"cpu"``.
    """

    kind: DeviceKind
    cuda_ordinal: Optional[int]
    gpu: Optional[Device]
    torch_dtype: TorchDtype
    compute_type: ComputeType
    ct2_device: Ct2Device
    cpu_threads: int
    reason: str
    candidates: Tuple[Device, ...] = ()
    warnings: Tuple[str, ...] = ()
    driver_cuda_version: Optional[Tuple[int, int]] = None
    gpu_code: Tuple[Any, ...] = ()
    torch_runs: bool = True

    @property
    def torch_device(self) -> str:
        """``"cuda:1"``, ``"mps"`` or ``"cpu"`` (also ``"cpu"`` on a GPU torch's build carries no code for)."""
        if self.kind == "cuda":
            return f"cuda:{self.cuda_ordinal}" if self.torch_runs else "cpu"
        return self.kind


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
    env = _host.environ() if environ is None else environ
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


def _rank(d: Device) -> Tuple[int, int, Tuple[int, int]]:
    """Best GPU first: tensor cores (CC >= 7.0), then free memory, then CC."""
    tensor_cores = d.compute_capability >= (7, 0) and not lacks_tensor_cores(d)
    return (1 if tensor_cores else 0, d.free_memory, d.compute_capability)


def select_device(*, min_free_bytes: Optional[int] = None, prefer: Preference = "auto",
                  worker: Optional[int] = None, cuda_ordinal: Optional[int] = None,
                  environ: Optional[Mapping[str, str]] = None) -> DeviceChoice:
    """Choose the device and precisions for this process.

    Among the GPUs CUDA will see (``CUDA_VISIBLE_DEVICES`` applied -- Ray sets
    it per worker, so a Ray task gets its own GPU with no special code), the
    best by tensor cores, free memory and compute capability; with a worker
    rank (``worker`` or ``LOCAL_RANK``) the GPU at ``rank % len(visible)``
    in CUDA ordinal order instead, so that every worker computes the same
    assignment.  Then MPS (torch on Apple silicon), then the CPU.

    A GPU is chosen only when CUDA itself answered: whenever NVML lists a
    visible GPU, the driver probe is asked (once per process, a child process
    of ~60 ms; ``cuInit`` 0 with a GPU counted).  When NVML answers and CUDA
    does not, every CUDA consumer goes to the CPU and the reason names the
    broken layer and its fix, as ``gpuboot doctor`` does; GPUs a context
    cannot be made on (exclusive-process mode, held by another process) are
    skipped.  The CTranslate2 type is checked with
    ``ctranslate2.get_supported_compute_types`` where ctranslate2 is installed.

    Args:
        min_free_bytes: skip GPUs with less free memory (bytes).
        prefer: ``"auto"``, ``"speed"``, ``"accuracy"`` or ``"memory"``.
        worker: this worker's rank (``>= 0``).
        cuda_ordinal: use the visible GPU with this CUDA ordinal; the
            precision rules run for that GPU.
        environ: where ``CUDA_VISIBLE_DEVICES``, ``CUDA_DEVICE_ORDER`` and
            ``LOCAL_RANK`` are read (default ``os.environ``).

    Returns:
        A ``DeviceChoice``.  Never raises for a missing GPU or driver.

    Raises:
        ValueError: unknown ``prefer``, negative ``worker`` or
            ``min_free_bytes``, or a ``cuda_ordinal`` no visible GPU has.
    """
    return _select(min_free_bytes=min_free_bytes, prefer=prefer, worker=worker, cuda_ordinal=cuda_ordinal,
                   environ=environ)


def _select(*, min_free_bytes: Optional[int] = None, prefer: Preference = "auto", worker: Optional[int] = None,
            cuda_ordinal: Optional[int] = None, environ: Optional[Mapping[str, str]] = None,
            inventory: Optional[Inventory] = None, reconcile: bool = True, ct2_version: Optional[str] = None,
            driver: Optional[DriverInfo] = None, probe: Any = None, cpu_threads: Optional[int] = None,
            binaries: Optional[Mapping[str, Any]] = None) -> DeviceChoice:
    """``select_device`` for gpuboot's own callers: ``inventory``, ``probe`` and ``cpu_threads`` already read
    (doctor's),
    ``reconcile=False`` (never import ctranslate2: doctor, workers), ``ct2_version`` known (``""``: none
    installed), the driver check ``ensure()`` made, the consumers' ``binaries`` already read (doctor's)."""
    if prefer not in PREFERENCES:
        raise ValueError(f"prefer must be one of {', '.join(PREFERENCES)}, not {prefer!r}")
    if min_free_bytes is not None and min_free_bytes < 0:
        raise ValueError(f"min_free_bytes must be >= 0, not {min_free_bytes}")
    env = _host.environ() if environ is None else environ
    rank = worker_rank(worker, env)
    inv = inventory if inventory is not None else _discover(environ=env, driver=driver)
    threads = _host.cpu_threads() if cpu_threads is None else cpu_threads
    visible = list(inv.visible)
    warnings = list(inv.warnings)
    usable = [d for d in visible if min_free_bytes is None or d.free_memory >= min_free_bytes]
    if ct2_version is None:
        ct2_version = _precision.ct2_version()
    ct2_version = ct2_version or None  # "": the caller knows none is installed
    real_nvml = _host.current().nvml is None  # a stand-in NVML is a simulated machine: its probe is the host's
    if probe is None and inventory is None and visible and (real_nvml or _host.current().probe is not None):
        from .machine.probe import probe_driver

        probe = probe_driver(environ=env)  # NVML lists GPUs: ask CUDA itself (cached; a child process)
    cuda_says = cuda_verdict(probe) if visible else None
    if probe is not None and probe.answered and probe.unavailable_ordinals:
        busy = set(probe.unavailable_ordinals)
        warnings.append("unavailable to new processes (CUDA_ERROR_DEVICE_UNAVAILABLE, 46): " +
                        ", ".join(f"cuda:{o}" for o in sorted(busy)))
        usable = [d for d in usable if d.cuda_ordinal not in busy]

    if cuda_ordinal is not None:
        wanted = [d for d in visible if d.cuda_ordinal == cuda_ordinal]
        if not wanted:
            seen = ", ".join(f"cuda:{d.cuda_ordinal}" for d in visible) or "none"
            raise ValueError(f"cuda_ordinal={cuda_ordinal}: no visible GPU has that CUDA ordinal (visible: {seen})")
        usable = wanted
    if cuda_says is not None:
        usable = []  # NVML sees GPUs, CUDA cannot use them: every CUDA consumer goes to the CPU
    driver_cuda = inv.cuda_driver_version or probe_cuda(probe)
    codes = {d.cuda_ordinal: gpu_code(d, driver_cuda, binaries) for d in usable}
    if usable and cuda_ordinal is None:
        runnable = [d for d in usable if all(c.runs for c in codes[d.cuda_ordinal])]
        if runnable and len(runnable) < len(usable):
            skipped = [d for d in usable if d not in runnable]
            warnings.append("not chosen, a consumer cannot run there: " + "; ".join(
                c.line() for d in skipped for c in codes[d.cuda_ordinal] if not c.runs))
            usable = runnable
    if usable:
        if cuda_ordinal is not None:
            chosen = usable[0]
            why = f"CUDA ordinal {cuda_ordinal} as asked"
        elif rank is not None:
            chosen = usable[rank % len(usable)]
            why = f"worker {rank} of round-robin over {len(usable)} visible GPU(s)"
        else:
            chosen = max(usable, key=_rank)
            why = (f"best of {len(usable)} visible GPU(s) by tensor cores, free memory and CC"
                   if len(usable) > 1 else "the only visible GPU")
        assert chosen.cuda_ordinal is not None
        code = codes.get(chosen.cuda_ordinal, ())
        by_name = {c.consumer: c for c in code}
        warnings += [c.line() for c in code if c.verdict.kind == "jit"]
        torch_code = by_name.get("torch")
        torch_runs = torch_code is None or torch_code.runs
        dtype = torch_dtype_for(chosen.compute_capability, prefer) if torch_runs else "float32"
        torch_why = f"torch {dtype}" if torch_runs else f"torch on the CPU: {torch_code.line()}"  # type: ignore[union-attr]
        ct2_code = by_name.get("ctranslate2")
        too_old = driver_too_old(driver_cuda, ct2_version) or (
            ct2_code.line() if ct2_code is not None and not ct2_code.runs else None)
        if too_old:
            ctype, ct_why = compute_type_for(None, prefer)
            reason = f"CUDA {chosen.describe()}: {why}; CTranslate2 on the CPU: {too_old}; {ct_why}; {torch_why}"
            return DeviceChoice(kind="cuda", cuda_ordinal=chosen.cuda_ordinal, gpu=chosen, torch_dtype=dtype,
                                compute_type=ctype, ct2_device="cpu", cpu_threads=threads, reason=reason,
                                candidates=tuple(visible), warnings=(*warnings, too_old),
                                driver_cuda_version=inv.cuda_driver_version, gpu_code=code, torch_runs=torch_runs)
        supported = ct2_supported(chosen.cuda_ordinal) if reconcile else None
        ctype, ct_why = compute_type_for(chosen, prefer, ct2_version=ct2_version, supported=supported,
                                         environ=env)
        reason = f"CUDA {chosen.describe()}: {why}; CTranslate2 {ct_why}; {torch_why}"
        return DeviceChoice(kind="cuda", cuda_ordinal=chosen.cuda_ordinal, gpu=chosen, torch_dtype=dtype,
                            compute_type=ctype, ct2_device="cuda", cpu_threads=threads, reason=reason,
                            candidates=tuple(visible), warnings=tuple(warnings),
                            driver_cuda_version=inv.cuda_driver_version, gpu_code=code, torch_runs=torch_runs)

    if cuda_says is not None:
        gpu_why = f"NVML answers, CUDA does not: {cuda_says}"
    elif visible and probe is not None and probe.answered and probe.unavailable_ordinals and not usable:
        gpu_why = f"no visible GPU is available to this process ({warnings[-1]})"
    elif visible and min_free_bytes is not None:
        gpu_why = (f"no visible GPU has {min_free_bytes / 2**30:.1f} GiB free (best: "
                   f"{max(d.free_memory for d in visible) / 2**30:.1f} GiB)")
    elif inv.devices and not visible:
        gpu_why = f"CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES')!r} hides every GPU"
    elif inv.error:
        asks = inventory is None and (real_nvml or _host.current().probe is not None)
        gpu_why = f"no usable GPU ({driver_cause(inv.error, probe, asks, env)})"
    else:
        gpu_why = "no GPU found"
    ctype, ct_why = compute_type_for(None, prefer)
    if _mps_available():
        return DeviceChoice(kind="mps", cuda_ordinal=None, gpu=None,
                            torch_dtype="float32" if prefer == "accuracy" else "float16", compute_type=ctype,
                            ct2_device="cpu",
                            cpu_threads=threads,
                            reason=f"MPS (Apple GPU): {gpu_why}; CTranslate2 has no MPS backend, so "
                            f"Whisper runs on the CPU: {ct_why}", candidates=tuple(visible), warnings=tuple(warnings),
                            driver_cuda_version=inv.cuda_driver_version)
    return DeviceChoice(kind="cpu", cuda_ordinal=None, gpu=None, torch_dtype="float32", compute_type=ctype,
                        ct2_device="cpu", cpu_threads=threads,
                        reason=f"CPU ({threads} threads): {gpu_why}; {ct_why}", candidates=tuple(visible),
                        warnings=tuple(warnings),
                        driver_cuda_version=inv.cuda_driver_version)
