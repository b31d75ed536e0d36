"""The values a live stream hands out: ``LiveWord``, ``LiveEvent`` and ``LiveLatency`` (all ``Record`` s)."""

from __future__ import annotations

from typing import Tuple

from ..base.record import Record

__all__ = ["LiveWord", "LiveEvent", "LiveLatency"]


class LiveWord(Record):
    """One word of a live transcript.

    Attributes:
        start, end: seconds on the stream's own timeline (0 is the first sample fed).
        word: the text as the model wrote it, with its leading space (``" the"``), as faster-whisper's ``Word``.
        probability: the model's mean token probability for the word, 0..1.
    """

    start: float
    end: float
    word: str
    probability: float = 0.0


class LiveEvent(Record):
    """What a stream produced at one decoding step.

    Attributes:
        final: ``True``: ``words`` are confirmed and will never be revised nor repeated; ``False``: the
            tentative tail after the last final word, replaced by the next event (it may change).
        words: the words, in order (``LiveWord``); a tentative event may be empty (the tail was withdrawn).
        text: the words' text joined as the model wrote them (leading space stripped).
        emitted: ``time.monotonic()`` when the event was made, s.
    """

    final: bool
    words: Tuple[LiveWord, ...]
    text: str
    emitted: float


class LiveLatency(Record):
    """How fast a stream's final words came out, as the stream measured it.

    A word's latency is when it was emitted as final minus when the audio of its end was fed
    (``feed()``'s ``time.monotonic()``): ufal whisper_streaming's ``asr_latency`` on the wall clock.

    Attributes:
        words: final words counted.
        p50, p95, max: their latency, s (0.0 when no word is final yet).
        rtf: real-time factor: decoding seconds spent on this stream (a batched step's time shared equally
            among its streams) per second of audio fed; below 1 keeps up.
        audio_s: seconds of audio fed.
        decode_s: decoding seconds charged to the stream.
        decodes: decoding steps the stream took part in.
    """

    words: int = 0
    p50: float = 0.0
    p95: float = 0.0
    max: float = 0.0
    rtf: float = 0.0
    audio_s: float = 0.0
    decode_s: float = 0.0
    decodes: int = 0
