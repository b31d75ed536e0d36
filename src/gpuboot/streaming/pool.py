"""``LivePool``: many live streams on one model, decoded together in batched steps by one worker thread.

Each step, the worker takes in every stream's newly fed audio (VAD runs on it), then decodes every stream that
is due -- an utterance ended, or a step's worth of new audio during speech (``steps.StepClock``) -- in one
batched call (``decode.Decoder``): round-robin fair, the streams served last go first next time when the
batch is capped.  A stream the pool cannot serve within its latency budget is refused at ``open()`` (one
line saying why and what to do), never starved in silence.  The worker runs while a stream is open.
"""

from __future__ import annotations

import threading
import time
from typing import Any, List, Optional, Tuple

from ..base.log import log
from ..errors import GpubootError
from .decode import Decoder, Hypothesis, Request
from .steps import StepClock
from .stream import EventCallback, LiveStream

__all__ = ["LivePool", "LiveCapacityError", "LATENCY_BUDGET", "MIN_SILENCE", "MAX_BUFFER"]

#: Default word-latency budget of a pool, s: ``open()`` refuses a stream when two rounds of decoding (a word
#: is final after two hypotheses agree) would take longer with it.
LATENCY_BUDGET = 8.0
#: Default pause that ends an utterance, s.
MIN_SILENCE = 0.5
#: Default longest buffer, s.
MAX_BUFFER = 15.0
#: Default beam width: tiny.en greedy loses 7-9 WER points against beam 5 on the bench recording's first
#: minute (final decodes only: 0.26 vs 0.17; with agreement: 0.28 vs 0.19), as faster-whisper's default.
BEAM_SIZE = 5
#: Seconds one round of decoding every active stream may take at the full window before the pool switches to
#: ``busy_window_s`` (a word waits about two rounds plus ``transcript.HOLD``).
ROUND_TARGET = 1.2
#: Default shortest encoder input when busy, s.
BUSY_WINDOW = 15.0
#: Samples (16 kHz) a stream takes in per step at most: a backlog is worked through in steps, not at once.
_ABSORB = 4 * 16000


class LiveCapacityError(GpubootError):
    """``LivePool.open()`` refused a stream: the pool is full, or serving one more would exceed its latency
    budget.  The message is one line: why, with the figures, and what to do."""

    def __init__(self, message: str, fix: str) -> None:
        self.fix = fix
        Exception.__init__(self, f"{message} -- fix: {fix}")


def _model_of(model: Any) -> Any:
    """A ``WhisperModel`` for ``model``: as given, or loaded (``None``: the embedded tiny.en, else "small")."""
    if model is None or isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        from .models import shared_model

        return shared_model(model)
    return model


class LivePool:
    """Live streams sharing one Whisper model.

    Args:
        model: a loaded ``WhisperModel`` (``load_whisper``'s), a size name or model directory (loaded with
            ``load_whisper``), or ``None`` for the embedded tiny.en (``gpuboot transcribe``'s default).
        max_streams: most streams open at once (``None``: as many as the latency budget allows).
        max_batch: most streams decoded in one call (default: ``load_whisper``'s planned batch size, at
            most 16); halved for good after an out-of-memory error.
        latency_budget: seconds; ``open()`` refuses a stream when, from the measured step cost, two rounds of
            decoding every open stream would take longer than this.
        beam_size: beam search width of each step (1: greedy, faster and less accurate).
        window_s: the shortest encoder input, seconds (30: Whisper's trained window).
        busy_window_s: the shortest encoder input while a round of decoding every active stream at ``window_s``
            would take over ``ROUND_TARGET`` seconds (measured): a shorter input costs less (tiny.en int8,
            2-core x86-64 CPU, beam 5, four 7 s buffers: 3.8 s at 30 s, 1.3 s at 15 s) and loses a few WER
            points (docs/benchmarks.md), where waiting would cost more latency.

    Raises:
        ValueError: ``max_streams``, ``max_batch`` or ``beam_size`` below 1, a budget not above 0.
    """

    def __init__(self, model: Any = None, *, max_streams: Optional[int] = None, max_batch: Optional[int] = None,
                 latency_budget: float = LATENCY_BUDGET, beam_size: int = BEAM_SIZE, window_s: float = 30.0,
                 busy_window_s: float = BUSY_WINDOW) -> None:
        for name, value in (("max_streams", max_streams), ("max_batch", max_batch), ("beam_size", beam_size)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
        if not latency_budget > 0:
            raise ValueError(f"latency_budget must be a number of seconds above 0, not {latency_budget!r}")
        self.model = _model_of(model)
        info = getattr(self.model, "gpuboot", None)
        cap = max_batch or min(16, int(getattr(info, "batch_size", 8) or 8))
        self.decoder = Decoder(self.model, beam_size=beam_size, window_s=window_s, cap=cap)
        self.max_streams, self.latency_budget = max_streams, float(latency_budget)
        self.window_s, self.busy_window_s = float(window_s), float(min(window_s, busy_window_s))
        self.clock = StepClock()  # steps at window_s
        self.busy_clock = StepClock()  # steps at busy_window_s
        self._streams: List[LiveStream] = []
        self._lock = threading.Condition()
        self._worker: Optional[threading.Thread] = None
        self._failure: Optional[BaseException] = None
        self._pending = False

    @property
    def streams(self) -> Tuple[LiveStream, ...]:
        """The streams open now."""
        with self._lock:
            return tuple(self._streams)

    def open(self, *, language: Optional[str] = None, sample_rate: int = 16000,
             on_events: Optional[EventCallback] = None, style: Any = None, min_silence: float = MIN_SILENCE,
             max_buffer: float = MAX_BUFFER, vad: bool = True) -> LiveStream:
        """A new stream on this pool's model (arguments as for ``gpuboot.live``).

        Raises:
            LiveCapacityError: the pool has ``max_streams`` open, or one more would exceed its latency budget.
            AudioError: a ``sample_rate`` out of range.
            ValueError: ``min_silence`` or ``max_buffer`` out of range.
        """
        if not 0.1 <= min_silence <= 10.0:
            raise ValueError(f"min_silence must be 0.1-10 s, not {min_silence!r}")
        if not 2.0 <= max_buffer <= 28.0:
            raise ValueError(f"max_buffer must be 2-28 s (the encoder reads at most 30 s), not {max_buffer!r}")
        with self._lock:
            self._admit(len(self._streams))
            stream = LiveStream(self, language=language, sample_rate=sample_rate, on_events=on_events, style=style,
                                min_silence=min_silence, max_buffer=max_buffer, vad=vad)
            self._streams.append(stream)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="gpuboot-live", daemon=True)
                self._worker.start()
        return stream

    def _admit(self, open_now: int) -> None:
        if self.max_streams is not None and open_now >= self.max_streams:
            raise LiveCapacityError(f"this live pool serves at most {self.max_streams} stream(s) and all are open",
                                    "close a stream first, or make the pool with a larger max_streams")
        rounds = self.busy_clock.round_time(open_now + 1, self.decoder.cap)
        if rounds is None:
            rounds = self.clock.round_time(open_now + 1, self.decoder.cap)
        if rounds is not None and 2 * rounds > self.latency_budget:
            raise LiveCapacityError(
                f"stream {open_now + 1} refused: decoding {open_now + 1} streams takes {rounds:.2f} s a round "
                f"(measured), so a word would wait about {2 * rounds:.1f} s, over this pool's "
                f"{self.latency_budget:g} s budget",
                "serve it from another pool on another device, a smaller model, or raise latency_budget")

    def close(self) -> None:
        """Close every stream (undecoded audio is dropped)."""
        for stream in self.streams:
            stream.close()

    def __enter__(self) -> LivePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the streams' side -------------------------------------------------------------------------------

    def _wake(self) -> None:
        with self._lock:
            self._pending = True
            self._lock.notify_all()

    def _forget(self, stream: LiveStream) -> None:
        with self._lock:
            if stream in self._streams:
                self._streams.remove(stream)
            self._lock.notify_all()

    def _check(self) -> None:
        if self._failure is not None:
            raise RuntimeError(f"the live pool's decoding failed: {self._failure}") from self._failure

    # ---- the worker --------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._pending and self._streams:
                        self._lock.wait(0.5)
                    if not self._streams:
                        self._worker = None
                        return
                    self._pending = False
                    streams = list(self._streams)
                if self._step(streams):
                    with self._lock:
                        self._pending = True
        except BaseException as exc:  # handed to every caller: feed/events/finish raise it
            log.error("live: decoding failed: %s", exc)
            self._failure = exc
            for stream in self.streams:
                stream._lock.acquire()
                stream._lock.notify_all()
                stream._lock.release()

    def _step(self, streams: List[LiveStream]) -> bool:
        """One step over ``streams`` (in round-robin order); ``True`` when there may be more to do at once."""
        for s in streams:
            s._absorb(_ABSORB)
        active = max(1, sum(1 for s in streams if s._transcript.active))
        full = self.clock.round_time(active, self.decoder.cap)
        busy = full is not None and full > ROUND_TARGET and self.busy_window_s < self.window_s
        clock = self.busy_clock if busy else self.clock
        step = clock.step(active, self.decoder.cap)
        due: List[Tuple[LiveStream, bool, Request]] = []
        for s in streams:
            got = s._request(step)
            if got is not None:
                due.append((s, got[0], got[1]))
        if not due:
            return any(s.backlog > 0 for s in streams)
        lang = due[0][2].language
        batch = [d for d in due if d[2].language == lang or d[2].language is None][:self.decoder.cap]
        t0 = time.perf_counter()
        hyps: List[Hypothesis] = self.decoder.decode([d[2] for d in batch],
                                                     self.busy_window_s if busy else self.window_s)
        spent = time.perf_counter() - t0
        clock.record(len(batch), spent)
        for (s, final, request), hyp in zip(batch, hyps):
            s._apply(final, request, hyp, spent / len(batch))
        with self._lock:  # round-robin: the streams just served go last
            for s, _, _ in batch:
                if s in self._streams:
                    self._streams.remove(s)
                    self._streams.append(s)
        return True  # the next pass finds what is due now (another utterance's end, a cut buffer)
