"""ensure(): driver detection, needs from metadata, idempotence, threads, strict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import install, run_child, wheel

import gpuboot
from gpuboot import boot
from gpuboot.consumers import installed_needs, needs_of


def test_without_a_driver_ensure_loads_nothing_and_imports_nothing_heavy() -> None:
    proc = run_child("""
        import json, sys, time
        t = time.perf_counter()
        import gpuboot
        r = gpuboot.ensure()
        ms = (time.perf_counter() - t) * 1e3
        maps = open("/proc/self/maps").read()
        print(json.dumps({
            "present": r.driver.present, "loaded": len(r.libraries), "ok": r.ok,
            "cuda_mapped": any(s in maps for s in ("libcuda", "libcublas", "libcudart", "libcudnn")),
            "modules": sorted(m for m in ("typing", "dataclasses", "logging", "pathlib", "ctypes",
                                          "numpy", "torch", "ctranslate2", "pynvml") if m in sys.modules),
            "same": gpuboot.ensure() is r,
        }))
    """)
    out = json.loads(proc.stdout)
    if out["present"]:
        pytest.skip("this machine has an NVIDIA driver")
    assert out == {"present": False, "loaded": 0, "ok": True, "cuda_mapped": False, "modules": [], "same": True}


def test_driver_detection_on_windows_looks_for_nvcuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SystemRoot", str(tmp_path))
    assert not boot.detect_driver("win32").present
    (tmp_path / "System32").mkdir()
    (tmp_path / "System32" / "nvcuda.dll").write_bytes(b"")
    info = boot.detect_driver("win32")
    assert info.present and info.evidence.endswith("nvcuda.dll")


def test_strict_names_the_missing_library_and_the_exact_fix(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    report = gpuboot.ensure(driver=True, consumers=["ctranslate2"], search_paths=[str(empty)])
    if not report.needs:
        pytest.skip("ctranslate2 is not installed")
    if not any(m.name == "cublas" for m in report.missing):
        pytest.skip("this machine has a system cuBLAS 12")
    assert any("pip install nvidia-cublas-cu12" in w for w in report.warnings)
    with pytest.raises(gpuboot.LibraryNotFoundError) as err:
        gpuboot.ensure(strict=True, driver=True, consumers=["ctranslate2"], search_paths=[str(empty)])
    assert err.value.fix.startswith("pip install nvidia-cublas-cu12")
    assert "cublas" in str(err.value) and "fix: pip install nvidia-cublas-cu12" in str(err.value)


def test_ensure_without_consumers_loads_what_is_there(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"), real_so=True,
                   needed={"libcublas.so.12": ["libcublasLt.so.12"]})
    proc = run_child(f"""
        import json, gpuboot
        r = gpuboot.ensure(driver=True, consumers=[], search_paths=[{str(site)!r}])
        print(json.dumps([[l.library.filename, l.ok] for l in r.libraries] + [r.ok, len(r.missing)]))
    """)
    assert json.loads(proc.stdout) == [["libcublasLt.so.12", True], ["libcublas.so.12", True], True, 0]


def test_warnings_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu11"))
    with caplog.at_level("WARNING", logger="gpuboot"):
        report = boot._run(["ctranslate2"], [str(site)], None, True, None)
    if not report.needs:
        pytest.skip("ctranslate2 is not installed")
    assert any("libcublas.so.11" in r.getMessage() and "different ABI" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("version", "cuda", "libs", "cudnn"), [
    ("3.24.0", 11, ("cublas", "cudnn"), 8),
    ("4.0.0", 12, ("cublas", "cudnn"), 8),
    ("4.4.0", 12, ("cublas", "cudnn"), 8),
    ("4.5.0", 12, ("cublas", "cudnn"), 9),
    ("4.6.2", 12, ("cublas", "cudnn"), 9),
    ("4.6.3", 12, ("cublas",), 9),
    ("4.8.5", 12, ("cublas",), 9),
])
def test_ctranslate2_table(version: str, cuda: int, libs: tuple, cudnn: int) -> None:
    need = needs_of("ctranslate2", version)
    assert need is not None
    assert (need.cuda_major, need.libraries, need.cudnn_major) == (cuda, libs, cudnn)
    assert "CHANGELOG" in need.source


@pytest.mark.parametrize(("version", "requires", "cuda"), [
    ("2.3.1+cu121", [], 12),
    ("2.1.0+cu118", [], 11),
    ("2.9.0+cu130", [], 13),
    ("2.5.1", ["nvidia-cublas-cu12==12.4.5.8; platform_system == \"Linux\""], 12),
    ("2.9.0", ["nvidia-cublas==13.0.0.19; platform_system == \"Linux\""], 13),
])
def test_torch_builds(version: str, requires: list, cuda: int) -> None:
    need = needs_of("torch", version, requires)
    assert need is not None and need.cuda_major == cuda


def test_cpu_builds_and_unknown_versions_need_nothing() -> None:
    assert needs_of("torch", "2.13.0+cpu", []) is None
    assert needs_of("ctranslate2", "not-a-version") is None
    assert needs_of("somethingelse", "1.0") is None


def test_installed_needs_reads_metadata_only() -> None:
    fake = {"ctranslate2": ("4.5.0", []), "torch": ("2.13.0+cpu", [])}
    needs = installed_needs(["ctranslate2", "torch", "onnxruntime-gpu"], metadata=fake.get)
    assert [(n.consumer, n.cuda_major, n.cudnn_major) for n in needs] == [("ctranslate2", 12, 9)]


def test_report_is_immutable() -> None:
    r = boot.EnsureReport(boot.DriverInfo(False, "x"))
    with pytest.raises(AttributeError):
        r.driver = None  # type: ignore[misc]
    assert r == boot.EnsureReport(boot.DriverInfo(False, "x"))
    assert "no NVIDIA driver" in r.summary()
    assert json.dumps(repr(r))
