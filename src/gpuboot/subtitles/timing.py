"""When each cue shows: on frames, long enough to read, apart from its neighbours, never past the audio.

In order, for each cue (``SubtitleStyle``'s values):

1. the in-cue on the frame where its first word starts, the out-cue on the
   frame where its last word ends;
2. the out-cue moved later, into the silence after it, as far as the cue
   needs to be on screen ``min_duration`` and slow enough to read
   (``max_cps``) -- Netflix's timing guidelines let the out-time run past the
   end of speech for reading speed -- never closer than ``min_gap_frames`` to
   the next cue, never longer than ``max_duration``, never past the end of
   the audio;
3. a gap to the next cue shorter than ``chain_frames`` closed to
   ``min_gap_frames`` (chaining); a gap shorter than ``min_gap_frames``
   opened by moving the out-cue earlier.

Where speech leaves no room (a 0.3 s word between two close sentences), the
cue keeps the speech's timing; the conformance report counts it as such.
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

from ..base.record import Record
from .languages import width
from .style import SubtitleStyle

__all__ = ["Cue", "time_cues"]


class Cue(Record):
    """One subtitle cue.

    Attributes:
        start, end: seconds from the start of the audio (on frame boundaries once timed).
        lines: the text, at most ``SubtitleStyle.max_lines`` lines.
        words: ``(start, end, text)`` of each unit, when word timings were given.
        speech_start, speech_end: when its speech starts and ends, seconds.
    """

    start: float
    end: float
    lines: Tuple[str, ...]
    words: Tuple[Tuple[float, float, str], ...] = ()
    speech_start: float = 0.0
    speech_end: float = 0.0

    @property
    def text(self) -> str:
        """The lines joined: by a space where the script uses spaces (the first line's last and the second's
        first characters are letters of a spaced script), else directly."""
        out = ""
        for line in self.lines:
            if out and (out[-1].isascii() or line[:1].isascii()) and not _unspaced(out[-1] + line[:1]):
                out += " "
            out += line
        return out

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def characters(self) -> int:
        """Characters a reader reads (``languages.width`` of every line)."""
        return sum(width(line) for line in self.lines)


def _unspaced(pair: str) -> bool:
    return any("\u0e00" <= ch <= "\u17ff" or "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" for ch in pair)


def _frame(seconds: float, fps: float, up: bool = False) -> float:
    """``seconds`` on a frame boundary (rounded; ``up``: the next boundary at or after it)."""
    frames = seconds * fps
    k = math.ceil(frames - 1e-6) if up else round(frames)
    return k / fps


def time_cues(cues: List[Cue], style: SubtitleStyle, max_cps: float, audio_end: Optional[float] = None) -> List[Cue]:
    """``cues`` timed by the rules above (``max_cps``: the language's reading speed)."""
    fps = style.fps
    end_of_audio = _frame(audio_end, fps) if audio_end is not None else None
    out: List[Cue] = []
    for c in cues:
        start = _frame(c.speech_start, fps)
        end = max(_frame(c.speech_end, fps, up=True), start + 1 / fps)
        if end_of_audio is not None:
            start, end = min(start, end_of_audio - 1 / fps), min(end, end_of_audio)
        out.append(c._replace(start=max(0.0, start), end=end))
    for i, c in enumerate(out):
        nxt = out[i + 1].start if i + 1 < len(out) else None
        limit = min(x for x in (nxt - style.min_gap if nxt is not None else math.inf,
                                end_of_audio if end_of_audio is not None else math.inf,
                                c.start + style.max_duration) if x is not None)
        need = max(c.start + style.min_duration, c.start + c.characters / max_cps)
        end = _frame(min(max(c.end, need), limit), fps, up=True)
        end = min(end, _frame(limit, fps)) if end > limit + 1e-9 else end
        if end < c.end:  # the next cue starts too soon: keep speech timing, apart by the gap if it can be
            end = max(c.start + 1 / fps, min(c.end, _frame(limit, fps)))
        out[i] = c._replace(end=end)
    for i in range(len(out) - 1):
        a, b = out[i], out[i + 1]
        gap = b.start - a.end
        if gap < style.chain_below - 1e-6:  # chain: close the gap to the minimum, or open one that is too small
            new_end = _frame(b.start - style.min_gap, fps)
            if new_end > a.start:
                out[i] = a._replace(end=min(new_end, a.start + style.max_duration))
    return out
