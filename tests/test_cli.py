"""The gpuboot command, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence

import pytest
from helpers import child_env, injected
from marks import needs_model
from probes import empty, healthy
from speech import SAMPLE, SAMPLE_SECONDS, WER_LIMIT, wer

from gpuboot.whisper import embedded_model


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
                          capture_output=True, text=True, timeout=300, env=child_env())
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "c.txt").read_text()
    assert report.rstrip().endswith("result: ok")
    assert "part 1 driver: SKIPPED -- no NVIDIA driver on this machine" in report  # nothing to compare, no failure


# --------------------------------------------------------------------------- the GPU check on stub driver hosts

#: What the namespace runs: scripts/gpu_check.py in a process group of its own (its pid in a file, so the fixture
#: can end it and everything it started), bounded, its exit code and output as JSON.
GPU_CHECK = textwrap.dedent("""
    import json, os, signal, subprocess, sys
    proc = subprocess.Popen([sys.executable, sys.argv[2], "--out-dir", sys.argv[3], "--time-limit", "240"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    with open(sys.argv[4], "w") as f:
        f.write(str(proc.pid))
    try:
        out, err = proc.communicate(timeout=280)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    print(json.dumps({"rc": proc.returncode, "out": out, "err": err,
                      "files": {n: open(os.path.join(sys.argv[3], n)).read() for n in os.listdir(sys.argv[3])}}))
""")


@pytest.fixture
def gpu_check_pid(tmp_path: Path) -> Iterator[Path]:
    """The file the scenario writes the check's pid to; the check's process group is ended here in any case."""
    path = tmp_path / "gpu-check.pid"
    yield path
    if path.exists():
        try:
            os.killpg(int(path.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def run_gpu_check(tmp_path: Path, pidfile: Path, gpus: Sequence[Any], cu_init: str = "CUDA_SUCCESS",
                  nodes: Sequence[str] = ("nvidiactl", "nvidia0", "nvidia-uvm")) -> Dict[str, Any]:
    """scripts/gpu_check.py on a stub host (tests/driver_host.py): NVML and libcuda compiled against NVIDIA's
    headers, describing ``gpus``, ``cuInit`` answering ``cu_init``; the rest of the machine is this one."""
    from driver_host import namespaces_available, run, stub_cuda, stub_nvml

    namespaces_available()
    reports = tmp_path / "reports"
    reports.mkdir()
    libs = [stub_cuda(tmp_path / "cuda", gpus=gpus, cu_init=cu_init), stub_nvml(tmp_path / "nvml", gpus=gpus)]
    out = run(tmp_path, libdirs=libs, kernel_module="550.54.14", nodes=nodes, code=GPU_CHECK,
              args=[str(Path(__file__).parent.parent / "scripts" / "gpu_check.py"), str(reports), str(pidfile)],
              env={"HF_HUB_OFFLINE": "1"})
    assert "Traceback" not in out["err"], out["err"]
    (name,) = out["files"]
    out["name"], out["report"] = name, out["files"][name]
    out["status"] = dict(re.findall(r"^\| (\d [^|]+?) \| ([a-z-]+) \|", out["report"], flags=re.M))
    assert list(out["status"]) == ["1 driver", "2 devices", "3 CUDA_VISIBLE_DEVICES", "4 loading", "5 GPU code",
                                   "6 choice and memory", "7 main job (Whisper)", "8 timings"], out["report"]
    assert out["report"].rstrip().splitlines()[-1] == out["out"].rstrip().splitlines()[-2]  # printed and written
    return out


HEALTHY_STUB = {"1 driver": "needs-gpu", "2 devices": "needs-gpu", "3 CUDA_VISIBLE_DEVICES": "needs-gpu",
                "4 loading": "needs-gpu", "5 GPU code": "needs-gpu", "6 choice and memory": "needs-gpu",
                "7 main job (Whisper)": "needs-gpu", "8 timings": "agree"}


def test_gpu_check_on_a_healthy_stub_host_runs_every_part(tmp_path: Path, gpu_check_pid: Path) -> None:
    """One RTX 4090: every part runs to the end; what torch, CuPy or CTranslate2 must answer is marked as needing a
    GPU (no CUDA runtime runs on the stub libcuda), nothing disagrees, exit 0."""
    from driver_host import RTX_4090

    out = run_gpu_check(tmp_path, gpu_check_pid, [RTX_4090])
    report = out["report"]
    assert out["rc"] == 0, report
    assert out["status"] == HEALTHY_STUB, out["status"]
    assert out["name"] == "gpu-check-nvidia-geforce-rtx-4090.txt"
    assert "doctor (for ctranslate2): exit 0; ok NVIDIA driver 550.54.14" in report and "cuInit 0, 1 GPU(s)" in report
    assert "the libcuda found is gpuboot's test stub" in report
    assert f"gpuboot (NVML) cuda:0 NVIDIA GeForce RTX 4090 CC 8.9 {RTX_4090.uuid}" in report
    shapes = re.findall(r"^    .+ \((unset|'[^']*')\): gpuboot ", report, flags=re.M)
    assert len(shapes) >= 11 and "'0,0'" in shapes and f"'{RTX_4090.uuid}'" in shapes, shapes
    assert "ensure-first: ensure() " in report and "preloaded libcublasLt.so.12, libcublas.so.12" in report
    assert "torch-first: " in report and "check_process: ok" in report
    assert "verdict: ctranslate2 4.8.5 runs natively on cuda:0 NVIDIA GeForce RTX 4090 (CC 8.9)" in report
    assert "prefer=speed: cuda:0 torch_dtype=bfloat16 compute_type=int8_float16" in report
    if embedded_model() is not None:  # the fallback from the stub's CUDA to the CPU, and the words
        (wer_text,) = re.findall(r"load_whisper\(\): cpu/int8, .* WER ([0-9.]+): ", report)
        assert float(wer_text) <= WER_LIMIT and "load_whisper trail: cuda/float16 failed" in report
    assert "ensure() " in report.split("part 8 timings")[1] and report.rstrip().endswith("result: ok")


def test_gpu_check_on_a_two_gpu_stub_host(tmp_path: Path, gpu_check_pid: Path) -> None:
    """A GTX 1080 and an RTX 4090: both in CUDA ordinal order, the shapes that need a second GPU run too."""
    from driver_host import GTX_1080, RTX_4090

    out = run_gpu_check(tmp_path, gpu_check_pid, [GTX_1080, RTX_4090])
    report = out["report"]
    assert out["rc"] == 0 and out["status"] == HEALTHY_STUB, report
    assert out["name"] == "gpu-check-nvidia-geforce-gtx-1080-x2.txt"
    assert f"gpuboot (NVML) cuda:0 NVIDIA GeForce GTX 1080 CC 6.1 {GTX_1080.uuid}" in report
    assert f"gpuboot (NVML) cuda:1 NVIDIA GeForce RTX 4090 CC 8.9 {RTX_4090.uuid}" in report
    assert f"the last first ('1,0'): gpuboot ['{RTX_4090.uuid}', '{GTX_1080.uuid}']" in report
    assert f"1 ('1'): gpuboot ['{RTX_4090.uuid}']" in report and "15 shapes over 2 GPU(s)" in report
    assert "select_device: cuda:1 -- CUDA cuda:1 NVIDIA GeForce RTX 4090" in report  # the better GPU


def test_gpu_check_where_cuda_does_not_answer_fails_on_the_driver(tmp_path: Path, gpu_check_pid: Path) -> None:
    """NVML answers, cuInit says CUDA_ERROR_UNKNOWN (999) and /dev/nvidia-uvm is missing: the driver part
    disagrees with doctor's broken layer and fix, every other part still runs, exit 1."""
    from driver_host import RTX_4090

    out = run_gpu_check(tmp_path, gpu_check_pid, [RTX_4090], cu_init="CUDA_ERROR_UNKNOWN",
                        nodes=("nvidiactl", "nvidia0"))
    report = out["report"]
    assert out["rc"] == 1, report
    assert out["status"]["1 driver"] == "disagree"
    assert [n for n, s in out["status"].items() if s == "disagree"] == ["1 driver"], out["status"]
    assert "DISAGREEMENT: CUDA did not answer (cuInit 999) while NVML answers" in report
    assert "/dev/nvidia-uvm is missing" in report and "nvidia-modprobe -u" in report
    assert "the part crashed" not in report
    assert "select_device: cpu -- CPU" in report and "NVML answers, CUDA does not" in report
    assert report.rstrip().endswith("result: FAIL (1 part(s) disagree: 1 driver)")


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
