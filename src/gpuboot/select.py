"""Device placement: the GPU (or MPS, or CPU) this process or worker should use, and the precisions for it.

``select_device()`` picks a GPU among those CUDA will see (``_gpus/nvml.discover``), or MPS, or the CPU, on
the current ``Machine`` snapshot; the consumers whose GPU code decides it are the rows with ``placement``
(``placement/reasons.py``), the precision rules are ``_gpus/precision.py``'s and the Whisper memory table is
``whisper/model_memory.py``'s.
"""

from __future__ import annotations

import re
import sys
import threading
from typing import Any, Literal, Mapping, Optional, Tuple

from ._gpus.device import Device
from ._gpus.precision import ComputeType, Ct2Device, TorchDtype, compute_type_for, lacks_tensor_cores, torch_dtype_for
from .base.record import Record
from .machine.snapshot import current
from .placement.reasons import (
    chooser,
    compute_type_row,
    cuda_verdict,
    driver_cause,
    driver_too_old,
    gpu_code,
    probe_cuda,
    quirks_avoided,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List

    from ._code.consumers import ConsumerCode
    from ._gpus.device import Inventory
    from .machine.probe import DriverProbe
    from .machine.snapshot import Machine

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
        gpu: the NVML ``Device`` chosen, ``None`` unless ``kind="cuda"``.
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
    env = current().environ if environ is None else environ
    raw = env.get("LOCAL_RANK", "").strip(" \t\n\r")
    # ASCII digits only: str.isdigit() is also true for '²' and other digits int() refuses.
    return int(raw) if re.fullmatch(r"[0-9]{1,9}", raw) else None


class DeviceAssigner:
    """Hands out visible GPUs round-robin to the workers of one process (a
    server's worker pool).  Thread-safe: concurrent ``next()`` calls get
    consecutive slots, so N workers over G GPUs differ by at most one."""

    def __init__(self, **select_kwargs: Any) -> None:
        """``select_kwargs``: what every ``select_device`` call takes (``prefer``, ``min_free_bytes``, ...)."""
        self._kwargs = select_kwargs
        self._lock = threading.Lock()
        self._next = 0

    def next(self) -> DeviceChoice:
        with self._lock:
            slot = self._next
            self._next += 1
        return select_device(worker=slot, **self._kwargs)


# --------------------------------------------------------------------------- selection


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
    skipped, and so are GPUs an installed consumer's GPU code cannot run on.
    The CTranslate2 type is checked with ``ctranslate2.get_supported_compute_types``
    where ctranslate2 is installed (the machine's ``ask_consumers``).  The machine is
    ``machine.snapshot.current()``.

    Args:
        min_free_bytes: skip GPUs with less free memory (bytes).
        prefer: ``"auto"``, ``"speed"``, ``"accuracy"`` or ``"memory"``.
        worker: this worker's rank (``>= 0``).
        cuda_ordinal: use the visible GPU with this CUDA ordinal; the
            precision rules run for that GPU.
        environ: where ``CUDA_VISIBLE_DEVICES``, ``CUDA_DEVICE_ORDER`` and
            ``LOCAL_RANK`` are read, and the environment the driver is asked in (default ``os.environ``).

    Returns:
        A ``DeviceChoice``.  Never raises for a missing GPU or driver.

    Raises:
        ValueError: unknown ``prefer``, negative ``worker`` or
            ``min_free_bytes``, or a ``cuda_ordinal`` no visible GPU has.
    """
    if prefer not in PREFERENCES:
        raise ValueError(f"prefer must be one of {', '.join(PREFERENCES)}, not {prefer!r}")
    if min_free_bytes is not None and min_free_bytes < 0:
        raise ValueError(f"min_free_bytes must be >= 0, not {min_free_bytes}")
    machine = current()
    if environ is not None and environ is not machine.environ:
        machine = machine.replace(environ=environ)
    rank = worker_rank(worker, machine.environ)
    from ._gpus.nvml import discover

    with machine.scope():
        inv = discover()
    visible = list(inv.visible)
    warnings = list(inv.warnings)
    probe = machine.probe if visible else None  # NVML lists GPUs: ask CUDA itself (cached; a child process)
    usable = _usable(visible, min_free_bytes, probe, cuda_ordinal, warnings)
    driver_cuda = inv.cuda_driver_version or probe_cuda(probe)
    codes = {d.cuda_ordinal: gpu_code(machine, d, driver_cuda) for d in usable}
    if usable and cuda_ordinal is None:
        usable = _runnable(usable, codes, warnings)
    if usable:
        return _on_gpu(machine, inv, usable, codes, rank, cuda_ordinal, prefer, warnings, driver_cuda)
    return _elsewhere(machine, inv, probe, min_free_bytes, prefer, warnings)


def _usable(visible: List[Device], min_free_bytes: Optional[int], probe: Optional[DriverProbe],
            cuda_ordinal: Optional[int], warnings: List[str]) -> List[Device]:
    """The visible GPUs with the free memory asked for that CUDA can make a context on (or the one asked for);
    none when NVML sees GPUs CUDA cannot use."""
    usable = [d for d in visible if min_free_bytes is None or d.free_memory >= min_free_bytes]
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
    if visible and cuda_verdict(probe) is not None:
        usable = []  # NVML sees GPUs, CUDA cannot use them: every CUDA consumer goes to the CPU
    return usable


def _runnable(usable: List[Device], codes: Mapping[Optional[int], Tuple[ConsumerCode, ...]],
              warnings: List[str]) -> List[Device]:
    """The GPUs every installed placement consumer's code runs on, when some are and some are not."""
    runnable = [d for d in usable if all(c.runs for c in codes[d.cuda_ordinal])]
    if not runnable or len(runnable) == len(usable):
        return usable
    skipped = [d for d in usable if d not in runnable]
    warnings.append("not chosen, a consumer cannot run there: " + "; ".join(
        c.line() for d in skipped for c in codes[d.cuda_ordinal] if not c.runs))
    return runnable


def _on_gpu(machine: Machine, inv: Inventory, usable: List[Device],
            codes: Mapping[Optional[int], Tuple[ConsumerCode, ...]], rank: Optional[int],
            cuda_ordinal: Optional[int], prefer: Preference, warnings: List[str],
            driver_cuda: Optional[Tuple[int, int]]) -> DeviceChoice:
    if cuda_ordinal is not None:
        chosen, why = usable[0], f"CUDA ordinal {cuda_ordinal} as asked"
    elif rank is not None:
        chosen, why = usable[rank % len(usable)], f"worker {rank} of round-robin over {len(usable)} visible GPU(s)"
    else:
        chosen = max(usable, key=_rank)
        why = (f"best of {len(usable)} visible GPU(s) by tensor cores, free memory and CC"
               if len(usable) > 1 else "the only visible GPU")
    assert chosen.cuda_ordinal is not None
    code = codes.get(chosen.cuda_ordinal, ())
    warnings += [c.line() for c in code if c.verdict.kind == "jit"]
    torch_code = chooser(code, "torch_dtype")
    torch_runs = torch_code is None or torch_code.runs
    dtype = torch_dtype_for(chosen.compute_capability, prefer) if torch_runs else "float32"
    torch_why = f"torch {dtype}" if torch_runs else f"torch on the CPU: {torch_code.line()}"  # type: ignore[union-attr]
    ct2_code = chooser(code, "compute_type")
    too_old = driver_too_old(machine, driver_cuda) or (
        ct2_code.line() if ct2_code is not None and not ct2_code.runs else None)
    common = dict(kind="cuda", cuda_ordinal=chosen.cuda_ordinal, gpu=chosen, torch_dtype=dtype,
                  cpu_threads=machine.cpu_threads, candidates=tuple(inv.visible),
                  driver_cuda_version=inv.cuda_driver_version, gpu_code=code, torch_runs=torch_runs)
    if too_old:
        ctype, ct_why = compute_type_for(None, prefer)
        return DeviceChoice(compute_type=ctype, ct2_device="cpu", warnings=(*warnings, too_old),
                            reason=f"CUDA {chosen.describe()}: {why}; CTranslate2 on the CPU: {too_old}; {ct_why}; "
                                   f"{torch_why}", **common)  # type: ignore[arg-type]
    row = compute_type_row()
    supported = (row.compute_types(chosen.cuda_ordinal)
                 if row is not None and row.compute_types is not None and machine.ask_consumers else None)
    ctype, ct_why = compute_type_for(chosen, prefer, avoid=quirks_avoided(machine, chosen), supported=supported,
                                     environ=machine.environ)
    return DeviceChoice(compute_type=ctype, ct2_device="cuda", warnings=tuple(warnings),
                        reason=f"CUDA {chosen.describe()}: {why}; CTranslate2 {ct_why}; {torch_why}",
                        **common)  # type: ignore[arg-type]


def _elsewhere(machine: Machine, inv: Inventory, probe: Optional[DriverProbe], min_free_bytes: Optional[int],
               prefer: Preference, warnings: List[str]) -> DeviceChoice:
    """MPS or the CPU, and why no GPU."""
    visible = list(inv.visible)
    env = machine.environ
    cuda_says = cuda_verdict(probe) if visible else None
    if cuda_says is not None:
        gpu_why = f"NVML answers, CUDA does not: {cuda_says}"
    elif visible and probe is not None and probe.answered and probe.unavailable_ordinals:
        gpu_why = f"no visible GPU is available to this process ({warnings[-1]})"
    elif visible and min_free_bytes is not None:
        gpu_why = (f"no visible GPU has {min_free_bytes / 2**30:.1f} GiB free (best: "
                   f"{max(d.free_memory for d in visible) / 2**30:.1f} GiB)")
    elif inv.devices and not visible:
        gpu_why = f"CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES')!r} hides every GPU"
    elif inv.error:
        gpu_why = f"no usable GPU ({driver_cause(machine, inv.error)})"
    else:
        gpu_why = "no GPU found"
    ctype, ct_why = compute_type_for(None, prefer)
    threads = machine.cpu_threads
    if sys.platform == "darwin" and any(row.apple_gpu() for row in _placement_rows() if row.apple_gpu):
        return DeviceChoice(kind="mps", cuda_ordinal=None, gpu=None,
                            torch_dtype="float32" if prefer == "accuracy" else "float16", compute_type=ctype,
                            ct2_device="cpu", cpu_threads=threads,
                            reason=f"MPS (Apple GPU): {gpu_why}; CTranslate2 has no MPS backend, so "
                            f"Whisper runs on the CPU: {ct_why}", candidates=tuple(visible), warnings=tuple(warnings),
                            driver_cuda_version=inv.cuda_driver_version)
    return DeviceChoice(kind="cpu", cuda_ordinal=None, gpu=None, torch_dtype="float32", compute_type=ctype,
                        ct2_device="cpu", cpu_threads=threads,
                        reason=f"CPU ({threads} threads): {gpu_why}; {ct_why}", candidates=tuple(visible),
                        warnings=tuple(warnings), driver_cuda_version=inv.cuda_driver_version)


def _placement_rows() -> Tuple[Any, ...]:
    from .consumers.table import CONSUMER_TABLE

    return tuple(row for row in CONSUMER_TABLE if row.placement)
