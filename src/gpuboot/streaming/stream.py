"""``LiveStream``: one stream of audio transcribed as it arrives (made by ``gpuboot.live()`` or ``LivePool.open()``).

``feed()`` converts the chunk (``feed.Feeder``), queues it with its arrival time and returns at once: VAD and
decoding run on the pool's worker thread, which hands the stream its decoded steps (``_apply``).  Events are
kept for ``feed()``/``events()`` to return, or passed to ``on_events`` as they are made.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Protocol, Sequence, Tuple

from ..base.log import log
from ..errors import GpubootError
from .clock import ArrivalClock
from .cues import LiveCues
from .decode import Hypothesis, Request
from .feed import Feeder
from .records import LiveEvent, LiveLatency, LiveWord
from .transcript import Transcript

if TYPE_CHECKING:
    from ..subtitles import Subtitles, SubtitleStyle
    from ..subtitles.timing import Cue

__all__ = ["LiveStream", "StreamClosedError", "EventCallback"]

#: ``on_events(stream, events)``: called on the pool's worker thread; keep it short (hand the events to your
#: event loop: ``loop.call_soon_threadsafe(queue.put_nowait, events)``).
EventCallback = Callable[["LiveStream", List[LiveEvent]], None]


class Pool(Protocol):
    """What a stream asks of its pool (``pool.LivePool``)."""

    def _check(self) -> None: ...
    def _wake(self) -> None: ...
    def _forget(self, stream: LiveStream) -> None: ...


class StreamClosedError(GpubootError):
    """Audio was fed to a live stream after ``finish()`` or ``close()``."""


def _text(words: Sequence[LiveWord]) -> str:
    return "".join(w.word for w in words).strip()


class LiveStream:
    """One live stream; see ``gpuboot.live``.  Thread-safe: ``feed`` from one thread while another waits on
    ``events``.

    Attributes:
        pool: the ``LivePool`` that decodes it.
        language: the language decoded in (``None`` until a multilingual model detected it).
    """

    def __init__(self, pool: Pool, *, language: Optional[str], sample_rate: int, on_events: Optional[
            EventCallback], style: Optional[SubtitleStyle], min_silence: float, max_buffer: float,
                 vad: bool) -> None:
        self.pool = pool
        self._feeder = Feeder(sample_rate)
        self._transcript = Transcript(language=language, min_silence=min_silence, max_buffer=max_buffer, vad=vad)
        self._clock = ArrivalClock()
        self._cues = LiveCues(style, language)
        self._on_events = on_events
        self._lock = threading.Condition()
        self._inbox: List[Any] = []
        self._inbox_samples = 0
        self._events: List[LiveEvent] = []
        self._tentative: Tuple[LiveWord, ...] = ()
        self._fed = 0
        self._finishing = False
        self._done = False
        self._closed = False
        self._subtitles: Optional[Subtitles] = None

    @property
    def language(self) -> Optional[str]:
        return self._transcript.language

    # ---- the caller's side -------------------------------------------------------------------------------

    def feed(self, audio: Any, sample_rate: Optional[int] = None) -> List[LiveEvent]:
        """Queue the next chunk and return the events made since the last call (none when ``on_events`` is
        set: they went there).  Returns within milliseconds: decoding runs on the pool's worker thread.

        Args:
            audio: a 1-D numpy array (float32/float64 in -1..1, int16/int32 PCM) or raw PCM s16le mono
                ``bytes`` (an odd byte is kept for the next chunk).
            sample_rate: Hz, when not the stream's (``live(sample_rate=)``, 16000 by default); other rates
                than 16 kHz are resampled with soxr (``soxr.ResampleStream``, HQ).

        Raises:
            AudioError: not one channel of sound samples (2-D, a non-number type, NaN or infinity), a bad rate.
            StreamClosedError: after ``finish()`` or ``close()``.
            RuntimeError: the pool's worker failed (CTranslate2's error, raised again here).
        """
        self.pool._check()
        with self._lock:
            if self._finishing or self._closed:
                raise StreamClosedError("this live stream is finished; it takes no more audio",
                                        "open a new stream for new audio (gpuboot.live() or pool.open())")
            samples = self._feeder.push(audio, sample_rate)
            self._queue(samples, time.monotonic())
            events, self._events = self._events, []
        self.pool._wake()
        return events

    def _queue(self, samples: Any, when: float) -> None:
        if len(samples):
            self._inbox.append(samples)
            self._inbox_samples += len(samples)
            self._fed += len(samples)
        self._clock.fed_until(self._fed, when)

    def events(self, timeout: Optional[float] = None) -> List[LiveEvent]:
        """The events made since the last call, waiting up to ``timeout`` seconds (``None``: until there are
        some, or the stream is done) when there are none yet: a server's reader need not poll.

        Raises:
            RuntimeError: the pool's worker failed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not self._events and not self._done and not self._closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._lock.wait(0.25 if left is None else min(left, 0.25))
                self.pool._check()
            events, self._events = self._events, []
        return events

    def finish(self, timeout: Optional[float] = None) -> List[LiveEvent]:
        """End the stream: decode what is left, commit it, and return the last events (``on_events`` gets them
        instead when set).  Waits until that is done, or ``timeout`` seconds (``TimeoutError``).

        Raises:
            TimeoutError: not done within ``timeout``.
            RuntimeError: the pool's worker failed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if not self._finishing and not self._closed:
                self._finishing = True
                self._queue(self._feeder.flush(), time.monotonic())
        self.pool._wake()
        with self._lock:
            while not self._done and not self._closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"the live stream was not decoded to its end within {timeout} s")
                self._lock.wait(0.25 if left is None else min(left, 0.25))
                self.pool._check()
            events, self._events = self._events, []
        return events

    def close(self) -> None:
        """Stop at once: audio not yet decoded is dropped; the pool forgets the stream.  Idempotent."""
        with self._lock:
            self._closed = True
            self._inbox, self._inbox_samples = [], 0
            self._lock.notify_all()
        self.pool._forget(self)

    def __enter__(self) -> LiveStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def done(self) -> bool:
        """``finish()`` completed: every word is final."""
        return self._done

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def backlog(self) -> float:
        """Seconds of audio fed and not yet taken in by the worker."""
        return self._inbox_samples / 16000

    @property
    def latency(self) -> LiveLatency:
        """p50/p95/max latency of the final words so far, and the real-time factor (``LiveLatency``)."""
        with self._lock:
            return self._clock.report()

    @property
    def words(self) -> Tuple[LiveWord, ...]:
        """Every final word so far, in order."""
        with self._lock:
            return tuple(self._transcript.final)

    @property
    def text(self) -> str:
        """The final words' text."""
        return _text(self.words)

    @property
    def tentative(self) -> Tuple[LiveWord, ...]:
        """The current tentative tail (it may change)."""
        return self._tentative

    @property
    def cues(self) -> Tuple[Cue, ...]:
        """The subtitle cues settled so far (``make_subtitles``' rules; each will not change any more); after
        ``finish()``, the whole set."""
        with self._lock:
            return self._subtitles.cues if self._subtitles is not None else self._cues.settled

    @property
    def subtitles(self) -> Optional[Subtitles]:
        """After ``finish()``: every final word as one ``Subtitles`` set (cues, srt, vtt, conformance report);
        before it, ``None``."""
        return self._subtitles

    # ---- the worker's side -------------------------------------------------------------------------------

    def _absorb(self, limit: int) -> None:
        """Move up to ``limit`` queued samples into the transcript (VAD runs on them)."""
        import numpy as np

        with self._lock:
            take, size = [], 0
            while self._inbox and size < limit:
                chunk = self._inbox[0]
                if size + len(chunk) > limit:
                    self._inbox[0] = chunk[limit - size:]
                    chunk = chunk[:limit - size]
                else:
                    self._inbox.pop(0)
                take.append(chunk)
                size += len(chunk)
            self._inbox_samples -= size
            finishing = self._finishing and not self._inbox
        if take:
            self._transcript.take(np.concatenate(take) if len(take) > 1 else take[0])
        if finishing and not self._transcript.active and not self._done:
            self._end()

    def _request(self, step: float) -> Optional[Tuple[bool, Request]]:
        finishing = self._finishing and not self._inbox
        return None if self._closed else self._transcript.request(step, finishing)

    def _apply(self, final: bool, request: Request, hyp: Hypothesis, share: float) -> None:
        confirmed, tail = self._transcript.apply(final, request, hyp)
        now = time.monotonic()
        events: List[LiveEvent] = []
        with self._lock:
            self._clock.charge(share)
            if confirmed:
                events.append(LiveEvent(final=True, words=tuple(confirmed), text=_text(confirmed), emitted=now))
                self._clock.finals([w.end for w in confirmed], now)
                self._cues.add(confirmed, self._transcript.language)
            if tuple(tail) != self._tentative:
                self._tentative = tuple(tail)
                events.append(LiveEvent(final=False, words=self._tentative, text=_text(tail), emitted=now))
            finishing = self._finishing and not self._inbox and not self._transcript.active
        self._deliver(events)
        if finishing:
            self._end()

    def _end(self) -> None:
        with self._lock:
            if self._done:
                return
            self._subtitles = self._cues.finish(self._fed / 16000)
            self._done = True
            self._lock.notify_all()
        self.pool._forget(self)  # a finished stream no longer counts against the pool's streams

    def _deliver(self, events: List[LiveEvent]) -> None:
        if not events:
            return
        if self._on_events is not None:
            try:
                self._on_events(self, events)
            except Exception:  # the caller's callback: its failure is logged, the other streams go on
                log.exception("live: the on_events callback raised")
            return
        with self._lock:
            self._events.extend(events)
            self._lock.notify_all()
