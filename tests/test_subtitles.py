"""Subtitles by broadcast rules, from word lists shaped like faster-whisper's output (``Word``: ``start``, ``end``,
``word`` with the space the model puts before it, ``probability``; ``Segment``: ``start``, ``end``, ``text``,
``words``), in every script; every file written is parsed back with ``srt`` / ``webvtt-py``."""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import List, Sequence, Tuple

import pytest
import srt
import webvtt
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuboot import check_subtitles, make_subtitles
from gpuboot.cli import main
from gpuboot.subtitles.breaks import keeps_next
from gpuboot.subtitles.languages import width


class Word:
    def __init__(self, start: float, end: float, word: str) -> None:
        self.start, self.end, self.word, self.probability = start, end, word, 0.9


class Segment:
    def __init__(self, words: Sequence[Word], text: str = "") -> None:
        self.words = list(words)
        self.start, self.end = (words[0].start, words[-1].end) if words else (0.0, 0.0)
        self.text = text or "".join(w.word for w in words)


class Info:
    def __init__(self, language: str, duration: float) -> None:
        self.language, self.duration = language, duration


def spoken(text: str, start: float = 0.0, step: float = 0.35, spaced: bool = True) -> List[Word]:
    """Words of ``text`` (split on spaces; ``spaced=False``: on ``|``) every ``step`` seconds, as faster-whisper
    hands them over: a leading space for spaced scripts, none for unspaced ones."""
    out = []
    for w in (text.split() if spaced else text.split("|")):
        out.append(Word(start, start + step - 0.05, (" " + w) if spaced else w))
        start += step
    return out


def cues_of(words: Sequence[Word], language: str = "en", duration: float = 600.0, **rules: object) -> Tuple:
    subs = make_subtitles([Segment(words)], Info(language, duration), **rules)
    return subs, list(subs.cues)


# --------------------------------------------------------------------------- joining words as written


def test_hyphenated_words_abbreviations_and_contractions_are_joined_as_written() -> None:
    words = [Word(0.0, 0.3, " Mr."), Word(0.3, 0.6, " Smith"), Word(0.6, 0.9, " said"), Word(0.9, 1.2, " it"),
             Word(1.2, 1.5, " was"), Word(1.5, 1.8, " self"), Word(1.8, 2.2, "-evident"), Word(2.2, 2.5, " and"),
             Word(2.5, 2.8, " he"), Word(2.8, 3.0, " didn"), Word(3.0, 3.2, "'t"), Word(3.2, 3.6, " care.")]
    _subs, cues = cues_of(words)
    assert [c.text for c in cues] == ["Mr. Smith said it was self-evident and he didn't care."]
    assert cues[0].words[5][2] == "self-evident"  # a piece without a space is part of the word before


def test_an_initial_does_not_end_a_sentence_but_a_full_stop_does() -> None:
    _subs, cues = cues_of(spoken("J. R. Smith arrived. Then he left at once."))
    assert [c.text for c in cues] == ["J. R. Smith arrived.", "Then he left at once."]


def test_chinese_is_never_given_spaces() -> None:
    words = spoken("我们|今天|去|学校。|明天|我们|还要|再去|一次，|因为|老师|说|还有|很多|内容|没有|讲完。",
                   spaced=False)
    subs, cues = cues_of(words, "zh")
    assert all(" " not in line for c in cues for line in c.lines)
    assert "".join(c.text for c in cues) == "我们今天去学校。明天我们还要再去一次，因为老师说还有很多内容没有讲完。"
    assert cues[0].text == "我们今天去学校。"  # 。 ends a sentence
    assert all(width(line) <= 16 for c in cues for line in c.lines) and subs.report.limits["max_line"] == 16
    assert subs.report.limits["max_cps"] == 9.0


def test_japanese_full_width_marks_and_its_own_limits() -> None:
    words = spoken("今日は|とても|いい|天気|ですね。|明日も|晴れる|でしょうか？|散歩に|行きましょう！", spaced=False,
                   step=0.5)
    _subs, cues = cues_of(words, "ja")
    assert [c.text for c in cues][:2] == ["今日はとてもいい天気ですね。", "明日も晴れるでしょうか？"]
    assert all(width(line) <= 13 for c in cues for line in c.lines)
    assert all(" " not in c.text for c in cues)


def test_without_word_timings_unspaced_text_is_split_by_characters_within_the_limits() -> None:
    class Plain:
        start, end, words = 0.0, 20.0, None
        text = "我们今天去学校了，然后我们在那里学习了很多东西。明天我们还要再去一次，因为老师说还有很多内容没有讲完。"

    subs = make_subtitles([Plain()], duration=21.0)
    assert subs.language == "zh" and not subs.timed  # the script decides the language when none is given
    assert len(subs.cues) >= 3
    for c in subs.cues:
        assert " " not in c.text and all(width(line) <= 16 for line in c.lines) and c.duration <= 7.0
    assert "".join(c.text for c in subs.cues) == Plain.text


def test_thai_keeps_tone_marks_on_their_consonant_and_counts_them_as_nothing() -> None:
    assert width("ผู้ใหญ่") == 4  # ผ ใ ห ญ: the vowel and tone marks above and below (ู ้ ่) take no width
    words = spoken("สวัสดี|ครับ|วันนี้|อากาศ|ดี|มาก", spaced=False)
    _subs, cues = cues_of(words, "th")
    assert "".join(c.text for c in cues) == "สวัสดีครับวันนี้อากาศดีมาก"


def test_right_to_left_text_is_kept_in_logical_order_with_its_punctuation() -> None:
    words = spoken("שלום, מה שלומך? אני בסדר.")
    subs, cues = cues_of(words, "he")
    assert [c.text for c in cues] == ["שלום, מה שלומך?", "אני בסדר."]
    assert subs.srt.splitlines()[2] == "שלום, מה שלומך?"  # the file stores logical order; the player lays it out
    _arabic, cues_ar = cues_of(spoken("مرحبا، كيف حالك؟ أنا بخير."), "ar")
    assert [c.text for c in cues_ar] == ["مرحبا، كيف حالك؟", "أنا بخير."]  # ؟ ends a sentence


# --------------------------------------------------------------------------- line treatment


def test_lines_break_after_punctuation_and_never_after_a_word_kept_with_the_next() -> None:
    text = ("Both parties deprecated war, but one of them would make war rather than let the nation survive, and "
            "the other would accept war rather than let it perish, and the war came.")
    _subs, cues = cues_of(spoken(text, step=0.3))
    for c in cues:
        assert len(c.lines) <= 2 and all(width(x) <= 42 for x in c.lines)
        if len(c.lines) == 2:
            assert not keeps_next(c.lines[0].split()[-1], "en"), c.lines
    assert " ".join(c.text for c in cues) == text


def test_a_first_and_last_name_stay_on_one_line() -> None:
    text = "Yesterday afternoon the delegates finally met Abraham Lincoln in the old town hall building."
    _subs, cues = cues_of(spoken(text, step=0.25))
    assert any("Abraham Lincoln" in line for c in cues for line in c.lines)


# --------------------------------------------------------------------------- timing


def test_short_cues_are_held_to_the_minimum_and_gaps_are_chained() -> None:
    words = spoken("Yes.", 1.0, 0.3) + spoken("No way.", 2.2, 0.3) + spoken("Finally we agree.", 5.0)
    subs, cues = cues_of(words)
    style = subs.style
    assert cues[0].duration >= style.min_duration - 1e-9  # "Yes." held to 5/6 s...
    assert abs((cues[1].start - cues[0].end) - style.min_gap) < 1e-9  # ...and chained: 2 frames to the next
    assert cues[1].end - cues[1].start >= style.min_duration - 1e-9
    assert cues[2].start == pytest.approx(5.0, abs=1 / 24)
    for c in cues:  # every time on a frame boundary
        assert abs(c.start * 24 - round(c.start * 24)) < 1e-6 and abs(c.end * 24 - round(c.end * 24)) < 1e-6
    assert subs.report.ok


def test_a_short_sentence_right_before_the_next_goes_with_it() -> None:
    words = [*spoken("It is done.", 0.0, 0.4), Word(1.25, 1.45, " Go!"), *spoken("And then we all went home.", 1.6)]
    _subs, cues = cues_of(words)
    assert [c.text for c in cues] == ["It is done.", "Go! And then we all went home."]


def test_where_the_speech_leaves_no_room_the_cue_keeps_its_timing_and_is_reported() -> None:
    words = [Word(0.0, 0.4, " Stop."), Word(0.6, 2.5, " Nooo.")]  # together they would be on screen over 2 s
    subs, cues = cues_of(words, min_duration=1.5, max_duration=2.0)
    stop = cues[0]
    assert stop.text == "Stop." and stop.duration < 1.5
    assert subs.report.broken["min-duration"] == subs.report.speech_bound["min-duration"] >= 1
    assert subs.report.ok  # only what the speech forces


def test_reading_speed_is_met_by_using_the_silence_after_a_cue() -> None:
    fast = spoken("Unbelievably extraordinary circumstances materialized.", 0.0, 0.2)  # 0.8 s of speech
    subs, cues = cues_of(fast + spoken("Then silence.", 8.0))
    assert cues[0].characters / cues[0].duration <= 20.0 + 1e-6
    assert cues[0].end <= cues[1].start - subs.style.min_gap + 1e-9


def test_no_cue_goes_past_the_end_of_the_audio() -> None:
    subs, cues = cues_of(spoken("A last word at the very end."), duration=2.0)
    assert cues[-1].end <= 2.0 + 1e-9
    assert subs.report.broken["past-audio"] == 0


def test_other_frame_rates_and_rules_from_the_caller() -> None:
    words = spoken("Yes.", 1.0, 0.3) + spoken("No.", 2.2, 0.3)
    subs, cues = cues_of(words, fps=25.0, min_gap_frames=3, max_cps=15.0)
    assert abs((cues[1].start - cues[0].end) - 3 / 25) < 1e-9
    assert subs.report.limits["max_cps"] == 15.0 and subs.report.limits["fps"] == 25.0


@pytest.mark.parametrize("bad", [{"fps": float("nan")}, {"max_duration": float("inf")}, {"max_cps": 0},
                                 {"min_duration": 9.0}, {"min_gap_frames": -1}, {"max_lines": 0}, {"colour": 1}])
def test_rules_out_of_range_are_refused_with_their_name(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad)).replace("colour", "unknown") if "colour" in bad else
                       next(iter(bad))):
        make_subtitles([Segment(spoken("Hello there."))], **bad)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["the", "war", "of", "a", "nation,", "came.", "and", "I", "Lincoln",
                                            "extraordinary", "self", "it"]),
                          st.floats(0.05, 0.6), st.floats(0.0, 1.5)), min_size=1, max_size=60))
def test_any_word_stream_gives_cues_that_never_overlap_and_keep_every_word(stream: list) -> None:
    t, words = 0.0, []
    for text, dur, gap in stream:
        words.append(Word(t, t + dur, " " + text))
        t += dur + gap
    subs = make_subtitles([Segment(words)], Info("en", t + 1.0))
    cues = list(subs.cues)
    assert " ".join(c.text for c in cues).split() == [w.word.strip() for w in words]
    for a, b in zip(cues, cues[1:]):
        assert a.end <= b.start + 1e-9
    assert all(c.end <= t + 1.0 + 1e-9 and c.duration <= 7.0 + 1e-9 for c in cues)


# --------------------------------------------------------------------------- files and the check command


def test_files_parse_back_with_escaping_and_the_same_cues(tmp_path: Path) -> None:
    words = spoken("Tom & Jerry said <hello> and --> goodbye.")
    subs, cues = cues_of(words)
    parsed = list(srt.parse(subs.srt))
    assert [p.content for p in parsed] == ["\n".join(c.lines) for c in cues]
    assert [round(p.start.total_seconds(), 3) for p in parsed] == [round(c.start, 3) for c in cues]
    vtt = webvtt.from_buffer(io.StringIO(subs.vtt))
    assert "&amp;" in subs.vtt and "&lt;hello&gt;" in subs.vtt and "--&gt;" in subs.vtt
    assert [html.unescape(c.text) for c in vtt.captions] == ["\n".join(c.lines) for c in cues]
    (tmp_path / "a.srt").write_text(subs.srt)
    (tmp_path / "a.vtt").write_text(subs.vtt)
    for name in ("a.srt", "a.vtt"):
        report = check_subtitles(tmp_path / name, language="en")
        assert report.cues == len(cues) and report.ok


def test_check_finds_what_other_tools_write(tmp_path: Path) -> None:
    bad = tmp_path / "other.srt"
    bad.write_text("1\n00:00:00,000 --> 00:00:00,300\nHi.\n\n2\n00:00:00,300 --> 00:00:09,000\n"
                   "This single cue holds far too many characters to read, and it goes on and on for the whole\n"
                   "time without stopping.\n\n3\n00:00:09,020 --> 00:00:10,000\nWe met with the\nboard.\n\n")
    report = check_subtitles(bad, language="en")
    broken = {k: v for k, v in report.broken.items() if v}
    assert broken == {"min-duration": 1, "max-duration": 1, "line-length": 1, "gap": 2, "line-break": 1,
                      "reading-speed": 1} or broken.keys() >= {"min-duration", "max-duration", "line-length",
                                                              "line-break", "gap"}
    assert not report.ok and report.speech_bound == {k: 0 for k in report.broken}
    out, err = io.StringIO(), io.StringIO()
    assert main(["subtitles", "check", str(bad), "--language", "en"], stdout=out, stderr=err) == 1
    assert "shorter on screen than allowed" in out.getvalue() and "cue 1:" in out.getvalue()
    out = io.StringIO()
    assert main(["subtitles", "check", str(bad), "--json"], stdout=out, stderr=err) == 1
    data = json.loads(out.getvalue())
    assert data["broken"]["max-duration"] == 1 and data["ok"] is False
    assert main(["subtitles", "check", str(tmp_path / "missing.srt")], stdout=io.StringIO(), stderr=err) == 1
    assert "missing.srt" in err.getvalue() and "Traceback" not in err.getvalue()
    with pytest.raises(SystemExit) as exc:
        main(["subtitles", "check", str(bad), "--fps", "nan"], stdout=io.StringIO(), stderr=io.StringIO())
    assert exc.value.code == 2
