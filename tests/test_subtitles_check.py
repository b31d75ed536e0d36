"""``gpuboot subtitles check`` judges a file by the rules it was made with: the language it names (a WebVTT
``Language:`` header, a ``NAME.LANG.srt`` name, ``--language``), the rules gpuboot's own transcript set records
in its ``.json``, else the defaults ``make_subtitles`` takes; and it refuses what is not an ordinary subtitle file
(a FIFO, ``/dev/zero``, a directory, an oversized file) up front, one line each, never a hang.  The same check on
real recordings transcribed by the command: tests/test_subtitles_real.py."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, List, Tuple

import pytest
import webvtt
from helpers import child_env
from test_subtitles import Info, Segment, spoken

from gpuboot import check_subtitles, make_subtitles
from gpuboot.cli import main
from gpuboot.subtitles.files import MAX_BYTES
from gpuboot.whisper.formats import render_outputs
from gpuboot.whisper.outsets import write_set


def _written(directory: Path, words: List[Any], language: str = "en", duration: float = 60.0,
             **rules: Any) -> Tuple[Path, Any]:
    """``talk.{srt,vtt,json}`` in ``directory`` as ``gpuboot transcribe`` writes a set (one stamp), and the
    subtitles they were made from."""
    segments = [Segment(words)]
    subs = make_subtitles(segments, Info(language, duration), **rules)
    extra = {"language": language, "duration_s": duration, "subtitles": subs.report.to_dict()}
    write_set(directory / "talk", render_outputs(segments, ["srt", "vtt", "json"], extra, subs))
    return directory / "talk", subs


def _fast(start: float = 0.0) -> List[Any]:
    """An English sentence spoken at 26 characters per second: its cue is lengthened into the pause after it, to
    English's 20 characters per second."""
    return spoken("Quickly spoken sentences reach beyond seventeen characters.", start, 0.3)


def test_the_vtt_names_its_language_and_webvtt_py_reads_it_back(tmp_path: Path) -> None:
    base, subs = _written(tmp_path, _fast())
    doc = webvtt.from_buffer(io.StringIO(base.with_suffix(".vtt").read_text()))  # webvtt-py>=0.6 (pyproject)
    assert doc.metadata == ["Language: en"] and len(doc.captions) == len(subs.cues)
    assert subs.report.ok and subs.report.limits["max_cps"] == 20.0


def test_a_file_alone_is_judged_by_the_language_it_names(tmp_path: Path) -> None:
    base, subs = _written(tmp_path, _fast())
    cps = max(c.characters / c.duration for c in subs.cues)
    assert 17.05 < cps <= 20.05, cps  # over the default 17, within English's 20
    alone = tmp_path / "alone"
    alone.mkdir()
    for suffix in (".srt", ".vtt"):  # copied without the .json: no set
        shutil.copy(base.with_suffix(suffix), alone / f"talk{suffix}")
    assert check_subtitles(alone / "talk.vtt").ok  # the Language: header
    unnamed = check_subtitles(alone / "talk.srt")  # SubRip has no header: the defaults (17 cps)
    assert not unnamed.ok and unnamed.broken["reading-speed"] == 1 and unnamed.limits["max_cps"] == 17.0
    shutil.copy(alone / "talk.srt", alone / "talk.en.srt")
    assert check_subtitles(alone / "talk.en.srt").ok  # the name's language tag, as media players read it
    assert check_subtitles(alone / "talk.srt", language="en").ok
    assert not check_subtitles(alone / "talk.vtt", language="de").ok  # the caller's language wins


def test_gpuboots_own_set_is_judged_by_the_rules_recorded_with_it(tmp_path: Path) -> None:
    # Non-default rules, and a cue the next sentence leaves no room to slow down (kept to the speech).
    words = _fast() + spoken("And the next one follows at once.", 2.2, 0.3)
    base, subs = _written(tmp_path, words, fps=25.0, min_gap_frames=3, max_line=30)
    assert subs.report.ok and subs.report.speech_bound["reading-speed"] >= 1, subs.report.summary()
    for suffix in (".srt", ".vtt"):
        report = check_subtitles(base.with_suffix(suffix))
        assert report.ok, report.summary()
        assert (report.broken, report.speech_bound) == (subs.report.broken, subs.report.speech_bound)
        assert report.limits == subs.report.limits  # fps 25, 3 frames, 30 characters, 20 cps, "en"
    out, err = io.StringIO(), io.StringIO()
    files = [str(base.with_suffix(".srt")), str(base.with_suffix(".vtt"))]
    assert main(["subtitles", "check", *files], stdout=out, stderr=err) == 0, out.getvalue() + err.getvalue()
    assert "25 fps" in out.getvalue() and "kept to the speech" in out.getvalue()
    # A flag given is the caller's rule over the recorded one.
    assert main(["subtitles", "check", files[0], "--max-cps", "12"], stdout=io.StringIO(), stderr=err) == 1
    # A .json of another run (another stamp) is not the file's set: the file alone, conservatively judged.
    os.utime(base.with_suffix(".json"), ns=(1, 1))
    report = check_subtitles(base.with_suffix(".srt"), language="en")
    assert report.speech_bound == {k: 0 for k in report.broken} and report.limits["fps"] == 24.0


@pytest.mark.parametrize("tamper", [{"fps": 0}, {"max_cps": "fast"}, {"max_lines": 2.5}, {"max_line": True}])
def test_a_json_beside_it_with_values_out_of_range_is_not_taken(tmp_path: Path, tamper: dict) -> None:
    base, _ = _written(tmp_path, _fast(), fps=25.0)
    json_path = base.with_suffix(".json")
    stamp = json_path.stat().st_mtime_ns
    data = json.loads(json_path.read_text())
    data["subtitles"]["limits"].update(tamper)
    json_path.write_text(json.dumps(data))
    os.utime(json_path, ns=(stamp, stamp))
    report = check_subtitles(base.with_suffix(".srt"))
    assert report.limits["fps"] == 24.0  # the defaults, not the tampered rules


def test_the_max_cps_help_says_where_the_default_comes_from(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["subtitles", "check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "20 for English, 17 for most others" in text and "what the file was made with" in text
    assert "WebVTT Language: header" in text


def test_what_is_not_an_ordinary_subtitle_file_is_refused_up_front(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.srt")
    os.symlink("/dev/zero", tmp_path / "zero.vtt")
    (tmp_path / "folder.srt").mkdir()
    with open(tmp_path / "huge.srt", "wb") as f:
        f.truncate(MAX_BYTES + 1)  # sparse: no disk used
    (tmp_path / "latin1.srt").write_bytes("1\n00:00:00,000 --> 00:00:01,000\nCaf\xe9\n".encode("latin-1"))
    names = ["fifo.srt", "zero.vtt", "folder.srt", "huge.srt", "latin1.srt"]
    proc = subprocess.run([sys.executable, "-m", "gpuboot", "subtitles", "check", *names], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=child_env())
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == len(names), proc.stderr
    for name, line, why in zip(names, lines, ("a FIFO", "a character device", "a directory", "MiB", "UTF-8")):
        assert line.startswith(f"gpuboot: error: {name}") and why in line and "fix:" in line, line
