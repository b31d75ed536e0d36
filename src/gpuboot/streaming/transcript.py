"""One live stream's transcript as it is decoded: the audio buffer, VAD gating, LocalAgreement and trimming.

The buffer holds the current utterance: VAD (``vad.SpeechGate``) keeps only ``PRE_ROLL`` seconds of silence
before speech, so silence is never decoded.  While speech goes on, each step decodes the whole buffer and
confirms the words two consecutive hypotheses agree on (``agreement``); when VAD sees the speech end (a
pause of ``min_silence``), one last decode commits the whole utterance at once, and the buffer starts over
after it.  A buffer that grows past ``max_buffer`` seconds without a pause is cut after its last confirmed
sentence end (else after its last confirmed word; with none, it is committed whole), so a step never reads
more than about ``max_buffer`` seconds.  A buffer cut that way goes on with the confirmed text before it as
its prompt; a buffer that starts after a pause has none (``Transcript._prompt``).  Final words are only ever
appended: never revised, never repeated.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from ..subtitles.languages import SENTENCE_MARKS
from .agreement import agreed, unseen
from .decode import Hypothesis, Request
from .records import LiveWord
from .vad import SpeechGate

__all__ = ["Transcript", "PRE_ROLL", "POST_ROLL", "HOLD"]

RATE = 16000
#: Seconds of audio kept before speech starts, and after it ends in the last decode (a word's onset and tail
#: reach past VAD's frames; faster-whisper's ``speech_pad_ms`` is 0.4 s).
PRE_ROLL, POST_ROLL = 0.4, 0.3
#: Seconds a word must end before the buffer's end to be confirmed by agreement: Whisper's last second is
#: unsettled (tiny.en, bench recording's first minute, beam 5: WER 0.19 holding 1 s, 0.21 at 0.7 s, 0.28 with
#: none and greedy); the pause at an utterance's end commits the rest at once.
HOLD = 1.0
#: Prompt text kept, characters (``decode.PROMPT_TOKENS`` tokens are taken from its end).
PROMPT_CHARS = 600


class Transcript:
    """A stream's decoding state; used by its pool's worker thread only.

    Args:
        language: ISO 639-1 code, or ``None`` (detected on the first decode).
        min_silence: seconds of silence that end an utterance.
        max_buffer: seconds of buffer before it is cut.
        hold: seconds a word must end before the buffer's end to be confirmed by agreement.
        vad: gate on speech (``False``: every sample is speech, utterances end only at ``max_buffer``).
    """

    def __init__(self, *, language: Optional[str], min_silence: float, max_buffer: float, vad: bool,
                 hold: float = HOLD) -> None:
        import numpy as np

        self.hold = hold
        self.carried = False  # the buffer goes on from a cut inside speech (``_bound``)
        self.language = language
        self.max_buffer = int(max_buffer * RATE)
        self.gate: Optional[SpeechGate] = SpeechGate(min_silence) if vad else None
        self.buffer = np.zeros(0, dtype=np.float32)
        self.offset = 0  # stream sample of buffer[0]
        self.taken = 0  # samples taken in
        self.speaking = not vad
        self.heard = not vad  # speech in the buffer since the last commit of an utterance
        self.ends: List[int] = []  # speech ends (stream samples) still to commit
        self.fresh = 0  # samples since the last decode
        self.final: List[LiveWord] = []
        self.prior: List[LiveWord] = []

    def take(self, samples: Any) -> None:
        """Samples in (16 kHz float32), in order: VAD runs on them; silence before speech is dropped."""
        import numpy as np

        changes = self.gate.push(samples) if self.gate is not None else []
        self.buffer = np.concatenate([self.buffer, samples]) if len(self.buffer) else samples
        self.taken += len(samples)
        self.fresh += len(samples)
        for change in changes:
            if change.speech:
                self.speaking = True
                if not self.heard and not self.ends:
                    self._cut(max(self.offset, change.sample - int(PRE_ROLL * RATE)))
                self.heard = True
            else:
                self.speaking = False
                self.ends.append(change.sample)
        if not self.heard and not self.ends:  # silence: keep the pre-roll only
            self._cut(max(self.offset, self.taken - int(PRE_ROLL * RATE)))

    def _cut(self, sample: int) -> None:
        """Drop the buffer before stream sample ``sample``."""
        self.buffer = self.buffer[sample - self.offset:]
        self.offset = sample

    @property
    def active(self) -> bool:
        """Speech to decode: an utterance going on or one ended and not yet committed."""
        return bool(self.ends) or (self.heard and len(self.buffer) > 0)

    def request(self, step: float, finishing: bool) -> Optional[Tuple[bool, Request]]:
        """``(final, request)`` when this stream should be decoded now, else ``None``: a final decode for an
        utterance that ended (or for what is left when ``finishing``), a step when ``step`` seconds of new
        audio arrived during speech.  Changes nothing: ``apply`` does."""
        if self.ends:  # VAD needed min_silence after the end, so the post-roll has arrived
            return True, self._request(min(self.taken, self.ends[0] + int(POST_ROLL * RATE)))
        if finishing and self.heard and len(self.buffer):
            return True, self._request(self.taken)
        if self.heard and self.fresh >= step * RATE and len(self.buffer) > 0:
            return False, self._request(self.taken)
        return None

    def _request(self, end: int) -> Request:
        return Request(audio=self.buffer[:end - self.offset], prompt=self._prompt(), language=self.language)

    def _prompt(self) -> str:
        """The confirmed text before the buffer (words inside it are decoded again, so they are not prompted:
        a prompt that holds the buffer's own words makes Whisper skip them).  Only a buffer cut inside speech
        gets one: after a pause, Whisper reads the earlier sentences into the new one ("... all parts of the
        world" came back as "... all power somewhere else" after "... armed troops somewhere else"), and a
        prompt costs decoding time.  Measured, tiny.en int8, beam 5, two real-time streams on one 2-core
        x86-64 CPU: ``python bench/live_harness.py --streams 2`` (181 s, 24 sentences), prompted after pauses
        WER 0.191-0.201, word latency p50 2.77 s, p95 4.90 s; not: WER 0.197-0.201, p50 1.94 s, p95 3.30 s.
        ``python bench/live_recording_streams.py --streams 2`` (tests/test_serve.py's 50 s, offline WER
        0.084): WER 0.151-0.218 prompted, 0.143-0.160 not."""
        if not self.carried:
            return ""
        base = self.offset / RATE
        before = [w.word for w in self.final[-200:] if w.end <= base]
        return "".join(before)[-PROMPT_CHARS:]

    def apply(self, final: bool, request: Request, hyp: Hypothesis) -> Tuple[List[LiveWord], List[LiveWord]]:
        """A decoded ``request``: ``(newly final words, tentative tail)`` on the stream's timeline."""
        if hyp.usable:
            self.language = self.language or hyp.language
        base = self.offset / RATE
        span = len(request.audio) / RATE
        words = [w._replace(start=w.start + base, end=min(w.end, span) + base)
                 for w in hyp.words if w.start < span] if hyp.usable else []
        inside = [w for w in self.final if w.end > base]
        new = unseen(words, inside)
        self.fresh = max(0, self.taken - (self.offset + len(request.audio)))
        if final:
            confirmed, self.prior = new, []
            end = self.offset + len(request.audio)
            if self.ends:
                self.ends.pop(0)
            self._commit(confirmed)
            self._cut(min(self.taken, end))
            self.heard = self.speaking
            self.carried = False
            return confirmed, []
        n = agreed(self.prior, new)
        horizon = base + span - self.hold
        while n and new[n - 1].end > horizon:
            n -= 1
        confirmed, self.prior = new[:n], new[n:]
        self._commit(confirmed)
        if len(self.buffer) > self.max_buffer:
            self._bound()
        return confirmed, list(self.prior)

    def _commit(self, words: List[LiveWord]) -> None:
        self.final.extend(words)

    def _bound(self) -> None:
        """Cut a long buffer after its last confirmed sentence end, else its last confirmed word; with no
        confirmed word in it, the next decode is final."""
        base = self.offset / RATE
        inside = [w for w in self.final if w.end > base]
        if not inside:
            self.ends.insert(0, self.taken)
            return
        cut = next((w for w in reversed(inside) if w.word.rstrip()[-1:] in SENTENCE_MARKS), inside[-1])
        self._cut(min(self.taken, int(cut.end * RATE)))
        self.carried = True
        self.prior = [w for w in self.prior if w.start >= cut.end]
