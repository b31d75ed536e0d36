"""How many cues break each rule: the conformance report of a cue list (gpuboot's own, or any subtitle file).

Rules (``SubtitleStyle``'s values; ``RULES`` names them): lines per cue, characters per
line, longest and shortest time on screen, the gap between cues (frames),
chaining of short gaps, reading speed, line breaks after a word the rules keep
with the next, a cue past the end of the audio, cues that overlap.  A cue that
breaks the shortest-time or reading-speed rule only because the next speech
follows too closely to give it more time is counted apart (``speech_bound``):
keeping the speech's timing is the right call there.  Times are compared in
frames, half a frame of tolerance (files store milliseconds).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..base.record import Record
from .breaks import keeps_next
from .languages import Language, width
from .style import SubtitleStyle
from .timing import Cue

__all__ = ["RULES", "Conformance", "conformance"]

#: Rule id -> what it checks, as the report names it.
RULES: Dict[str, str] = {
    "lines": "more lines than allowed",
    "line-length": "a line longer than allowed",
    "max-duration": "longer on screen than allowed",
    "min-duration": "shorter on screen than allowed",
    "gap": "closer to the next cue than the minimum gap",
    "unchained": "a short gap to the next cue left open (not chained)",
    "reading-speed": "faster than the reading speed",
    "line-break": "a two-line cue whose first line ends in a word kept with the next",
    "past-audio": "ends after the audio does",
    "overlap": "overlaps the next cue",
}


class Conformance(Record):
    """The report.

    Attributes:
        cues: cues checked.
        broken: rule id -> cues that break it (every rule present, 0 when none).
        speech_bound: rule id -> of those, the ones the speech's own timing forces.
        examples: ``(cue number from 1, rule id, what was measured)``, at most a few per rule.
        short_gaps, chained: gaps under ``chain_frames``, and how many of them are chained.
        two_line: cues with two lines or more.
        limits: the limits checked (for the report's words).
    """

    cues: int
    broken: Dict[str, int]
    speech_bound: Dict[str, int]
    examples: Tuple[Tuple[int, str, str], ...] = ()
    short_gaps: int = 0
    chained: int = 0
    two_line: int = 0
    limits: Optional[Dict[str, Any]] = None

    @property
    def ok(self) -> bool:
        """No cue breaks a rule except where the speech forces it."""
        return all(n == self.speech_bound.get(rule, 0) for rule, n in self.broken.items())

    def share(self, rule: str) -> float:
        """The share of cues (of gaps, for ``gap``/``unchained``; of two-line cues, for ``line-break``) that meet
        ``rule``, 0..1."""
        total = {"gap": max(self.cues - 1, 0), "unchained": self.short_gaps, "line-break": self.two_line}.get(
            rule, self.cues)
        return 1.0 if total == 0 else 1.0 - self.broken[rule] / total

    def summary(self) -> str:
        """One line for a terminal."""
        if not self.cues:
            return "subtitles: no cues"
        bad = [f"{n} {RULES[rule]}" + (f" ({self.speech_bound[rule]} kept to the speech)"
                                       if self.speech_bound.get(rule) else "")
               for rule, n in self.broken.items() if n]
        lim = self.limits or {}
        head = (f"subtitles: {self.cues} cues checked against {lim.get('max_lines')} x {lim.get('max_line')} "
                f"characters, {lim.get('min_duration', 0):.2f}-{lim.get('max_duration', 0):g} s, "
                f"{lim.get('min_gap_frames')} frames apart at {lim.get('fps'):g} fps, {lim.get('max_cps'):g} cps")
        return head + (": all met" if not bad else ": " + "; ".join(bad))

    def to_dict(self) -> Dict[str, Any]:
        return {"cues": self.cues, "broken": dict(self.broken), "speech_bound": dict(self.speech_bound),
                "short_gaps": self.short_gaps, "chained": self.chained, "two_line": self.two_line,
                "examples": [{"cue": i, "rule": r, "measured": m} for i, r, m in self.examples],
                "limits": dict(self.limits or {})}


def conformance(cues: Sequence[Cue], style: SubtitleStyle, lang: Language, audio_end: Optional[float] = None,
                timed: bool = True) -> Conformance:
    """Check ``cues`` against ``style`` for ``lang``.  ``timed``: the cues carry their speech times (gpuboot's
    own); for a file they do not, and nothing counts as speech-bound."""
    broken = {rule: 0 for rule in RULES}
    bound = {rule: 0 for rule in RULES}
    examples: List[Tuple[int, str, str]] = []
    fps, tol = style.fps, 0.5 / style.fps
    max_line, max_cps = style.line_limit(lang), style.cps_limit(lang)

    def hit(i: int, rule: str, measured: str, forced: bool = False) -> None:
        broken[rule] += 1
        bound[rule] += int(forced)
        if sum(1 for e in examples if e[1] == rule) < 3:
            examples.append((i + 1, rule, measured))

    short = chained = two = 0
    for i, c in enumerate(cues):
        nxt = cues[i + 1] if i + 1 < len(cues) else None
        room = ((nxt.start - style.min_gap) if nxt is not None else (audio_end if audio_end is not None else 1e9))
        no_room = timed and room - c.start < style.min_duration + tol
        if len(c.lines) > style.max_lines:
            hit(i, "lines", f"{len(c.lines)} lines")
        wide = max((width(line) for line in c.lines), default=0)
        if wide > max_line:
            hit(i, "line-length", f"{wide} characters")
        if c.duration > style.max_duration + tol:
            hit(i, "max-duration", f"{c.duration:.2f} s")
        if c.duration < style.min_duration - tol:
            hit(i, "min-duration", f"{c.duration:.2f} s", forced=no_room)
        cps = c.characters / max(c.duration, 1e-3)
        if cps > max_cps + 0.05:
            forced = timed and (c.end >= room - tol or c.duration >= style.max_duration - tol)
            hit(i, "reading-speed", f"{cps:.1f} cps", forced=forced)
        if len(c.lines) >= 2:
            two += 1
            last = c.lines[0].split()[-1] if lang.spaced and c.lines[0].split() else ""
            if last and keeps_next(last, lang.code):
                hit(i, "line-break", f"first line ends with {last!r}")
        if audio_end is not None and c.end > audio_end + tol:
            hit(i, "past-audio", f"ends at {c.end:.3f} s of {audio_end:.3f} s")
        if nxt is not None:
            gap = nxt.start - c.end
            if gap < -tol:
                hit(i, "overlap", f"{-gap:.3f} s")
            elif gap < style.min_gap - tol:
                hit(i, "gap", f"{round(gap * fps)} frames")
            if gap < style.chain_below - tol:
                short += 1
                if abs(gap - style.min_gap) <= tol:
                    chained += 1
                elif gap >= style.min_gap - tol:
                    hit(i, "unchained", f"gap of {round(gap * fps)} frames")
    limits = {"max_lines": style.max_lines, "max_line": max_line, "min_duration": style.min_duration,
              "max_duration": style.max_duration, "min_gap_frames": style.min_gap_frames, "fps": fps,
              "chain_frames": style.chain_frames, "max_cps": max_cps, "language": lang.code or None}
    return Conformance(cues=len(cues), broken=broken, speech_bound=bound, examples=tuple(examples),
                       short_gaps=short, chained=chained, two_line=two, limits=limits)
