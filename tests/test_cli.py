"""The gpuboot command, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
from helpers import child_env, injected
from marks import needs_model
from probes import empty, healthy
from speech import SAMPLE, SAMPLE_SECONDS, WER_LIMIT, wer


def gpuboot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuboot", *args], capture_output=True, text=True, timeout=300,
                          env=child_env())




@needs_model
def test_transcribe_prints_the_words() -> None:
    proc = gpuboot("transcribe", str(SAMPLE))
    assert proc.returncode == 0, proc.stderr
    assert wer(proc.stdout) <= WER_LIMIT, proc.stdout


@needs_model
def test_transcribe_json() -> None:
    proc = gpuboot("transcribe", str(SAMPLE), "--json", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert wer(out["text"]) <= WER_LIMIT, out["text"]
    assert out["device"] == "cpu" and out["compute_type"] == "int8"
    assert abs(out["duration_s"] - SAMPLE_SECONDS) < 0.05
    starts = [seg["start"] for seg in out["segments"]]
    assert starts and starts == sorted(starts)
    assert all(0 <= seg["start"] < seg["end"] <= out["duration_s"] + 0.5 for seg in out["segments"])
    # the attribute's name; on the CPU no ordinal
    assert out["trail"][-1]["ok"] is True and out["trail"][-1]["cuda_ordinal"] is None
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
    if code == 1 and "not found" not in message:
        pytest.importorskip("faster_whisper")
    proc = gpuboot(*args)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("present", [False, True])
def test_doctor_tells_the_truth_about_the_driver(present: bool) -> None:
    """The described machine's driver check (both ways), not this machine's, is
    what doctor's first line and its JSON say."""
    import io

    from fake_nvml import RTX_3070, FakeNVML, gpu

    from gpuboot import cli

    answer = healthy() if present else empty()  # a host whose driver answers CUDA, or one with nothing NVIDIA
    with injected(driver=present, nvml=FakeNVML([gpu(RTX_3070, 0)]), probe=answer):
        out = io.StringIO()
        assert cli.main(["doctor"], stdout=out) in (0, 1)
        first = out.getvalue().splitlines()[0]
        assert first.startswith("ok      NVIDIA driver 550.54.14") if present else "NVIDIA driver: not found" in first
        out = io.StringIO()
        cli.main(["doctor", "--json"], stdout=out)
    assert json.loads(out.getvalue())["driver"]["present"] is present


def test_doctor_in_a_child_on_a_host_without_a_driver() -> None:
    proc = gpuboot("doctor", "--json")
    assert proc.returncode in (0, 1), proc.stderr
    out = json.loads(proc.stdout)
    assert out["driver"]["present"] is False and out["devices"] == []


def test_version_and_python_m(tmp_path: Path) -> None:
    proc = gpuboot("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("gpuboot ")


def test_doctor_shows_devices_and_the_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML described (RTX 3070 + GTX 1080), the driver answering CUDA with both (it cannot say their PCI
    order); the rest of doctor is real."""
    import io

    from fake_nvml import GTX_1080, RTX_3070, FakeNVML, gpu

    from gpuboot import cli

    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    out = io.StringIO()
    described = injected(nvml=FakeNVML([gpu(GTX_1080, 0), gpu(RTX_3070, 1)]), probe=healthy(count=2), cuda_order=None)
    with described:
        cli.main(["doctor"], stdout=out)
        json_out = io.StringIO()
        cli.main(["doctor", "--json"], stdout=json_out)
    text = out.getvalue()
    assert "GPU cuda:0 NVIDIA GeForce RTX 3070 (CC 8.6" in text
    assert "GPU cuda:1 NVIDIA GeForce GTX 1080 (CC 6.1" in text
    assert "CUDA_DEVICE_ORDER=PCI_BUS_ID" in text  # mixed models: the ordinal warning
    assert "choice: cuda:0 torch_dtype=bfloat16 compute_type=float16" in text
    data = json.loads(json_out.getvalue())
    assert [(d["name"], d["cuda_ordinal"]) for d in data["devices"]] == [(GTX_1080[0], 1), (RTX_3070[0], 0)]
    (choice,) = [f for f in data["findings"] if f["id"] == "device-choice"]
    assert "best of 2 visible GPU(s)" in choice["evidence"][0]


def test_examples_run(tmp_path: Path) -> None:
    root = Path(__file__).parent.parent
    env = child_env({"LOCAL_RANK": "1"})
    proc = subprocess.run([sys.executable, str(root / "examples/torchrun_worker.py")], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("rank 1: ")
    proc = subprocess.run([sys.executable, str(root / "scripts/gpu_check.py"), "--out", str(tmp_path / "c.txt")],
                          capture_output=True, text=True, timeout=120, env=child_env())
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "c.txt").read_text().rstrip().endswith("result: ok")


def test_without_faster_whisper_transcribe_names_the_install_command() -> None:
    """A child without site-packages (``python -S``): faster-whisper really is
    not installed there, and gpuboot runs from the source tree."""
    src = Path(__file__).resolve().parent.parent / "src"
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.run([sys.executable, "-S", "-m", "gpuboot", "transcribe", str(SAMPLE)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1
    assert "faster-whisper is not installed" in proc.stderr and "pip install 'gpuboot[whisper]'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("redirect", [">&-", "> /dev/full"], ids=["closed", "full"])
@pytest.mark.parametrize("command", [["doctor"], ["doctor", "--json"], ["env"]])
def test_a_closed_or_full_stdout_is_one_line_and_a_failure(redirect: str, command: List[str]) -> None:
    if redirect.endswith("/dev/full") and not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    line = " ".join(shlex.quote(w) for w in [sys.executable, "-m", "gpuboot", *command]) + " " + redirect
    proc = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=300, env=child_env())
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpuboot: error: "), proc.stderr
    assert ("standard output is closed" if redirect == ">&-" else "No space left on device") in lines[0]
