"""The subtitle measures of issue-style acceptance, over cues made by gpuboot (or parsed from its files).

``measure(subs, starts, reference, text)``: shares of cues within 2 lines x the line width and the longest
duration, at least the shortest duration, gaps of at least the minimum, short gaps chained, within the reading
speed, two-line cues without a first line ending in a word kept with the next, known sentence starts with a cue
starting within 0.6 s, and the WER of ``text`` against ``reference`` (jiwer, tests/speech.py).
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from speech import wer


def measure(subs: Any, starts: Sequence[Tuple[float, str]], reference: str, text: str) -> Dict[str, float]:
    from gpuboot.subtitles.breaks import keeps_next
    from gpuboot.subtitles.languages import width

    style, report = subs.style, subs.report
    cues = list(subs.cues)
    max_line = report.limits["max_line"]
    within = [c for c in cues if len(c.lines) <= style.max_lines and all(width(x) <= max_line for x in c.lines)
              and c.duration <= style.max_duration + 0.5 / style.fps]
    long_enough = [c for c in cues if c.duration >= style.min_duration - 0.5 / style.fps]
    gaps = [b.start - a.end for a, b in zip(cues, cues[1:])]
    short = [g for g in gaps if g < style.chain_below - 0.5 / style.fps]
    chained = [g for g in short if abs(g - style.min_gap) <= 0.5 / style.fps]
    cps = report.limits["max_cps"]
    readable = [c for c in cues if c.characters / max(c.duration, 1e-3) <= cps + 0.05]
    two = [c for c in cues if len(c.lines) >= 2]
    bad = [c for c in two if keeps_next(c.lines[0].split()[-1], subs.language or "en")]
    hits = [t for t, _ in starts if any(abs(t - c.start) <= 0.6 for c in cues)]
    return {
        "cues": float(len(cues)),
        "within_lines_and_7s": len(within) / len(cues),
        "min_duration": len(long_enough) / len(cues),
        "gaps_min_frames": 1.0 if not gaps else sum(g >= style.min_gap - 0.5 / style.fps for g in gaps) / len(gaps),
        "short_gaps_chained": 1.0 if not short else len(chained) / len(short),
        "reading_speed": len(readable) / len(cues),
        "bad_line_breaks": 0.0 if not two else len(bad) / len(two),
        "sentence_starts": len(hits) / len(starts),
        "wer": wer(text, reference),
    }


def examples(subs: Any) -> List[str]:
    """Each cue as one line, for assertion messages."""
    return [f"{c.start:.2f}-{c.end:.2f} {' / '.join(c.lines)}" for c in subs.cues]
