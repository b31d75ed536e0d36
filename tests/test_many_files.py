"""Many files: --workers over (faked) GPUs, a local Ray, --skip-existing after an interrupted run, and the
worker plan.  Real model, real audio, real worker processes; only the GPUs are fake (tests/host_with_gpu)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest
from helpers import child_env, ctrl_c_default, require_real
from marks import needs_model
from speech import SAMPLE, wer

from gpuboot.cli.runners import plan_workers

SHIM = Path(__file__).resolve().parent / "host_with_gpu"


def test_the_worker_plan() -> None:
    gpus = ["GPU-a", "MIG-b"]
    assert [(w.rank, w.cuda_visible_devices, w.cpu_threads) for w in plan_workers("auto", gpus=gpus, cores=16,
                                                                                  files=10)] == [
        (0, "GPU-a", 8), (1, "MIG-b", 8)]
    assert [w.cuda_visible_devices for w in plan_workers(3, gpus=gpus, cores=6, files=10)] == ["GPU-a", "MIG-b",
                                                                                              "GPU-a"]
    assert [(w.cuda_visible_devices, w.cpu_threads) for w in plan_workers("auto", gpus=[], cores=2, files=5)] == [
        (None, 1), (None, 1)]  # a 2-core CPU: two 1-thread workers (measured faster than one with two)
    assert len(plan_workers("auto", gpus=[], cores=16, files=20, ram_fit=6)) == 6  # as many models as RAM holds
    assert len(plan_workers(8, gpus=[], cores=16, files=3)) == 3  # never more workers than files
    # auto on a CPU: a run with little audio stays one (this process); asked-for counts and GPUs are kept
    assert len(plan_workers("auto", gpus=[], cores=2, files=10, audio_s=67.0)) == 1
    assert len(plan_workers("auto", gpus=[], cores=2, files=13, audio_s=476.0)) == 2
    assert len(plan_workers(2, gpus=[], cores=2, files=10, audio_s=67.0)) == 2
    assert len(plan_workers("auto", gpus=gpus, cores=16, files=10, audio_s=67.0)) == 2


def _folder(tmp: Path) -> List[Path]:
    from timed_speech import timed_recording

    long_audio, _ = timed_recording()
    folder = tmp / "in"
    folder.mkdir()
    shutil.copy(long_audio, folder / "long.wav")
    shutil.copy(SAMPLE, folder / "short.wav")
    shutil.copy(SAMPLE, folder / "short2.wav")
    return sorted(folder.iterdir())


def _run(files: List[Path], out: Path, *flags: str, env: Dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuboot", "transcribe", *map(str, files), "--output-dir", str(out),
                           "-q", *flags], capture_output=True, text=True, timeout=900, env=env)


def _outputs(out: Path) -> Dict[str, object]:
    """Every transcript file, JSON reduced to what does not vary between runs."""
    got: Dict[str, object] = {}
    for p in sorted(out.iterdir()):
        if p.suffix == ".json":
            data = json.loads(p.read_text())
            got[p.name] = (data["text"], data["segments"])
        else:
            got[p.name] = p.read_text()
    return got


@needs_model
def test_two_workers_on_two_gpus_each_get_their_own(tmp_path: Path) -> None:
    """Two (faked) RTX 3070s: each worker's CUDA_VISIBLE_DEVICES names one GPU,
    and its select_device() picks exactly that one."""
    files = _folder(tmp_path)[:2]  # long.wav (one worker is busy with it), short.wav (the other takes it)
    env = child_env({"HF_HUB_OFFLINE": "1", "GPUBOOT_TEST_GPUS": "2"}, driver=True)
    env["PYTHONPATH"] = f"{SHIM}{os.pathsep}{SHIM.parent}{os.pathsep}{env.get('PYTHONPATH', '')}"
    proc = _run(files, tmp_path / "out", "--workers", "2", "--output-format", "json", env=env)
    assert proc.returncode == 0, proc.stderr
    seen = {}
    for f in files:
        data = json.loads((tmp_path / "out" / f"{f.stem}.json").read_text())
        assert data["cuda_visible_devices"] == data["worker_gpu"], data  # select_device saw exactly its GPU
        assert data["worker_device"] == "cuda:0"
        seen[data["worker"]] = data["cuda_visible_devices"]
    assert sorted(seen) == [0, 1] and len(set(seen.values())) == 2, seen
    assert all(v.startswith("GPU-0000000") for v in seen.values())


@pytest.mark.slow
@needs_model
def test_a_local_ray_gives_the_same_outputs_as_one_process(tmp_path: Path) -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        require_real("ray (pip install 'gpuboot[ray]')")
    files = _folder(tmp_path)
    env = child_env({"HF_HUB_OFFLINE": "1", "RAY_TMPDIR": "/tmp"})
    one = _run(files, tmp_path / "one", env=env)
    assert one.returncode == 0, one.stderr
    # One actor with this process's threads: CTranslate2 gives bit-identical results for the same thread count.
    ray_run = _run(files, tmp_path / "ray", "--ray", "--workers", "1", env=env)
    assert ray_run.returncode == 0, ray_run.stderr[-3000:]
    assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "one")
    assert len(list((tmp_path / "ray").iterdir())) == 12
    # As many actors as Ray finds useful (two 1-thread actors on 2 cores): each file's windows are its own, but a
    # 1-thread model computes in another order than this process's 2-thread one, and CTranslate2's arithmetic
    # follows (seen: one sentence of the long recording read differently); the clips stay the same.
    auto = _run(files, tmp_path / "ray-auto", "--ray", "--output-format", "txt", env=env)
    assert auto.returncode == 0, auto.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "ray-auto").iterdir()) == ["long.txt", "short.txt", "short2.txt"]
    for p in (tmp_path / "ray-auto").iterdir():
        if p.name.startswith("short"):
            assert p.read_text() == (tmp_path / "one" / p.name).read_text(), p.name
        else:
            assert wer(p.read_text(), (tmp_path / "one" / p.name).read_text()) <= 0.05


@pytest.mark.slow
@needs_model
@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_interrupted_run_resumed_with_skip_existing_matches_an_uninterrupted_one(tmp_path: Path,
                                                                                    workers: str) -> None:
    long_audio, short, short2 = _folder(tmp_path)
    # A short file first: transcripts are written in input order, so the first one on disk leaves the long file
    # still to do (the signal lands mid-run however slow the machine is, not after the last file).
    files = [short, long_audio, short2]
    env = child_env({"HF_HUB_OFFLINE": "1"})
    # sequential decoding: the files end one by one (batched, the files of a batch end together)
    whole = _run(files, tmp_path / "whole", "--workers", workers, "--batch-size", "1", env=env)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "gpuboot", "transcribe", *map(str, files), "--output-dir",
                             str(out), "-q", "--workers", workers, "--batch-size", "1"], env=env,
                            stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_default)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None and not (out.exists() and any(out.glob("*.srt"))):
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signal.SIGINT)  # Ctrl-C, with at least one file done and others in flight
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    names = [p.name for p in out.iterdir()]
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")], names  # no partial file
    whole_files = _outputs(tmp_path / "whole")
    assert {n: v for n, v in _outputs(out).items()} == {n: whole_files[n] for n in names}  # each file whole
    assert len(names) < 12  # it really was cut short
    resumed = _run(files, out, "--workers", workers, "--batch-size", "1", "--skip-existing", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert _outputs(out) == _outputs(tmp_path / "whole")


def _clip_folder(folder: Path, sentences: List[str]) -> List[Path]:
    """One wav per sentence (espeak-ng, 0.3 s of silence around it)."""
    import wave

    from timed_speech import RATE, _speak

    folder.mkdir(parents=True)
    pad = b"\0\0" * int(0.3 * RATE)
    for i, sentence in enumerate(sentences):
        with wave.open(str(folder / f"clip{i:02d}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(pad + _speak(sentence) + pad)
    return sorted(folder.iterdir())


def _words(out: Path) -> Dict[str, object]:
    """Each transcript's words with their times, from its JSON."""
    return {p.stem: [(w["word"], w["start"], w["end"]) for s in json.loads(p.read_text())["segments"]
                     for w in s["words"]] for p in sorted(out.glob("*.json"))}


@pytest.mark.slow
@needs_model
def test_the_same_files_give_the_same_words_whatever_the_grouping(tmp_path: Path) -> None:
    """Five clips in one process, in two worker processes, and in a run with three more files and the long
    recording: word for word and time for time the same transcripts (each file's windows are planned from that
    file alone).  Before, the speech of several files shared windows: --workers 2 changed all five texts."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            require_real(f"{tool} (Debian: apt-get install espeak-ng sox)")
    from timed_speech import SENTENCES, timed_recording

    five = _clip_folder(tmp_path / "five", list(SENTENCES[:5]))
    together = tmp_path / "together"
    shutil.copytree(tmp_path / "five", together)
    more = [together / f"other{i}.wav" for i in range(3)]
    for path, made in zip(more, _clip_folder(tmp_path / "more", list(SENTENCES[5:8]))):
        shutil.copy(made, path)
    long_audio = together / "long.wav"
    shutil.copy(timed_recording()[0], long_audio)
    five_there = [together / p.name for p in five]
    env = child_env({"HF_HUB_OFFLINE": "1"})
    runs = {"one": ["--workers", "1"], "two": ["--workers", "2"]}
    for name, flags in runs.items():
        done = _run(five, tmp_path / name, "--output-format", "json", *flags, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
    mixed = [more[0], five_there[0], five_there[1], long_audio, more[1], five_there[2], five_there[3], more[2],
             five_there[4]]
    done = _run(mixed, tmp_path / "mixed", "--output-format", "json", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    one = _words(tmp_path / "one")
    assert sorted(one) == [p.stem for p in five] and all(one.values()), one
    assert _words(tmp_path / "two") == one
    assert {k: v for k, v in _words(tmp_path / "mixed").items() if k in one} == one
