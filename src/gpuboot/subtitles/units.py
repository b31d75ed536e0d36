"""Words as a subtitle joins them: faster-whisper's words (or a segment's text) into units that are never split.

faster-whisper hands words over with the space that precedes them (``" the"``)
and pieces of a word without one (``"-evident"`` after ``" self"``, ``"'s"``);
Chinese and Japanese words come without spaces at all.  So text is joined as
the model wrote it -- never by inserting a space -- and a piece without a
space is kept with the word before it.  In scripts written without spaces
every word (or character, without word timings) is a unit a line may break
after; a punctuation mark stays with what precedes it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Iterable, List, NamedTuple, Tuple

from .breaks import is_abbreviation
from .languages import CLAUSE_MARKS, SENTENCE_MARKS, Language

__all__ = ["Unit", "units_of", "join", "ends_sentence", "ends_clause"]

_CLOSERS = "\"'”’»)]」』）"
_PUNCT_ONLY = re.compile(r"^[\s\W_]+$", re.UNICODE)


class Unit(NamedTuple):
    """A run of text a line never breaks inside: ``start``/``end`` seconds, ``text`` without its leading space,
    ``space`` whether a space comes before it."""

    start: float
    end: float
    text: str
    space: bool


def join(units: Iterable[Unit]) -> str:
    """The text of ``units`` as written: a space only where the model put one."""
    out = []
    for i, u in enumerate(units):
        out.append((" " if u.space and i else "") + u.text)
    return "".join(out)


def ends_sentence(unit: Unit, lang: Language) -> bool:
    text = unit.text.rstrip(_CLOSERS)
    return bool(text) and text[-1] in SENTENCE_MARKS and not is_abbreviation(unit.text, lang.code)


def ends_clause(unit: Unit) -> bool:
    text = unit.text.rstrip(_CLOSERS)
    return bool(text) and text[-1] in CLAUSE_MARKS


def _graphemes(text: str) -> List[str]:
    """``text`` cut into characters with their combining marks (Thai tone marks stay on their consonant)."""
    out: List[str] = []
    for ch in text:
        if out and unicodedata.category(ch) in ("Mn", "Mc", "Me"):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _tokens(text: str, lang: Language) -> List[Tuple[str, bool]]:
    """A segment's text as ``(token, space before)`` when there are no word timings: words of a spaced script;
    characters of CJK; space-separated phrases of Thai, Lao, Burmese and Khmer (cut into characters when a
    phrase is longer than a line)."""
    out: List[Tuple[str, bool]] = []
    if lang.spaced:
        return [(w, True) for w in text.split()]
    for i, phrase in enumerate(text.split()):
        cjk = lang.code in ("zh", "ja") or any("\u3040" <= ch <= "\u9fff" for ch in phrase)
        pieces = _graphemes(phrase) if cjk or len(phrase) > lang.max_line else [phrase]
        for j, piece in enumerate(pieces):
            out.append((piece, i > 0 and j == 0))
    return out


def _attach(units: List[Unit], start: float, end: float, text: str, space: bool, lang: Language) -> None:
    """Append a word as a unit, or to the previous unit when it is a piece of it."""
    if not text:
        return
    piece = bool(units) and not space and (lang.spaced or bool(_PUNCT_ONLY.match(text)))
    if piece:
        last = units[-1]
        units[-1] = Unit(last.start, max(last.end, end), last.text + text, last.space)
    else:
        units.append(Unit(start, end, text, space))


def units_of(segments: Iterable[Any], lang: Language) -> Tuple[List[Unit], bool]:
    """``(units, timed)``: the units of faster-whisper ``segments`` (``start``, ``end``, ``text`` and, decoded
    with ``word_timestamps=True``, ``words``), and whether every one had word timings (else a segment's time is
    shared out by characters: an estimate)."""
    units: List[Unit] = []
    timed = True
    for segment in segments:
        words = getattr(segment, "words", None)
        if words:
            for w in words:
                raw = str(w.word)
                _attach(units, float(w.start), float(w.end), raw.strip(), raw[:1].isspace() or not units, lang)
            continue
        timed = False
        tokens = _tokens(str(segment.text).strip(), lang)
        if not tokens:
            continue
        total = sum(len(t) + 1 for t, _ in tokens)
        t0, span = float(segment.start), max(0.0, float(segment.end) - float(segment.start))
        pos = 0
        for text, space in tokens:
            a = t0 + span * pos / total
            pos += len(text) + 1
            _attach(units, a, t0 + span * pos / total, text, space or not units, lang)
    return units, timed
