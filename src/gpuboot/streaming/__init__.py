"""Live transcription: audio transcribed as it arrives, one stream or many on one model (``gpuboot.live``).

(The folder is ``streaming``, not ``live``: a submodule would shadow the function ``gpuboot.live`` on the
package once imported.)

>>> import gpuboot
>>> stream = gpuboot.live(language="en")           # the embedded tiny.en, or live(model) / live("small")
>>> for chunk in chunks:                           # 16 kHz float32 / int16 arrays, or s16le bytes
...     for event in stream.feed(chunk):           # returns at once; decoding runs on a worker thread
...         print("final" if event.final else "...", event.text)
>>> stream.finish()                                # decodes what is left; every word is final
>>> stream.latency.p95, stream.cues                # word latency (s) and the live subtitle cues

Method: LocalAgreement-2 (Macháček, Dabre, Bojar 2023: a word is final when two consecutive hypotheses of
the growing buffer agree on it), the confirmed text as the prompt of a buffer cut inside speech, Silero
VAD so silence costs nothing and a pause commits the whole utterance at once, the buffer bounded (15 s),
each step sized from the measured cost of decoding.  Many streams on one model (``LivePool``) are decoded
in one batched call per step.

Modules (imports only go down): ``records`` (the values), ``feed`` (audio in, soxr resampling),
``agreement`` (LocalAgreement, pure), ``vad`` (speech gating), ``steps`` (step size and admission from
measured cost), ``decode`` (batched encode / generate / align), ``transcript`` (one stream's buffer and
words), ``clock`` (arrival times and latency), ``cues`` (live subtitles), ``stream`` (``LiveStream``),
``pool`` (``LivePool``, the worker), ``models`` (a model loaded once per name).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Optional

from .pool import MAX_BUFFER, MIN_SILENCE, LiveCapacityError, LivePool
from .records import LiveEvent, LiveLatency, LiveWord
from .stream import EventCallback, LiveStream, StreamClosedError

__all__ = ["live", "LiveStream", "LivePool", "LiveEvent", "LiveWord", "LiveLatency", "LiveCapacityError",
           "StreamClosedError", "EventCallback", "shared_pool"]

_POOLS: weakref.WeakKeyDictionary[Any, LivePool] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def shared_pool(model: Any = None) -> LivePool:
    """The one ``LivePool`` that ``live()`` uses for ``model`` (made on first use)."""
    from .pool import _model_of

    loaded = _model_of(model)
    with _LOCK:
        pool = _POOLS.get(loaded)
        if pool is None:
            pool = _POOLS[loaded] = LivePool(loaded)
        return pool


def live(model: Any = None, *, language: Optional[str] = None, sample_rate: int = 16000,
         on_events: Optional[EventCallback] = None, style: Any = None, min_silence: float = MIN_SILENCE,
         max_buffer: float = MAX_BUFFER, vad: bool = True) -> LiveStream:
    """A live stream: feed it audio as it arrives, get words as they are confirmed.

    Streams made by ``live()`` on the same model object share one ``LivePool`` (``shared_pool``): one worker
    thread decodes them together in batches.

    Args:
        model: a loaded ``WhisperModel``, a size name or CTranslate2 model directory (loaded once with
            ``load_whisper``, which picks the device and ``select_device``'s precision), or ``None``: the
            embedded tiny.en that ``gpuboot transcribe`` uses (else ``"small"``).
        language: ISO 639-1 code; ``None``: English for an English-only model, else detected on the first
            speech.
        sample_rate: Hz of the audio ``feed`` gets (resampled to 16 kHz with soxr when not 16000).
        on_events: ``callback(stream, events)``, called on the worker thread as events are made (then ``feed``
            and ``events`` return none): wakes an asyncio server without polling, e.g.
            ``lambda s, ev: loop.call_soon_threadsafe(queue.put_nowait, ev)``.  Or call ``stream.events(timeout)``,
            which blocks until there are events.
        style: ``SubtitleStyle`` of the live cues (Netflix's rules by default, as ``make_subtitles``).
        min_silence: seconds of pause that end an utterance (its words are then committed at once).
        max_buffer: seconds of audio one step reads at most (2-28).
        vad: gate on speech with Silero VAD (``False``: decode all audio; silence may be hallucinated).

    Returns:
        ``LiveStream``: ``feed(audio)``, ``finish()``, ``close()``, ``events(timeout)``, ``latency``,
        ``cues``, ``subtitles``, ``words``, ``text``.

    Raises:
        LiveCapacityError: the model's shared pool cannot take another stream within its latency budget.
        ModelNotFoundError, ModelLoadError, MissingDependencyError: the model cannot be loaded.
        ValueError: ``min_silence`` or ``max_buffer`` out of range.
    """
    return shared_pool(model).open(language=language, sample_rate=sample_rate, on_events=on_events, style=style,
                                   min_silence=min_silence, max_buffer=max_buffer, vad=vad)
