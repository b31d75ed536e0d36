"""``gpuboot.transcribe()``: batched decoding, re-checked against free GPU memory, resumed after an OOM."""

from __future__ import annotations

from typing import Any, Iterator, Optional, Tuple

from ..base import deps as _deps
from ..base.log import log
from .audio import SAMPLE_RATE
from .load import WhisperLoad, expect_model
from .model_memory import is_out_of_memory
from .models import _model_bytes

__all__ = ["transcribe", "recheck_batch"]

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
    """Transcribe ``audio`` (a path or ``pathlib.Path``, a file object, or 16 kHz samples: float32, float64 or
    int16 PCM)
    with a model from ``load_whisper``, as its ``WhisperLoad`` planned:
    batched (``whisper.multibatch``: faster-whisper's ``BatchedInferencePipeline``
    windows and ``forward``, each window encoded at its own length, batches of
    1, 2, 4, ... windows up to the planned size so that segments come out as
    their windows are decoded), else sequentially.  ``options`` go to faster-whisper's
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
        audio: a path (``str``, ``pathlib.Path``), a binary file object, or a 1-D array of samples at 16 kHz
            (float32; float64 and int16/int32 PCM are converted: ``audio.samples_of``).
        batch_size: overrides the planned batch size.
        pipeline: a batched pipeline to decode with instead (faster-whisper's
            ``BatchedInferencePipeline``'s ``transcribe``; also used for ``clip_timestamps``).

    Returns:
        ``(segments, info)``: an iterator of faster-whisper ``Segment`` s (times
        in seconds from the start of the audio) and its ``TranscriptionInfo``.

    Raises:
        AudioError: the audio cannot be decoded (missing, unreadable, not audio) or is not one channel of
            samples (its shape named).
        ValueError: ``batch_size`` below 1.
        RuntimeError: CTranslate2's own errors; out of memory at batch 1.
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    expect_model(model)
    info = getattr(model, "gpuboot", None)
    batched = bool(info.batched) if isinstance(info, WhisperLoad) else batch_size is not None
    size = batch_size or (info.batch_size if isinstance(info, WhisperLoad) else 8)
    from .audio import samples_of

    audio = samples_of(audio)
    long_audio = len(audio) > 30 * SAMPLE_RATE
    if batched and options.get("vad_filter") is False and long_audio and "clip_timestamps" not in options:
        log.info("vad_filter=False on %.0f s of audio: batched decoding needs VAD chunks; decoding sequentially",
                 len(audio) / SAMPLE_RATE)
        batched = False
    if not batched:
        segments, tinfo = model.transcribe(audio, **options)
        return iter(segments), tinfo
    if isinstance(info, WhisperLoad) and info.device == "cuda" and batch_size is None:
        size = recheck_batch(info, size)
    if pipeline is None and "clip_timestamps" not in options:
        return _streamed(model, audio, size, options)
    if pipeline is None:
        pipeline = _deps.faster_whisper().BatchedInferencePipeline(model)
    first, tinfo = _start(pipeline, audio, size, options)
    return _resumable(pipeline, audio, size, first, options), tinfo


def _streamed(model: Any, audio: Any, size: int, options: Any) -> Tuple[Iterator[Any], Any]:
    """One recording through ``multibatch.Packer`` (the command's own decoding: the same words for a file alone
    or among others) in batches of 1, 2, 4, ... windows up to ``size``: its segments come out in order as their
    windows are decoded, the first after one window."""
    from .multibatch import Packer

    packer = Packer(model, size, dict(options), ramp=True)
    prepared = packer.prepare("audio", audio)
    info = packer.info(prepared[0], packer.setup(prepared[0].language)[2])

    def segments() -> Iterator[Any]:
        for step in packer.add("audio", audio, prepared):
            yield from step.segments
        for step in packer.finish():
            yield from step.segments

    return segments(), info


def _start(pipeline: Any, audio: Any, size: int, options: Any) -> Tuple[Any, Any]:
    while True:
        try:
            return tuple(pipeline.transcribe(audio, batch_size=size, **options))  # type: ignore[return-value]
        except Exception as exc:
            if not is_out_of_memory(exc) or size == 1:
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
            if not is_out_of_memory(exc) or size == 1:
                raise
            size //= 2
            log.warning("out of memory at batch %d (%s); resuming at %.1f s with batch %d",
                        size * 2, exc, done, size)
            offset = done
            segments, _ = _start(pipeline, audio[int(done * SAMPLE_RATE):], size, options)


def recheck_batch(info: WhisperLoad, size: int) -> int:
    """The planned GPU batch, shrunk to what NVML says is free now."""
    from ..placement.memory import memory_info
    from .model_memory import HEADROOM
    from .throughput import per_item_bytes

    try:
        free = memory_info(info.cuda_ordinal if info.cuda_ordinal is not None else 0).free
    except LookupError:
        return size
    fits = max(1, int(free / (per_item_bytes(_model_bytes(info.source)) * HEADROOM)))
    if fits < size:
        log.warning("GPU memory changed since loading: %.2f GiB free now; batch %d -> %d", free / 2**30, size, fits)
        return fits
    return size
