"""A live stream's events as WhisperLive's segments: final words grouped into completed segments, the open
segment and the tentative tail as the one segment that may still change.

WhisperLive's client keeps a completed segment only when it starts at or after the end of the last one it kept
(``Client.process_segments``), and sees every update as "the last N completed segments, then the open one".
So completed segments here never overlap, never shrink to nothing (a re-sent segment of zero length would be
kept twice), and are never changed once made: final words are never revised, and a segment is closed at a
sentence end, at a pause, or when it grows past ``MAX_SEGMENT_S``.  Times are integer milliseconds, written
as WhisperLive writes them (``"12.340"``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Protocol, Sequence

__all__ = ["Transcript", "PAUSE_S", "MAX_SEGMENT_S", "MAX_KEPT"]

#: A pause between two final words that closes a segment, s (the recordings' sentence pauses are 0.7-1.3 s).
PAUSE_S = 1.0
#: A segment is closed at the next word past this length, s (WhisperLive's own are Whisper's, under 30 s).
MAX_SEGMENT_S = 12.0
#: Completed segments kept: the most ``send_last_n_segments`` asks for plus a client's undelivered backlog.
MAX_KEPT = 2000
#: A word whose text ends so ends a sentence (closing quotes and brackets may follow).
_SENTENCE_END = (".", "?", "!", "\u2026", "\u3002", "\uff01", "\uff1f")
_CLOSERS = "\"'\u201d\u2019)]\u300d\u300f"


class _Word(Protocol):
    start: float
    end: float
    word: str
    probability: float


class _Event(Protocol):
    final: bool
    words: Sequence[_Word]


def _ms(seconds: float) -> int:
    return round(seconds * 1000.0)


def _clock(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"


def _ends_sentence(word: str) -> bool:
    return word.rstrip().rstrip(_CLOSERS).endswith(_SENTENCE_END)


class Transcript:
    """One client's transcript as WhisperLive segments.

    ``apply(events)`` takes a live stream's events (final words appended, the tentative tail replaced);
    ``close()`` completes the open segment (the stream is finished); ``update(last_n, delivered)`` is the
    ``segments`` list of the next message.  ``completed`` counts the segments made so far.
    """

    def __init__(self, *, words: bool = False) -> None:
        self.words = words
        self._done: List[Dict[str, Any]] = []
        self._dropped = 0  # completed segments no longer kept (older than MAX_KEPT)
        self._open: List[_Word] = []
        self._tail: Sequence[_Word] = ()
        self._end_ms = 0  # end of the last completed segment

    @property
    def completed(self) -> int:
        return self._dropped + len(self._done)

    def apply(self, events: Sequence[_Event]) -> bool:
        """Take ``events`` in order; ``True`` when the segments changed."""
        changed = False
        for event in events:
            if event.final:
                for word in event.words:
                    self._add(word)
                if event.words:
                    self._tail, changed = (), True
            elif tuple(event.words) != tuple(self._tail):
                self._tail, changed = tuple(event.words), True
        return changed

    def close(self) -> bool:
        """The stream is finished: the open segment is completed; ``True`` when that changed anything."""
        changed = bool(self._open or self._tail)
        self._complete()
        self._tail = ()
        return changed

    def update(self, last_n: int, delivered: int = 0) -> List[Dict[str, Any]]:
        """The segments of the next message: the last ``last_n`` completed ones and any made after the first
        ``delivered`` (so a client that missed updates loses no segment), then the open one if any."""
        first = max(0, min(self.completed - last_n, delivered) - self._dropped)
        items = list(self._done[first:])
        pending = [*self._open, *self._tail]
        if pending:
            items.append(self._segment(pending, completed=False))
        return items

    def _add(self, word: _Word) -> None:
        if self._open:
            gap = word.start - self._open[-1].end
            if gap >= PAUSE_S or word.end - self._open[0].start > MAX_SEGMENT_S:
                self._complete()
        self._open.append(word)
        if _ends_sentence(word.word):
            self._complete()

    def _complete(self) -> None:
        if not self._open:
            return
        segment = self._segment(self._open, completed=True)
        self._end_ms = int(segment["_end"])
        del segment["_end"]
        self._done.append(segment)
        self._open = []
        if len(self._done) > MAX_KEPT:
            cut = len(self._done) - MAX_KEPT
            del self._done[:cut]
            self._dropped += cut

    def _segment(self, words: Sequence[_Word], *, completed: bool) -> Dict[str, Any]:
        start = max(_ms(words[0].start), self._end_ms)
        end = max(_ms(words[-1].end), start + 1)
        segment: Dict[str, Any] = {"start": _clock(start), "end": _clock(end),
                                   "text": "".join(w.word for w in words).strip(), "completed": completed}
        if self.words:
            segment["words"] = [_word(w) for w in words]
        if completed:
            segment["_end"] = end
        return segment


def _word(w: _Word) -> Dict[str, Any]:
    """A word as WhisperLive sends it with ``word_timestamps`` (``ServeClientBase._extract_words``)."""
    return {"word": w.word, "start": _clock(_ms(w.start)), "end": _clock(_ms(w.end)),
            "probability": round(float(w.probability), 4)}

