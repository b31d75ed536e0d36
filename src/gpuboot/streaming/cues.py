"""Live subtitles: a stream's final words made into cues by ``make_subtitles``' broadcast rules, each cue given
out once no later word can change it: ``LiveCues``.

``make_subtitles`` cuts the words into sentences (a sentence mark, or a pause of ``SubtitleStyle.pause``;
a sentence too short to read joins the next), lays each sentence out alone, and times each cue against the
start of the next one.  So the cues of every sentence but the last are settled once the last one has begun:
appending words changes only the last sentence (``subtitles.layout.sentences`` decides where it starts).
Only the words from the first unsettled sentence on are laid out again, so the work per event stays
bounded however long the stream runs; ``finish`` lays out every word once more for the whole set, whose
cues start with the ones given out live.
"""

from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple

from ..subtitles import Subtitles, SubtitleStyle, make_subtitles
from ..subtitles.timing import Cue
from .records import LiveWord

__all__ = ["LiveCues"]


class _Segment(NamedTuple):
    """The shape of a faster-whisper ``Segment`` that ``make_subtitles`` reads."""

    start: float
    end: float
    text: str
    words: Sequence[LiveWord]


def _segment(words: Sequence[LiveWord]) -> _Segment:
    return _Segment(start=words[0].start, end=words[-1].end, text="".join(w.word for w in words), words=words)


class LiveCues:
    """Cues of one stream's final words (not thread-safe: the stream calls it under its lock)."""

    def __init__(self, style: Optional[SubtitleStyle], language: Optional[str]) -> None:
        self.style = style or SubtitleStyle()
        self.language = language
        self.words: List[LiveWord] = []
        self.cues: List[Cue] = []
        self._open = 0  # index of the first word not in a settled sentence

    def add(self, words: Sequence[LiveWord], language: Optional[str] = None) -> List[Cue]:
        """Append final ``words``; returns the cues that became settled."""
        from ..subtitles.layout import sentences
        from ..subtitles.units import units_of

        self.language = self.language or language
        self.words.extend(words)
        pending = self.words[self._open:]
        if not pending:
            return []
        style = self.style._replace(language=self.language) if self.language else self.style
        lang = style.check().lang("".join(w.word for w in pending[:50]))
        units, _ = units_of([_segment(pending)], lang)
        groups = sentences(units, style, lang)
        if len(groups) < 2:
            return []
        last = groups[-1][0].start
        laid = make_subtitles([_segment(pending)], style=style, language=lang.code or None).cues
        settled = [c for c in laid if c.speech_end <= last and c.speech_start < last]
        self.cues.extend(settled)
        self._open += next(i for i, w in enumerate(pending) if w.start >= last)
        return settled

    def finish(self, duration: Optional[float]) -> Subtitles:
        """Every final word as one set of cues (``make_subtitles``, its conformance report included)."""
        style = self.style._replace(language=self.language) if self.language else self.style
        segments = [_segment(self.words)] if self.words else []
        return make_subtitles(segments, style=style, duration=duration)

    @property
    def settled(self) -> Tuple[Cue, ...]:
        return tuple(self.cues)
