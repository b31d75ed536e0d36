"""Readable subtitle cues from word timings: split at sentence, then clause, then word boundaries, lines balanced.

Common subtitle guidelines (broadcast and streaming style guides; openai-whisper's
``--max_line_width``/``--max_line_count``): a cue at most ~7 s long, at most 2
lines of ~42 characters, broken at the end of a sentence or a clause, lines of
similar length.  A cue starts at its first word's start and ends at its last
word's end, so cue starts follow speech, not decoding windows.

Without word timings (``word_timestamps=False``), a segment that does not fit is
split at the same boundaries with times shared out by characters, an estimate.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, List, Optional, Sequence, Tuple

from .._record import Record

__all__ = ["Cue", "make_cues", "wrap", "MAX_LINE_WIDTH", "MAX_LINE_COUNT", "MAX_CUE_DURATION"]

MAX_LINE_WIDTH = 42
MAX_LINE_COUNT = 2
MAX_CUE_DURATION = 7.0  # seconds
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*$")
_CLAUSE_END = re.compile(r"[,;:\u2014\u2013-][\"')\]]*$")  # comma, semicolon, colon, dashes
#: A pause this long (seconds) between two words ends a cue, as a sentence end does.
PAUSE = 1.0


class Cue(Record):
    """One subtitle cue.

    Attributes:
        start, end: seconds from the start of the audio.
        lines: the text, wrapped into at most ``MAX_LINE_COUNT`` balanced lines.
        words: ``(start, end, word)`` of each word, when word timings were given.
    """

    start: float
    end: float
    lines: Tuple[str, ...]
    words: Tuple[Tuple[float, float, str], ...] = ()

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def wrap(words: Sequence[str], width: int = MAX_LINE_WIDTH, max_lines: int = MAX_LINE_COUNT) -> Optional[List[str]]:
    """``words`` as at most ``max_lines`` lines of at most ``width`` characters:
    one line when it fits, else the longest line as short as possible
    (balanced; a break after punctuation wins a near tie), or ``None`` when
    they do not fit."""
    if not words:
        return []
    text = " ".join(words)
    if len(text) <= width:
        return [text]
    if max_lines < 2:
        return None
    return _balanced(words, width) if max_lines == 2 else _greedy(words, width, max_lines)


def _balanced(words: Sequence[str], width: int) -> Optional[List[str]]:
    best: Optional[Tuple[Tuple[int, int], List[str]]] = None
    one = " ".join(words)
    if len(one) <= width:
        best = ((len(one), 1), [one])
    for i in range(1, len(words)):
        a, b = " ".join(words[:i]), " ".join(words[i:])
        longest = max(len(a), len(b))
        if longest > width:
            continue
        punct = 0 if _CLAUSE_END.search(words[i - 1]) or _SENTENCE_END.search(words[i - 1]) else 1
        key = (longest + (4 if punct else 0), punct)
        if best is None or key < best[0]:
            best = (key, [a, b])
    return best[1] if best else None


def _greedy(words: Sequence[str], width: int, max_lines: int) -> Optional[List[str]]:
    lines: List[str] = []
    cur = ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    lines.append(cur)
    return lines if len(lines) <= max_lines and all(len(x) <= width for x in lines) else None


def _fits(words: Sequence[Tuple[float, float, str]], width: int, max_lines: int, max_duration: float) -> bool:
    if not words:
        return True
    if len(words) > 1 and words[-1][1] - words[0][0] > max_duration:
        return False
    return len(words) == 1 or wrap([w[2] for w in words], width, max_lines) is not None


def _split(words: List[Tuple[float, float, str]], width: int, max_lines: int,
           max_duration: float) -> List[List[Tuple[float, float, str]]]:
    """One sentence's words as cues that fit: the longest prefix that fits, cut
    back to its last clause end when that keeps at least a third of it; a
    short remainder is avoided by halving the rest when both halves fit."""
    out: List[List[Tuple[float, float, str]]] = []
    rest = list(words)
    while rest:
        n = 1
        while n < len(rest) and _fits(rest[:n + 1], width, max_lines, max_duration):
            n += 1
        if n < len(rest):
            clause = [i + 1 for i in range(n - 1) if _CLAUSE_END.search(rest[i][2])]
            if clause and clause[-1] * 3 >= n:
                n = clause[-1]
            elif len(rest) - n < n // 2:
                half = (len(rest) + 1) // 2
                if _fits(rest[:half], width, max_lines, max_duration) and _fits(rest[half:], width, max_lines,
                                                                                   max_duration):
                    n = half
        out.append(rest[:n])
        rest = rest[n:]
    return out


def _words_of(segments: Iterable[Any]) -> Tuple[List[Tuple[float, float, str]], bool]:
    words: List[Tuple[float, float, str]] = []
    timed = True
    for s in segments:
        seg_words = getattr(s, "words", None)
        if seg_words:
            words.extend((float(w.start), float(w.end), str(w.word).strip()) for w in seg_words if str(w.word).strip())
            continue
        timed = False
        tokens = str(s.text).split()
        if not tokens:
            continue
        total = sum(len(t) + 1 for t in tokens)
        t0, span = float(s.start), max(0.0, float(s.end) - float(s.start))
        pos = 0
        for t in tokens:  # times shared out by characters: an estimate
            a = t0 + span * pos / total
            pos += len(t) + 1
            words.append((a, t0 + span * pos / total, t))
    return words, timed


def make_cues(segments: Iterable[Any], *, max_line_width: int = MAX_LINE_WIDTH, max_line_count: int = MAX_LINE_COUNT,
              max_cue_duration: float = MAX_CUE_DURATION) -> List[Cue]:
    """Cues from faster-whisper ``Segment`` s (with ``words`` when decoded with
    ``word_timestamps=True``): each sentence (or a pause of ``PAUSE`` s) starts a cue; a sentence that does
    not fit is split at clause, then word boundaries; each cue's lines balanced.

    Args:
        segments: faster-whisper segments (``start``, ``end``, ``text``, ``words``).
        max_line_width: characters per line.
        max_line_count: lines per cue.
        max_cue_duration: seconds per cue.

    Raises:
        ValueError: a limit below 1 (or a duration not above 0).
    """
    if max_line_width < 1 or max_line_count < 1 or max_cue_duration <= 0:
        raise ValueError("max_line_width and max_line_count must be >= 1 and max_cue_duration > 0")
    words, timed = _words_of(segments)
    sentences: List[List[Tuple[float, float, str]]] = []
    cur: List[Tuple[float, float, str]] = []
    for i, w in enumerate(words):
        cur.append(w)
        pause = i + 1 < len(words) and words[i + 1][0] - w[1] >= PAUSE
        if _SENTENCE_END.search(w[2]) or pause:
            sentences.append(cur)
            cur = []
    if cur:
        sentences.append(cur)
    cues: List[Cue] = []
    for sentence in sentences:
        for part in _split(sentence, max_line_width, max_line_count, max_cue_duration):
            texts = [w[2] for w in part]
            lines = wrap(texts, max_line_width, max_line_count) or [" ".join(texts)]
            cues.append(Cue(start=part[0][0], end=max(part[-1][1], part[0][0]), lines=tuple(lines),
                            words=tuple(part) if timed else ()))
    for i in range(len(cues) - 1):  # never overlap the next cue
        if cues[i].end > cues[i + 1].start:
            cues[i] = cues[i]._replace(end=max(cues[i].start, cues[i + 1].start))
    return cues
