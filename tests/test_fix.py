"""``gpuboot doctor --fix`` with real pip in throwaway environments (tests/fix_env.py): each scenario ends healthy
after one --fix or refuses with the reason, and a second --fix changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest
from fix_env import Scenario, wheelhouse

import gpuboot
from gpuboot.doctor.remedy import environment_refusal


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


def fixed(s: Scenario) -> Dict[str, Any]:
    """One `--fix --yes --json`, then a second: it must find nothing to do."""
    proc = s.fix("--yes", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out: Dict[str, Any] = json.loads(proc.stdout)
    assert out["applied"] and all(a["exit_code"] == 0 for a in out["applied"])
    assert all(a["argv"][:3] == [str(s.python), "-m", "pip"] for a in out["applied"] if a["argv"][0] != "rm")
    assert [f for f in out["after"]["findings"] if f["severity"] == "problem"] == []
    again = s.fix("--yes", "--json")
    second = json.loads(again.stdout)
    assert again.returncode == 0 and second["plan"] == [] and second["applied"] == []  # a fix applied twice is a bug
    return out


def problems(report: Dict[str, Any]) -> Dict[str, str]:
    return {f["id"]: f["remedy"] for f in report["findings"] if f["severity"] == "problem"}


def test_missing_cublas_is_installed_by_the_running_interpreter(wheels: Path, tmp_path: Path) -> None:
    s = Scenario(tmp_path, wheels, ["ctranslate2==4.8.5"])
    out = fixed(s)
    assert problems(out["before"]) == {"missing-library": "pip install nvidia-cublas-cu12"}
    assert out["interpreter"] == str(s.python) and out["environment"] == str(s.venv)
    assert "nvidia-cublas-cu12" in s.versions()


def test_cudnn_8_needed_but_9_installed(wheels: Path, tmp_path: Path) -> None:
    s = Scenario(tmp_path, wheels, ["ctranslate2==4.4.0", "nvidia-cudnn-cu12==9.1.0.70"])
    out = fixed(s)
    assert problems(out["before"])["cudnn-mismatch"] == "pip install 'nvidia-cudnn-cu12==8.*'"
    assert s.versions()["nvidia-cudnn-cu12"] == "8.9.2.26"


def test_a_cu11_wheel_beside_a_cuda_12_consumer(wheels: Path, tmp_path: Path) -> None:
    s = Scenario(tmp_path, wheels, ["ctranslate2==4.8.5", "nvidia-cublas-cu11"])
    out = fixed(s)
    assert "wrong-major" in problems(out["before"])
    assert "nvidia-cublas-cu12" in s.versions()


def test_the_symlink_hack_is_removed_and_the_right_wheel_installed(wheels: Path, tmp_path: Path) -> None:
    s = Scenario(tmp_path, wheels, ["ctranslate2==4.8.5", "nvidia-cublas-cu11"])
    lib = s.site / "nvidia" / "cublas" / "lib"
    (lib / "libcublas.so.12").symlink_to("libcublas.so.11")
    (lib / "libcublasLt.so.12").symlink_to("libcublasLt.so.11")
    out = fixed(s)
    assert "renamed-library" in problems(out["before"])
    assert [a["argv"] for a in out["applied"] if a["argv"][0] == "rm"]  # the hand-made links, inside this venv
    assert not (lib / "libcublasLt.so.11").is_symlink() and (lib / "libcublasLt.so.11").exists()
    # nvidia-cublas-cu12 shares nvidia/cublas/lib: its real files replaced the links
    assert not (lib / "libcublas.so.12").is_symlink() and (lib / "libcublas.so.12").exists()


def test_a_ctranslate2_too_old_for_the_wheels_is_upgraded(wheels: Path, tmp_path: Path) -> None:
    s = Scenario(tmp_path, wheels, ["ctranslate2==3.24.0", "nvidia-cublas-cu12"])
    out = fixed(s)
    assert "consumer-too-old" in problems(out["before"])
    assert s.versions()["ctranslate2"] == "4.8.5"


def test_torch_pinning_cudnn_8_beside_ctranslate2_450_gets_the_consumer_change(wheels: Path, tmp_path: Path) -> None:
    """The library fix (cuDNN 9) would break torch 2.3.1's pin: doctor offers
    ctranslate2 4.4.0 instead (faster-whisper #1086), and --fix applies that."""
    s = Scenario(tmp_path, wheels, ["ctranslate2==4.5.0", "torch==2.3.1"])
    plain = s.gpuboot("doctor")
    assert "fix: pip install 'ctranslate2==4.4.0'" in plain.stdout, plain.stdout  # doctor alone says it too
    assert "torch 2.3.1 requires nvidia-cudnn-cu12==8.9.2.26" in plain.stdout
    out = fixed(s)
    assert problems(out["before"])["cudnn-mismatch"] == "pip install 'ctranslate2==4.4.0'"
    v = s.versions()
    assert (v["ctranslate2"], v["torch"], v["nvidia-cudnn-cu12"]) == ("4.4.0", "2.3.1", "8.9.2.26")
    check = json.loads(s.gpuboot("doctor", "--json").stdout)
    assert check["exit_code"] == 0


def test_without_a_terminal_and_without_yes_it_only_prints_the_plan(wheels: Path, tmp_path: Path) -> None:
    s = Scenario(tmp_path, wheels, ["ctranslate2==4.8.5"])
    proc = s.fix()
    assert proc.returncode == 1
    assert f"plan: 1 command(s) in {s.venv}" in proc.stdout and "-m pip install nvidia-cublas-cu12" in proc.stdout
    assert "rerun with --yes" in proc.stderr
    assert "nvidia-cublas-cu12" not in s.versions()
    dry = s.fix("--dry-run")
    assert dry.returncode == 1 and "-m pip install nvidia-cublas-cu12 --no-index --find-links" in dry.stdout
    assert "nvidia-cublas-cu12" not in s.versions()


def test_a_failing_pip_is_reported_with_its_last_lines(wheels: Path, tmp_path: Path) -> None:
    s = Scenario(tmp_path, wheels, ["ctranslate2==4.8.5"])
    empty = tmp_path / "empty-index"
    empty.mkdir()
    proc = s.gpuboot("doctor", "--fix", "--yes", "--", "--no-index", "--find-links", str(empty))
    assert proc.returncode == 1
    assert "ran: pip install nvidia-cublas-cu12: FAILED (exit 1)" in proc.stdout
    assert "No matching distribution found for nvidia-cublas-cu12" in proc.stdout
    assert "the environment is as pip left it" in proc.stdout
    assert "missing-library" in proc.stdout and "-> problem" in proc.stdout  # before -> after, still there


def test_a_host_level_fix_is_explained_never_run(wheels: Path, tmp_path: Path) -> None:
    """A driver too old for CUDA 12 (the fake GPU's driver says CUDA 11.8): the
    remedy is a driver upgrade, which --fix explains and does not run."""
    s = Scenario(tmp_path, wheels, ["ctranslate2==4.8.5", "nvidia-cublas-cu12"])
    shim = s.tmp / "old_driver"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import runpy, os\n"
        f"runpy.run_path({str(Path(__file__).parent / 'host_with_gpu' / 'sitecustomize.py')!r})\n"
        "import fake_nvml\n"
        "_init = fake_nvml.FakeNVML.__init__\n"
        "def __init__(self, gpus, **kw):\n"
        "    kw['cuda_version'] = 11080\n"
        "    _init(self, gpus, **kw)\n"
        "fake_nvml.FakeNVML.__init__ = __init__\n")
    env = s.env()
    env["PYTHONPATH"] = f"{shim}:{env['PYTHONPATH']}"
    import subprocess

    proc = subprocess.run([str(s.python), "-m", "gpuboot", "doctor", "--fix", "--yes"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "not run (outside this environment; do it yourself) [driver-too-old]: upgrade the NVIDIA driver" in \
        proc.stdout
    assert "nothing to apply in this environment" in proc.stdout


def test_root_in_the_system_interpreter_and_pep_668_are_refused(tmp_path: Path) -> None:
    stdlib = tmp_path / "lib" / "python3.11"
    stdlib.mkdir(parents=True)
    assert environment_refusal(prefix="/usr", base_prefix="/usr", euid=1000, stdlib=str(stdlib)) is None
    root = environment_refusal(prefix="/usr", base_prefix="/usr", euid=0, stdlib=str(stdlib))
    assert root is not None and "root in the system interpreter" in root and "-m venv" in root
    (stdlib / "EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    pep668 = environment_refusal(prefix="/usr", base_prefix="/usr", euid=1000, stdlib=str(stdlib))
    assert pep668 is not None and "PEP 668" in pep668 and "-m venv" in pep668
    assert environment_refusal(prefix="/venv", base_prefix="/usr", euid=0, stdlib=str(stdlib)) is None  # a venv


def test_the_library_call_plans_without_applying(wheels: Path, tmp_path: Path) -> None:
    """gpuboot.fix(report) only plans unless apply=True."""
    from fake_nvml import RTX_3070, FakeNVML, gpu
    from helpers import install, wheel

    from gpuboot.doctor import diagnose, gather

    site = install(tmp_path / "site", wheel("nvidia-cublas-cu11"))
    report = diagnose(gather(consumers=["ctranslate2"], environ={}, search_paths=[str(site)],
                             nvml=FakeNVML([gpu(RTX_3070, 0)]), driver=True,
                             metadata={"ctranslate2": ("4.8.5", [])}.get,
                             loaded=[], initial_environ={}, wsl=False, cpu_threads=2, distributions=lambda: ()))
    result = gpuboot.fix(report)
    assert result.applied == () and result.after is None and result.exit_code == 1
    assert [(s.finding, s.kind, s.display) for s in result.plan] == [("wrong-major", "pip",
                                                                      "pip install nvidia-cublas-cu12")]
