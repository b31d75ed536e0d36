"""``load_whisper``'s attempts: the plan (GPU in the chosen type, then int8, then the CPU), one attempt
constructed and verified, the trail of attempts and the causes of their failures, and ``WhisperLoad``, how the
model was got."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, List, Optional, Tuple, Union

from ..base.log import log
from ..base.record import Record
from ..errors import ModelLoadError

if TYPE_CHECKING:
    from ..machine.snapshot import Machine

__all__ = ["Attempt", "WhisperLoad", "Sizes", "plan_attempts", "verify", "attempt", "failure", "cuda_cause",
           "PROBE_SAMPLES"]

#: One second of audio at Whisper's 16 kHz sample rate.
PROBE_SAMPLES = 16000


class Attempt(Record):
    """One try at constructing and verifying the model."""

    device: str
    compute_type: str
    ok: bool
    error: Optional[str] = None
    elapsed_ms: float = 0.0
    cuda_ordinal: Optional[int] = None  # the CUDA ordinal tried; None on the CPU

    def describe(self) -> str:
        state = "ok" if self.ok else f"failed: {self.error}"
        return f"{self.device}/{self.compute_type} {state} ({self.elapsed_ms:.0f} ms)"


class WhisperLoad(Record):
    """How ``load_whisper`` got its model; read it with ``load_info(model)``.

    Attributes:
        model: the size name or directory that was loaded.
        device: ``"cuda"`` or ``"cpu"``.
        cuda_ordinal: the CUDA ordinal, ``None`` on the CPU (as ``select_device`` says).
        compute_type: the CTranslate2 compute type in use.
        reason: why this device and type were chosen.
        trail: every attempt in order, failures first.
        load_ms: construction time of the successful attempt, milliseconds.
        probe_ms: time of the verifying encode, milliseconds.
        batched: ``gpuboot.transcribe`` uses faster-whisper's
            ``BatchedInferencePipeline`` for this model.
        batch_size: its batch size (1 when not batched).
        cpu_threads, num_workers: what ``WhisperModel`` was given.
        throughput: why those (``throughput.plan_throughput``'s reason).
        source: the model directory loaded (a size name resolved in the cache).
        warnings: what the caller should know of a working choice: CTranslate2
            reaching this GPU only through a JIT compile of its PTX (slow first
            start), read from its binary's fatbin.
    """

    model: str
    device: str
    cuda_ordinal: Optional[int]
    compute_type: str
    reason: str
    trail: Tuple[Attempt, ...]
    load_ms: float
    probe_ms: float
    batched: bool = False
    batch_size: int = 1
    cpu_threads: int = 0
    num_workers: int = 1
    throughput: str = ""
    source: str = ""
    warnings: Tuple[str, ...] = ()


def plan_attempts(device: str, compute_type: str, choice: Any) -> Tuple[List[Tuple[str, str]], str]:
    """The attempts, in order, and the reason for the first one.

    ``choice`` is ``select_device()``'s ``DeviceChoice``: on a GPU its
    compute type first, then int8 (CTranslate2's int8 is int8_float32 on a
    GPU: no fp16 needed), then the CPU; ``device="cuda"`` never reaches the CPU.
    """
    gpu_first = choice.compute_type if choice.ct2_device == "cuda" else "float16"
    cpu_type = "int8" if compute_type == "auto" else compute_type
    if compute_type == "auto":
        gpu_types = [gpu_first] + (["int8"] if gpu_first not in ("int8", "float32") else [])
    else:
        gpu_types = [compute_type]
    gpu = [("cuda", t) for t in gpu_types]
    if device == "cpu":
        why = choice.reason if choice.ct2_device == "cpu" else "asked for device='cpu'"
        return [("cpu", cpu_type)], f"CPU {cpu_type}: {why}"
    if device == "cuda":
        return gpu, f"CUDA {gpu_types[0]}: asked for device='cuda'; {choice.reason}"
    if choice.ct2_device != "cuda":
        return [("cpu", cpu_type)], choice.reason
    return [*gpu, ("cpu", cpu_type)], choice.reason


def verify(model: Any) -> None:
    """Encode one second of silence: the first encode is where CTranslate2
    loads cuBLAS, so a missing library shows up here and not mid-request.

    The 1 s of features (100 frames) is encoded unpadded: CTranslate2 4.x
    accepts it and it runs the same GEMMs in ~1/7 of the time of the padded
    30 s window (44 vs 290 ms for tiny.en int8, measured on a 2-core x86-64 CPU).  Should a
    build refuse the short shape, the padded window decides.
    """
    import numpy as np
    from faster_whisper.audio import pad_or_trim

    features = model.feature_extractor(np.zeros(PROBE_SAMPLES, dtype=np.float32))
    try:
        model.encode(features)
    except Exception:  # retried below: the padded result is the verdict
        model.encode(pad_or_trim(features))


class Sizes(Record):
    """What the throughput plan of every attempt starts from."""

    model_bytes: int
    batched: Union[str, bool]
    batch_size: Union[str, int]
    streams: int
    ram: int


def attempt(model_class: Any, source: str, dev: str, ctype: str, ordinal: int, choice: Any, sizes: Sizes,
             kwargs: Any, trail: List[Attempt]) -> Any:
    """One attempt: construct and verify; the model, or ``None`` with the failure in ``trail``."""
    throughput = _throughput_for(dev, choice, sizes)
    args = {"cpu_threads": throughput.cpu_threads, "num_workers": throughput.num_workers, **kwargs}
    index = ordinal if dev == "cuda" else 0
    t0 = time.perf_counter()
    try:
        instance = model_class(source, device=dev, device_index=index, compute_type=ctype, **args)
        t1 = time.perf_counter()
        verify(instance)
        t2 = time.perf_counter()
    except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError; keep going
        err = f"{type(exc).__name__}: {exc}".strip()
        trail.append(Attempt(device=dev, compute_type=ctype, ok=False, error=_cause(dev, ctype, err),
                             elapsed_ms=(time.perf_counter() - t0) * 1e3,
                             cuda_ordinal=index if dev == "cuda" else None))
        log.warning("Whisper on %s/%s failed (%s); trying the next choice", dev, ctype, err)
        return None
    trail.append(Attempt(device=dev, compute_type=ctype, ok=True, error=None, elapsed_ms=(t2 - t0) * 1e3,
                         cuda_ordinal=index if dev == "cuda" else None))
    instance.gpuboot = WhisperLoad(model="", device=dev, cuda_ordinal=None, compute_type=ctype, reason="", trail=(),
                                   load_ms=(t1 - t0) * 1e3, probe_ms=(t2 - t1) * 1e3, batched=throughput.batched,
                                   batch_size=throughput.batch_size, cpu_threads=int(args["cpu_threads"]),
                                   num_workers=int(args["num_workers"]), throughput=throughput.reason)
    return instance


def failure(trail: List[Attempt], machine: Machine) -> ModelLoadError:
    """Every attempt failed: the error, with the cause the trail (or the driver probe) names."""
    cause = cuda_cause(trail, machine)
    named = [c for _n, _d, c in _CAUSES if any(a.error and c in a.error for a in trail)]
    if named:
        fix = named[0].split(": ", 1)[1]
    elif any(a.device == "cuda" for a in trail):
        fix = (cause[len("; cause: "):] + "; `gpuboot doctor` checks every layer" if cause
               else "run `gpuboot doctor` for the cause")
    else:
        fix = "check the model directory and `pip install 'gpuboot[whisper]'`"
    return ModelLoadError("no device could run the Whisper model: " + "; ".join(a.describe() for a in trail),
                          fix, trail)


#: What a failed attempt's error means, where CTranslate2's own words do not say (substring, device, cause).
_CAUSES = (("float16", "cpu", "a CPU cannot run float16 (CTranslate2 has no float16 CPU kernels): use compute_type "
                              "int8 or float32"),
           ("bfloat16", "cpu", "this CPU cannot run bfloat16 in CTranslate2: use compute_type int8 or float32"))


def _cause(dev: str, ctype: str, error: str) -> str:
    """``error`` with the cause named where CTranslate2's message does not (float16 asked of a CPU)."""
    for needle, device, cause in _CAUSES:
        if dev == device and ctype.endswith(needle) and "compute type" in error.lower():
            return f"{error} -- {cause}"
    return error


def cuda_cause(trail: List[Attempt], machine: Machine) -> str:
    """``"; cause: <layer>: <what> -- fix: <command>"`` when CUDA attempts
    failed and the machine's driver probe names a broken layer (as ``gpuboot doctor``
    does), else ``""``."""
    probe = machine.probe if any(a.device == "cuda" and not a.ok for a in trail) else None
    if probe is None:
        return ""
    from .._gpus.causes import cause_line

    line = cause_line(probe)
    return f"; cause: {line}" if line else ""


def _throughput_for(dev: str, choice: Any, sizes: Sizes) -> Any:
    from .throughput import plan_throughput

    on_gpu = dev == "cuda" and choice.gpu is not None
    free = choice.gpu.free_memory if on_gpu else sizes.ram or None
    return plan_throughput(dev, cores=choice.cpu_threads, model_bytes=sizes.model_bytes, free_bytes=free,
                           resident_bytes=sizes.model_bytes, batched=sizes.batched, batch_size=sizes.batch_size,
                           streams=sizes.streams)
