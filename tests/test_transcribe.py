"""gpuboot transcribe and gpuboot.transcribe: transcript files parsed back, several files with a bad one,
the batch-size policy on a table of devices, memory pressure through the NVML fake, and the OOM retry."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, List

import pytest
import srt
import webvtt
from fake_nvml import A100, RTX_3070, RTX_4090, T4, FakeNVML, GiB, MiB, gpu
from helpers import child_env, hosted, no_driver_machine
from marks import needs_model
from speech import REFERENCE, SAMPLE, SAMPLE_SECONDS, WER_LIMIT, wer

import gpuboot
from gpuboot.whisper import embedded_model
from gpuboot.whisper.formats import timestamp, to_srt, to_vtt
from gpuboot.whisper.throughput import MAX_BATCH, per_item_bytes, plan_throughput

TINY_BYTES = 75_537_502  # the embedded tiny.en model.bin
LARGE_V3_BYTES = 3_087_284_237  # Systran/faster-whisper-large-v3 model.bin (float16)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuboot", "transcribe", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=child_env({"HF_HUB_OFFLINE": "1"}))


# --------------------------------------------------------------------------- output files


@needs_model
def test_all_formats_are_written_and_parse_back(tmp_path: Path) -> None:
    proc = cli(str(SAMPLE), "--output-format", "all", "--output-dir", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # files asked for: nothing else on stdout
    # not a terminal: no progress bar, no live lines; the device line and the file's summary line
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and re.fullmatch(r"gpuboot: cpu/int8, batch \d+, \d+ thread\(s\)", lines[0]), lines
    assert lines[1].startswith(f"gpuboot: {SAMPLE}: 6.0 s audio, ") and " words, run RTF " in lines[1], lines
    assert lines[1].endswith(", ".join(str(tmp_path / "out" / f"speech-en.{x}") for x in ("txt", "srt", "vtt",
                                                                                           "json"))), lines
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["speech-en.json", "speech-en.srt", "speech-en.txt",
                                                      "speech-en.vtt"]
    cues = list(srt.parse((out / "speech-en.srt").read_text()))
    assert cues and [c.index for c in cues] == list(range(1, len(cues) + 1))
    assert all(c.start < c.end and c.end.total_seconds() <= SAMPLE_SECONDS + 0.5 for c in cues)
    assert wer(" ".join(c.content for c in cues)) <= WER_LIMIT
    vtt = webvtt.read(str(out / "speech-en.vtt"))
    assert len(vtt.captions) == len(cues)
    assert [c.text for c in vtt.captions] == [c.content for c in cues]
    assert abs(vtt.captions[0].start_in_seconds - cues[0].start.total_seconds()) < 0.002
    data = json.loads((out / "speech-en.json").read_text())
    assert wer(data["text"]) <= WER_LIMIT and [s["id"] for s in data["segments"]] == list(range(len(cues)))
    assert data["device"] == "cpu" and data["batched"] is True and data["batch_size"] >= 1
    # txt keeps the decoded paragraphs, srt has the readable cues: the same words
    assert (out / "speech-en.txt").read_text().split() == " ".join(c.content for c in cues).split()


@needs_model
def test_several_files_one_bad_the_others_still_transcribed(tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    second = tmp_path / "second.wav"
    second.write_bytes(SAMPLE.read_bytes())
    first = tmp_path / SAMPLE.name
    first.write_bytes(SAMPLE.read_bytes())
    proc = cli(str(first), str(bad), str(tmp_path / "missing.wav"), str(second), "--output-format", "srt",
               cwd=tmp_path)
    assert proc.returncode == 1
    lines = [x for x in proc.stderr.strip().splitlines() if x.startswith("gpuboot: error: ")]
    assert len(lines) == 2, proc.stderr
    assert "notes.wav could not be decoded" in lines[0] and "missing.wav" in lines[1]
    done = [x for x in proc.stderr.splitlines() if " s audio, " in x]  # one summary line per file transcribed
    assert [x.split(": ")[1] for x in done] == [str(first), str(second)], proc.stderr
    assert "Traceback" not in proc.stderr
    for name in ("speech-en.srt", "second.srt"):
        assert wer(" ".join(c.content for c in srt.parse((tmp_path / name).read_text()))) <= WER_LIMIT


@needs_model
def test_json_for_several_files_is_a_list_and_sequential_on_request(tmp_path: Path) -> None:
    copy = tmp_path / "copy.wav"
    copy.write_bytes(SAMPLE.read_bytes())
    proc = cli(str(SAMPLE), str(copy), str(SAMPLE), "--json", "--batch-size", "1", "--word-timestamps",
               cwd=tmp_path)  # a file named twice is transcribed once
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, list) and len(data) == 2
    for item in data:
        assert item["batched"] is False and item["batch_size"] == 1
        assert wer(item["text"]) <= WER_LIMIT
        words = [w for s in item["segments"] for w in s["words"]]
        assert words and all(a["start"] <= b["start"] for a, b in zip(words, words[1:]))


def test_inputs_that_would_overwrite_each_other_are_refused_before_any_work(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.mkdir()
    (a / "x.wav").write_bytes(SAMPLE.read_bytes())
    (a / "x.flac").write_bytes(SAMPLE.read_bytes())
    out = tmp_path / "out"
    proc = cli(str(a / "x.wav"), str(a / "x.flac"), "--output-dir", str(out), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert str(a / "x.wav") in line and str(a / "x.flac") in line and "--output-dir" in line
    assert not any(p.is_file() for p in out.rglob("*"))  # refused before anything was transcribed or written
    proc = cli(str(a / "x.wav"), str(a / "x.flac"), "--json", "--batch-size", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr  # no files written: no collision


def test_outputs_are_renamed_into_place(tmp_path: Path) -> None:
    from gpuboot.whisper.formats import write_outputs

    out = tmp_path / "out"
    out.mkdir()
    (out / "x.txt").write_text("old transcript\n")
    before = (out / "x.txt").stat().st_ino
    written = write_outputs("in/x.wav", [], ["txt", "srt"], out, {})
    assert [p.name for p in written] == ["x.txt", "x.srt"]
    assert (out / "x.txt").stat().st_ino != before  # a new file renamed over the old, not rewritten in place
    assert sorted(p.name for p in out.iterdir()) == ["x.srt", "x.txt"]  # no temporary file left


@pytest.mark.parametrize(("args", "message"), [
    (["--batch-size", "0"], "must be at least 1"),
    (["--batch-size", "many"], "must be auto or a whole number"),
    (["--batch-size", "100000"], "must be at most 512"),
    (["--beam-size", "100000"], "must be at most 64, not 100000: memory grows with beam x batch"),
    (["--beam-size", "0"], "must be at least 1"),
    (["--workers", "-3"], "must be at least 1"),
    (["--max-cue-duration", "nan"], "must be a finite number"),
    (["--ray", "--ray-address", "nowhere:notaport"], "is not HOST:PORT"),
    (["--output-format", "docx"], "invalid choice"),
])
def test_bad_options_are_usage_errors(tmp_path: Path, args: List[str], message: str) -> None:
    proc = cli(str(SAMPLE), *args, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_timestamps() -> None:
    assert timestamp(0) == "00:00.000"
    assert timestamp(3725.5, decimal=",", always_hours=True) == "01:02:05,500"
    assert timestamp(59.9996) == "01:00.000"
    assert timestamp(-1) == "00:00.000"

    class Seg:
        def __init__(self, start: float, end: float, text: str) -> None:
            self.start, self.end, self.text = start, end, text

    segs = [Seg(0.0, 1.5, " Hello,  world "), Seg(3600.25, 3601.0, "again")]
    cues = list(srt.parse(to_srt(segs)))
    assert [(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in cues] == [
        (0.0, 1.5, "Hello, world"), (3600.25, 3601.083, "again")]  # held to 5/6 s, on frames at 24 fps
    assert to_vtt(segs).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello, world\n")


# --------------------------------------------------------------------------- the policy


@pytest.mark.parametrize(("spec", "free", "model_bytes", "batch"), [
    (A100, 79 * GiB, LARGE_V3_BYTES, MAX_BATCH),         # room for far more than 32
    (RTX_4090, 20 * GiB, LARGE_V3_BYTES, MAX_BATCH),     # (20 - 2.9) GiB / (224 MiB x 1.2) = 65
    (RTX_3070, 7 * GiB, LARGE_V3_BYTES, 15),             # (7 - 2.9) GiB / 269 MiB = 15
    (T4, int(3.5 * GiB), LARGE_V3_BYTES, 2),             # nearly full: 0.6 GiB left
    (T4, 3 * GiB, LARGE_V3_BYTES, 1),                    # nothing left beyond the model: batch 1
    (RTX_3070, 2 * GiB, TINY_BYTES, MAX_BATCH),          # tiny: ~5 MiB per item
])
def test_gpu_batch_size_follows_free_memory(spec: tuple, free: int, model_bytes: int, batch: int) -> None:
    plan = plan_throughput("cuda", cores=16, model_bytes=model_bytes, free_bytes=free, resident_bytes=model_bytes)
    assert plan.batched and plan.batch_size == batch, plan.reason
    assert plan.cpu_threads == 4 and plan.num_workers == 1
    assert "faster-whisper README" in plan.reason


@pytest.mark.parametrize(("cores", "free", "batch", "threads"), [
    (1, 16 * GiB, 8, 1), (2, 16 * GiB, 16, 2), (8, 64 * GiB, MAX_BATCH, 8), (2, 60 * MiB, 1, 2),
])
def test_cpu_batch_size_follows_cores_and_ram(cores: int, free: int, batch: int, threads: int) -> None:
    plan = plan_throughput("cpu", cores=cores, model_bytes=TINY_BYTES, free_bytes=free, resident_bytes=TINY_BYTES)
    assert (plan.batched, plan.batch_size, plan.cpu_threads) == (True, batch, threads), plan.reason


def test_policy_options() -> None:
    seq = plan_throughput("cpu", cores=4, model_bytes=TINY_BYTES, batched=False)
    assert (seq.batched, seq.batch_size, seq.cpu_threads) == (False, 1, 4)
    two = plan_throughput("cpu", cores=4, model_bytes=TINY_BYTES, streams=2)
    assert (two.cpu_threads, two.num_workers, two.batch_size) == (2, 2, 16)
    assert plan_throughput("cuda", cores=4, model_bytes=TINY_BYTES, batch_size=3).batch_size == 3
    assert per_item_bytes(LARGE_V3_BYTES) == pytest.approx(224 * MiB, rel=0.01)
    for bad in ({"batch_size": 0}, {"streams": 0}, {"batch_size": True}):
        with pytest.raises(ValueError):
            plan_throughput("cpu", cores=2, model_bytes=TINY_BYTES, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        plan_throughput("tpu", cores=2, model_bytes=TINY_BYTES)


# --------------------------------------------------------------------------- memory at run time


def test_memory_info_and_pressure_through_nvml() -> None:
    nvml = FakeNVML([gpu(RTX_3070, 0, free=2 * GiB), gpu(A100, 1, free=70 * GiB)])
    env = {"CUDA_VISIBLE_DEVICES": "1,0"}  # ordinal 0 is the A100 (NVML index 1)
    info = hosted(gpuboot.memory_info, nvml=nvml)(0, environ=env)
    assert (info.gpu.name, info.total, info.free, info.used) == (A100[0], 80 * GiB, 70 * GiB, 10 * GiB)
    busy = hosted(gpuboot.check_pressure, nvml=nvml)(1, environ=env)  # the 3070: 6 of 8 GiB used = 75 %
    assert busy.ok and busy.used_fraction == pytest.approx(0.75) and "admit" in busy.reason
    refused = hosted(gpuboot.check_pressure, nvml=nvml)(1, need_bytes=1 * GiB, environ=env)  # 87.5 % > 85 %
    assert not refused and "refuse" in refused.reason and "88%" in refused.reason
    assert hosted(gpuboot.check_pressure, nvml=nvml)(1, threshold=0.9, need_bytes=1 * GiB, environ=env).ok
    hidden = hosted(gpuboot.check_pressure, nvml=nvml)(2, environ=env)
    assert not hidden and "no visible GPU has CUDA ordinal 2" in hidden.reason
    with pytest.raises(LookupError):
        hosted(gpuboot.memory_info, nvml=nvml)(5, environ=env)
    with pytest.raises(ValueError):
        hosted(gpuboot.check_pressure, nvml=nvml)(0, threshold=1.5, environ=env)


def test_pressure_without_a_driver_refuses_with_the_reason(tmp_path: Path) -> None:
    with no_driver_machine(tmp_path / "host").scope():
        res = gpuboot.check_pressure()
    assert not res.ok and res.info is None and "no NVIDIA driver" in res.reason


# --------------------------------------------------------------------------- OOM


@needs_model
def test_out_of_memory_halves_the_batch_and_resumes(caplog: pytest.LogCaptureFixture) -> None:
    """CTranslate2's out-of-memory error (its message, as raised on a GPU) is
    the one boundary faked: a real BatchedInferencePipeline runs on the CPU,
    behind a stand-in that fails while the batch is larger than 2."""
    from faster_whisper import BatchedInferencePipeline

    model = gpuboot.load_whisper(embedded_model(), batch_size=8)  # type: ignore[arg-type]
    real = BatchedInferencePipeline(model)
    sizes: List[int] = []

    class SmallGPU:
        def transcribe(self, audio: Any, batch_size: int, **options: Any) -> Any:
            sizes.append(batch_size)
            if batch_size > 2:
                raise RuntimeError("CUDA failed with error out of memory")
            return real.transcribe(audio, batch_size=batch_size, **options)

    audio = gpuboot.whisper.decode(str(SAMPLE))
    stream, info = gpuboot.transcribe(model, audio, pipeline=SmallGPU(), language="en")
    text = " ".join(s.text for s in stream)
    assert info.language == "en" and abs(info.duration - SAMPLE_SECONDS) < 0.05
    assert sizes == [8, 4, 2]
    assert wer(text) <= WER_LIMIT
    assert [r.getMessage() for r in caplog.records if "out of memory" in r.getMessage()][:2] == [
        "out of memory at batch 8 (CUDA failed with error out of memory); retrying at batch 4",
        "out of memory at batch 4 (CUDA failed with error out of memory); retrying at batch 2"]


@needs_model
def test_out_of_memory_mid_run_resumes_after_the_last_finished_segment(caplog: pytest.LogCaptureFixture) -> None:
    """Three copies of the recording with silences between them: the stand-in
    yields the real first segment at batch 4, then fails with CTranslate2's
    out-of-memory message; gpuboot resumes after that segment at batch 2."""
    import numpy as np
    from faster_whisper import BatchedInferencePipeline

    model = gpuboot.load_whisper(embedded_model(), batch_size=4)  # type: ignore[arg-type]
    real = BatchedInferencePipeline(model)
    clip = gpuboot.whisper.decode(str(SAMPLE))
    gap = np.zeros(16000 * 2, dtype=np.float32)
    audio = np.concatenate([clip, gap, clip, gap, clip])
    calls: List[Any] = []

    class FailsMidway:
        def transcribe(self, audio: Any, batch_size: int, **options: Any) -> Any:
            calls.append((batch_size, round(len(audio) / 16000, 1)))
            segments, info = real.transcribe(audio, batch_size=batch_size, **options)
            if batch_size <= 2:
                return segments, info

            def first_then_oom() -> Any:
                yield next(iter(segments))
                raise RuntimeError("CUDA failed with error out of memory")

            return first_then_oom(), info

    stream, _ = gpuboot.transcribe(model, audio, pipeline=FailsMidway(), language="en")
    segments = list(stream)
    assert [c[0] for c in calls] == [4, 2]
    first_end = segments[0].end
    assert calls[1][1] == pytest.approx(len(audio) / 16000 - first_end, abs=0.1)  # only the rest again
    starts = [s.start for s in segments]
    assert starts == sorted(starts) and segments[-1].end <= len(audio) / 16000 + 0.5
    assert wer(" ".join(s.text for s in segments), " ".join([REFERENCE] * 3)) <= WER_LIMIT
    assert any("resuming at" in r.getMessage() for r in caplog.records)
