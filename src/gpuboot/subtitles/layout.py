"""Cues from units: where a cue ends and where its line breaks, by the line-treatment rules.

A sentence that fits one cue is one cue.  A longer one is cut where the rules
prefer (after a clause mark, before a conjunction or preposition, never after
a word ``breaks.KEEP_WITH_NEXT`` keeps with the next) into pieces that each fit
the limits -- lines and characters per line, seconds on screen, reading speed
over the time the piece can stay up -- with as few pieces as that allows and
no piece too short to read: a small dynamic programme over the cut points.
Each piece's lines are then chosen the same way: one line when it fits, else
the break the rules prefer among those that keep both lines within the width,
lines as even as possible.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from .breaks import keeps_next
from .languages import Language, width
from .style import SubtitleStyle
from .units import Unit, ends_clause, ends_sentence, join

__all__ = ["wrap_units", "split_sentence", "break_cost"]


def break_cost(left: Unit, right: Optional[Unit], lang: Language) -> float:
    """How much the rules mind a break after ``left`` (before ``right``): 0 after punctuation, small before a
    word a line may start with, large after a word kept with the next or inside a name."""
    if ends_sentence(left, lang) or ends_clause(left):
        return 0.0
    if keeps_next(left.text, lang.code):
        return 40.0
    if right is not None and lang.spaced and left.text[:1].isupper() and right.text[:1].isupper():
        return 25.0  # "Abraham / Lincoln": a first name and a last name
    if right is not None and keeps_next(right.text, lang.code):
        return 1.0  # before a conjunction, preposition, article...: where the rules break
    return 4.0


def wrap_units(units: Sequence[Unit], max_line: int, max_lines: int, lang: Language) -> Optional[List[str]]:
    """``units`` as at most ``max_lines`` lines of at most ``max_line`` characters (``width``), or ``None``
    when they do not fit.  One line when it fits; else the best break by ``break_cost`` and evenness."""
    found = _wrap(units, max_line, max_lines, lang)
    return found[1] if found is not None else None


def _wrap(units: Sequence[Unit], max_line: int, max_lines: int, lang: Language) -> Optional[Tuple[float, List[str]]]:
    """``(cost of the line break, lines)``, or ``None`` when ``units`` do not fit."""
    text = join(units)
    if width(text) <= max_line:
        return 0.0, [text]
    if max_lines < 2 or len(units) < 2:
        return None
    if max_lines > 2:
        lines = _greedy(units, max_line, max_lines)
        return (0.0, lines) if lines is not None else None
    best: Optional[Tuple[float, List[str]]] = None
    for i in range(1, len(units)):
        a, b = join(units[:i]), join(units[i:])
        wa, wb = width(a), width(b)
        if max(wa, wb) > max_line:
            continue
        cost = break_cost(units[i - 1], units[i], lang) + abs(wa - wb) * 0.25 + (2.0 if wa > wb + 6 else 0.0)
        if best is None or cost < best[0]:
            best = (cost, [a, b])
    return best


def _greedy(units: Sequence[Unit], max_line: int, max_lines: int) -> Optional[List[str]]:
    lines: List[List[Unit]] = [[]]
    for u in units:
        if lines[-1] and width(join([*lines[-1], u])) > max_line:
            lines.append([])
        lines[-1].append(u)
    texts = [join(line) for line in lines]
    return texts if len(texts) <= max_lines and all(width(t) <= max_line for t in texts) else None


def _reading(units: Sequence[Unit], room: float, style: SubtitleStyle, lang: Language) -> float:
    """Characters per second of ``units`` over the time they can stay up (speech, plus ``room`` after it)."""
    seconds = max(units[-1].end - units[0].start + room, 1e-3)
    return width(join(units)) / seconds


def split_sentence(units: List[Unit], after: Optional[float], style: SubtitleStyle, lang: Language) -> List[List[Unit]]:
    """One sentence's units as cue-sized pieces.  ``after``: when the next speech starts (``None``: the end).

    Hard limits: lines and width (a single unit wider than the lines is a piece of its own), ``max_duration``.
    Costs: three per piece (a two-line cue is better than two cues), the break cost at each cut and of the
    lines' break, reading speed over the limit, a piece shorter than
    ``min_duration`` with little room after it."""
    n = len(units)
    max_line, cps = style.line_limit(lang), style.cps_limit(lang)

    def room(end: int) -> float:
        nxt = units[end].start if end < n else after
        gap = (nxt - units[end - 1].end) if nxt is not None else style.extension
        return max(0.0, min(gap - style.min_gap, style.max_duration))

    best: List[Optional[Tuple[float, int]]] = [None] * (n + 1)
    best[0] = (0.0, 0)
    for end in range(1, n + 1):
        for start in range(end - 1, -1, -1):
            piece = units[start:end]
            span = piece[-1].end - piece[0].start
            if span > style.max_duration and end - start > 1:
                break
            wrapped = _wrap(piece, max_line, style.max_lines, lang)
            if wrapped is None and end - start > 1:
                break
            if best[start] is None:
                continue
            extra = room(end)
            cost = 3.0 + (break_cost(units[end - 1], units[end] if end < n else None, lang) if end < n else 0.0)
            cost += (wrapped[0] if wrapped is not None else 0.0) * 0.5
            if end < n and ends_clause(units[end - 1]) and units[end].start - units[end - 1].end >= style.clause_pause:
                cost -= 2.0  # a clause mark and a pause: where speakers (and sentences Whisper joined by commas) turn
            speed = _reading(piece, min(extra, style.max_duration - span), style, lang)
            if speed > cps:
                cost += 6.0 * (speed / cps - 1.0) * 10
            if span + min(extra, style.extension * 3) < style.min_duration:
                cost += 8.0
            total = best[start][0] + cost  # type: ignore[index]
            if best[end] is None or total < best[end][0]:  # type: ignore[index]
                best[end] = (total, start)
    cuts: List[int] = []
    end = n
    while end > 0:
        entry = best[end]
        assert entry is not None
        cuts.append(end)
        end = entry[1]
    cuts.reverse()
    out, start = [], 0
    for end in cuts:
        out.append(units[start:end])
        start = end
    return out


def sentences(units: List[Unit], style: SubtitleStyle, lang: Language) -> List[List[Unit]]:
    """``units`` cut into sentences: a sentence mark (not an abbreviation's stop) or a pause of ``style.pause``.
    (A clause mark followed by ``style.clause_pause`` of silence is a preferred cut inside ``split_sentence``.)"""
    out: List[List[Unit]] = []
    cur: List[Unit] = []
    for i, u in enumerate(units):
        cur.append(u)
        gap = units[i + 1].start - u.end if i + 1 < len(units) else 0.0
        if ends_sentence(u, lang) or gap >= style.pause:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return _join_short(out, style)


def _join_short(parts: List[List[Unit]], style: SubtitleStyle) -> List[List[Unit]]:
    """A sentence too short to read that the next speech follows too closely to give it time ("We must."
    right before "Therefore, ...") goes with the next one; ``split_sentence`` then cuts where the rules prefer."""
    out: List[List[Unit]] = []
    i = 0
    while i < len(parts):
        cur = parts[i]
        while i + 1 < len(parts):
            nxt = parts[i + 1]
            span = cur[-1].end - cur[0].start
            room = nxt[0].start - cur[-1].end
            if span + max(room - style.min_gap, 0.0) >= style.min_duration or room >= style.pause:
                break
            cur = cur + nxt
            i += 1
        out.append(cur)
        i += 1
    return out
