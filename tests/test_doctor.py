"""gpuboot doctor: each finding provoked, the JSON schema, snapshots of the human output."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import jsonschema
import pytest
from fake_nvml import RTX_3070, FakeNVML, a100_with_mig, gpu
from helpers import compile_stub, gathered, injected, install, run_child, wheel
from probes import empty, healthy

from gpuboot import cli, doctor
from gpuboot.doctor import Report, diagnose, json_schema

ROOT = Path(__file__).parent.parent


SCHEMA = json_schema()  # the copy shipped inside the package


SNAPSHOTS = Path(__file__).parent / "snapshots"


def meta(**versions: str) -> Dict[str, Tuple[str, Sequence[str]]]:
    return {k.replace("_", "-"): (v, []) for k, v in versions.items()}


def facts(site: Optional[Path] = None, *, gpus: Optional[list] = None, driver: bool = True,
          environ: Optional[Dict[str, str]] = None, platform: str = "linux", versions: Optional[Dict[str, str]] = None,
          loaded: Optional[List[str]] = None, cuda_version: int = 12040, wsl: bool = False,
          initial: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """A described machine: its wheels in ``site``, a loader cache with no CUDA library (this one holds a CUDA
    13 toolkit's, which would change which finding appears), NVML and the driver probe as given."""
    env = dict(environ or {})
    return dict(platform=platform, environ=env, search_paths=[str(site)] if site else [], ldconfig={},
                nvml=FakeNVML(gpus if gpus is not None else [gpu(RTX_3070, 0)], cuda_version=cuda_version),
                driver=driver, metadata=meta(**(versions or {"ctranslate2": "4.8.5"})), loaded=loaded or [],
                initial_environ=initial if initial is not None else env, wsl=wsl, cpu_threads=2,
                probe=(healthy(cuda_version=cuda_version, platform=platform) if driver else empty(platform=platform)))


def run(site: Optional[Path] = None, *, consumers: Sequence[str] = ("ctranslate2",), **described: Any) -> Report:
    return diagnose(gathered(consumers=list(consumers), **facts(site, **described)))


def ids(report: Report) -> Dict[str, str]:
    return {f.id: f.severity for f in report.findings}


def finding(report: Report, fid: str) -> doctor.Finding:
    found = [f for f in report.findings if f.id == fid]
    assert found, (fid, [f.id for f in report.findings])
    return found[0]


def test_healthy(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"))
    r = run(site)
    assert r.exit_code == 0 and not r.problems
    assert ids(r)["consumer-ready"] == "ok" and ids(r)["driver"] == "ok" and ids(r)["gpu"] == "ok"


def test_missing_library(tmp_path: Path) -> None:
    r = run(tmp_path)
    f = finding(r, "missing-library")
    assert f.severity == "problem" and "libcublas" in f.title and f.remedy == "pip install nvidia-cublas-cu12"
    assert r.exit_code == 1


def test_wrong_major_explains_why_an_alias_is_wrong(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu11"))
    f = finding(run(site), "wrong-major")
    assert "libcublas.so.12" in f.title or "libcublasLt.so.12" in f.title
    assert any("different ABI" in e for e in f.evidence)
    assert any("libcublas" in e and ".so.11" in e for e in f.evidence)
    assert f.remedy == "pip install nvidia-cublas-cu12"


def test_cudnn_mismatch_for_ctranslate2_4_5(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"))
    install(site, wheel("nvidia-cudnn-cu12", "linux", "8"))
    f = finding(run(site, versions={"ctranslate2": "4.5.0"}), "cudnn-mismatch")
    assert f.severity == "problem" and "cuDNN 9" in f.title and "cuDNN 8 is installed" in f.title
    assert f.remedy == "pip install 'nvidia-cudnn-cu12==9.*'"
    # ctranslate2 4.4 wants cuDNN 8: the same tree is healthy.
    assert "cudnn-mismatch" not in ids(run(site, versions={"ctranslate2": "4.4.0"}))
    # >= 4.6.3 uses cuDNN only when present: a cuDNN 8 is a warning, not a problem.
    assert ids(run(site, versions={"ctranslate2": "4.8.5"}))["cudnn-mismatch"] == "warning"


def test_library_already_loaded_from_elsewhere(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"), real_so=True,
                   needed={"libcublas.so.12": ["libcublasLt.so.12"]})
    decoy_dir = tmp_path / "usr-local-cuda-12.1" / "lib64"
    compile_stub(decoy_dir / "libcublasLt.so.12", "libcublasLt.so.12")
    proc = run_child(f"""
        import ctypes, json
        ctypes.CDLL({str(decoy_dir / 'libcublasLt.so.12')!r}, mode=ctypes.RTLD_GLOBAL)  # loaded first, by someone
        from gpuboot.machine.driver import DriverInfo
        from gpuboot.machine.metadata import Distribution
        from gpuboot.machine.snapshot import Machine
        from gpuboot.doctor import diagnose, gather
        with Machine(search_paths=[{str(site)!r}], driver=DriverInfo(present=True, evidence="given"), ldconfig={{}},
                     distributions=(Distribution(name="ctranslate2", version="4.8.5"),)).scope():
            ctx = gather(consumers=["ctranslate2"])
        print(json.dumps([[f.id, f.title] for f in diagnose(ctx).findings]))
    """)
    found = [t for i, t in json.loads(proc.stdout) if i == "shadowed-library"]
    assert found == [f"libcublasLt.so.12 is already loaded from {decoy_dir / 'libcublasLt.so.12'}, not from the wheel"]


def test_ld_library_path_puts_another_copy_first(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"))
    old = tmp_path / "cuda-12.1" / "lib64"
    old.mkdir(parents=True)
    (old / "libcublas.so.12").write_bytes(b"")
    f = finding(run(site, environ={"LD_LIBRARY_PATH": str(old)}), "ld-library-path-shadows")
    assert str(old / "libcublas.so.12") in f.evidence


def test_ld_library_path_changed_after_start() -> None:
    proc = run_child("""
        import json, os
        os.environ["LD_LIBRARY_PATH"] = "/opt/cuda/lib64"     # too late: ld.so read it at start
        from gpuboot.doctor import diagnose, gather
        print(json.dumps([[f.id, list(f.evidence)] for f in diagnose(gather(consumers=[])).findings]))
    """)
    found = {i: e for i, e in json.loads(proc.stdout)}
    assert found["ld-library-path-changed"] == ["at start: None", "now: '/opt/cuda/lib64'"]
    # Unchanged: no finding.
    proc = run_child("""
        import json
        from gpuboot.doctor import diagnose, gather
        print(json.dumps([f.id for f in diagnose(gather(consumers=[])).findings]))
    """, env={"LD_LIBRARY_PATH": "/opt/cuda/lib64"})
    assert "ld-library-path-changed" not in json.loads(proc.stdout)


def test_driver_too_old_for_the_consumer(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"))
    f = finding(run(site, cuda_version=11080), "driver-too-old")
    assert "CUDA 12" in f.title and "11.8" in f.title
    assert f.remedy is not None and "525.60.13" in f.remedy
    win = finding(run(site, cuda_version=11080, platform="win32"), "driver-too-old")
    assert win.remedy is not None and "528.33" in win.remedy


def test_wheels_without_a_driver(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"))
    install(site, wheel("nvidia-cuda-runtime-cu12"))
    r = run(site, driver=False, gpus=[])
    f = finding(r, "wheels-without-driver")
    assert f.severity == "warning"
    # ctranslate2 (installed in run()) needs cuBLAS: only the wheel nothing needs is offered for removal.
    assert f.remedy == "pip uninstall -y nvidia-cuda-runtime-cu12"
    assert "kept, needed by a consumer: nvidia-cublas-cu12" in f.evidence
    assert ids(r)["no-driver"] == "info"


def test_cpu_only_torch_on_a_gpu_machine(tmp_path: Path) -> None:
    # The installed version is pinned: a reinstall never upgrades torch behind the user's back, and the index
    # is one that serves that version (PyTorch's previous-versions page) and that the driver (CUDA 12.4) runs.
    r = run(tmp_path, consumers=[], versions={"torch": "2.5.1+cpu"})
    f = finding(r, "cpu-only-torch")
    assert f.remedy == ("pip install --force-reinstall --index-url https://download.pytorch.org/whl/cu124 "
                        "torch==2.5.1")
    assert [a.kind for a in f.actions] == ["pip-install"] and f.actions[0].args == ("torch==2.5.1",)
    # torch 2.3.1 with a CUDA 12.8 driver: cu128 has no torch 2.3.1, cu121 does.
    f = finding(run(tmp_path, consumers=[], versions={"torch": "2.3.1"}, cuda_version=12080), "cpu-only-torch")
    assert f.remedy is not None and f.remedy.endswith("/whl/cu121 torch==2.3.1")
    # torch 2.13 is built for CUDA 12.6 and newer: a 12.4 driver needs upgrading; no pip command is offered.
    f = finding(run(tmp_path, consumers=[], versions={"torch": "2.13.0+cpu"}), "cpu-only-torch")
    assert f.actions == () and f.remedy is not None and f.remedy.startswith("torch 2.13.0's CUDA builds need CUDA")
    # torch 1.12 is served by no index in the table: upgrade torch from the newest index the driver runs.
    f = finding(run(tmp_path, consumers=[], versions={"torch": "1.12.1+cpu"}), "cpu-only-torch")
    assert f.remedy == ("pip install --upgrade --force-reinstall --index-url https://download.pytorch.org/whl/cu124 "
                        "torch")
    assert "cpu-only-torch" not in ids(run(tmp_path, consumers=[], versions={"torch": "2.13.0+cpu"}, gpus=[]))


def test_cuda_visible_devices_hides_every_gpu(tmp_path: Path) -> None:
    f = finding(run(tmp_path, consumers=[], environ={"CUDA_VISIBLE_DEVICES": ""}), "visible-devices-hide-all")
    assert f.severity == "problem" and f.remedy is not None and "unset CUDA_VISIBLE_DEVICES" in f.remedy
    f = finding(run(tmp_path, consumers=[], environ={"CUDA_VISIBLE_DEVICES": "7"}), "visible-devices-hide-all")
    assert "'7'" in f.title


def test_mig_enabled(tmp_path: Path) -> None:
    f = finding(run(tmp_path, consumers=[], gpus=[a100_with_mig(0, 2)]), "mig-enabled")
    assert "2 instance(s)" in f.evidence[0] and "MIG-" in (f.remedy or "")


def test_wsl(tmp_path: Path) -> None:
    assert ids(run(tmp_path, consumers=[], wsl=True))["wsl"] == "info"


def test_windows_dll_dirs_not_on_path(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12", "win32"))
    r = run(site, platform="win32", environ={"PATH": r"C:\Windows\system32"})
    f = finding(r, "windows-dll-dirs-not-on-path")
    assert f.evidence == (str(site / "nvidia/cublas/bin"),)
    assert "LoadLibraryA" in f.title
    on_path = run(site, platform="win32", environ={"PATH": f"{site / 'nvidia/cublas/bin'};C:\\Windows"})
    assert "windows-dll-dirs-not-on-path" not in ids(on_path)


def test_two_cudnn_copies_on_path(tmp_path: Path) -> None:
    a = tmp_path / "cudnn-a"
    b = tmp_path / "cuda" / "bin"
    for d, name in ((a, "cudnn64_9.dll"), (b, "cudnn64_8.dll")):
        d.mkdir(parents=True)
        (d / name).write_bytes(b"")
    f = finding(run(tmp_path, consumers=[], platform="win32", environ={"PATH": f"{a};{b}"}),
                "windows-two-cudnn-on-path")
    assert f.evidence == (str(a), str(b))


def test_unreadable_gpu_is_a_warning(tmp_path: Path) -> None:
    import pynvml

    bad = gpu(RTX_3070, 0, errors={"nvmlDeviceGetHandleByIndex": pynvml.NVML_ERROR_NO_PERMISSION})
    f = finding(run(tmp_path, consumers=[], gpus=[bad]), "gpu-unreadable")
    assert "NoPermission" in f.title


@pytest.mark.parametrize("scenario", ["healthy", "wrong-major", "no-driver", "mig", "windows"])
def test_json_validates_against_the_documented_schema(tmp_path: Path, scenario: str) -> None:
    site = tmp_path / "site"
    if scenario == "wrong-major":
        install(site, wheel("nvidia-cublas-cu11"))
    elif scenario == "windows":
        install(site, wheel("nvidia-cublas-cu12", "win32"))
    else:
        install(site, wheel("nvidia-cublas-cu12"))
    r = run(site, driver=scenario != "no-driver", gpus=[a100_with_mig(0)] if scenario == "mig" else None,
            platform="win32" if scenario == "windows" else "linux")
    data = json.loads(json.dumps(r.to_dict()))
    jsonschema.validate(data, SCHEMA)
    assert data["exit_code"] == r.exit_code


def test_schema_rejects_a_wrong_document() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"schema_version": 1}, SCHEMA)


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with injected(**facts(tmp_path)):  # missing cuBLAS: a problem
        assert cli.main(["doctor"]) == 1
        assert "fix: pip install nvidia-cublas-cu12" in capsys.readouterr().out
        assert cli.main(["doctor", "--json"]) == 1
    jsonschema.validate(json.loads(capsys.readouterr().out), SCHEMA)
    with pytest.raises(SystemExit) as exc:
        cli.main(["doctor", "--for", "mxnet"])  # a package gpuboot has no row for
    assert exc.value.code == 2


def test_for_one_consumer(tmp_path: Path) -> None:
    with injected(search_paths=[str(tmp_path)], metadata={}, nvml=FakeNVML([]), driver=False, loaded=[],
                  environ={}, initial_environ={}, wsl=False, probe=empty(), ldconfig={}):
        r = diagnose(consumer="onnxruntime")
    assert ids(r)["consumer-not-installed"] == "info"
    with pytest.raises(ValueError):
        diagnose(consumer="mxnet")


def _normalise(text: str, tmp: Path) -> str:
    return text.replace(str(tmp), "<tmp>")


@pytest.mark.parametrize("scenario", ["healthy", "wrong-major", "no-driver-with-wheels"])
def test_human_output_snapshots(tmp_path: Path, scenario: str) -> None:
    """Wording changes show up in review: update with GPUBOOT_UPDATE_SNAPSHOTS=1."""
    site = tmp_path / "site"
    install(site, wheel("nvidia-cublas-cu11" if scenario == "wrong-major" else "nvidia-cublas-cu12"))
    r = run(site, driver=scenario != "no-driver-with-wheels",
            gpus=[] if scenario == "no-driver-with-wheels" else None)
    text = _normalise(r.render(), tmp_path)
    snap = SNAPSHOTS / f"doctor-{scenario}.txt"
    if os.environ.get("GPUBOOT_UPDATE_SNAPSHOTS") == "1":
        snap.parent.mkdir(exist_ok=True)
        snap.write_text(text)
    assert snap.exists(), f"no snapshot {snap.name}: run with GPUBOOT_UPDATE_SNAPSHOTS=1 and review it"
    assert text == snap.read_text()
