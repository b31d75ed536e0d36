"""ensure(): without a driver, strict errors, logging, the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import injected, install, machine, run_child, skip_or_fail, wheel

import gpuboot
from gpuboot import boot
from gpuboot.machine import driver as _driver


def test_without_a_driver_ensure_loads_nothing_and_imports_nothing_heavy() -> None:
    proc = run_child("""
        import json, sys
        import gpuboot
        r = gpuboot.ensure()
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
    assert out == {"present": False, "loaded": 0, "ok": True, "cuda_mapped": False, "modules": [], "same": True}


def test_strict_names_the_missing_library_and_the_exact_fix(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with injected(driver=True, search_paths=[str(empty)]):
        report = gpuboot.ensure(consumers=["ctranslate2"])
    if not report.needs:
        skip_or_fail("ctranslate2 is not installed")
    if not any(m.name == "cublas" for m in report.missing):
        skip_or_fail("this machine has a system cuBLAS 12")
    assert any("pip install nvidia-cublas-cu12" in w for w in report.warnings)
    with pytest.raises(gpuboot.LibraryNotFoundError) as err:
        with injected(driver=True, search_paths=[str(empty)]):
            gpuboot.ensure(strict=True, consumers=["ctranslate2"])
    assert err.value.fix.startswith("pip install nvidia-cublas-cu12")
    assert "cublas" in str(err.value) and "fix: pip install nvidia-cublas-cu12" in str(err.value)


def test_ensure_without_consumers_loads_what_is_there(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"), real_so=True,
                   needed={"libcublas.so.12": ["libcublasLt.so.12"]})
    proc = run_child(f"""
        import json, gpuboot
        from gpuboot.machine.driver import DriverInfo
        from gpuboot.machine.snapshot import Machine
        with Machine(driver=DriverInfo(present=True, evidence="given"), search_paths=[{str(site)!r}]).scope():
            r = gpuboot.ensure(consumers=[])
        print(json.dumps([[l.library.filename, l.ok] for l in r.libraries] + [r.ok, len(r.missing)]))
    """)
    assert json.loads(proc.stdout) == [["libcublasLt.so.12", True], ["libcublas.so.12", True], True, 0]


def test_warnings_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu11"))
    with caplog.at_level("WARNING", logger="gpuboot"):
        with injected(search_paths=[str(site)], driver=True):
            report = gpuboot.ensure(consumers=["ctranslate2"])
    if not report.needs:
        skip_or_fail("ctranslate2 is not installed")
    assert any("libcublas.so.11" in r.getMessage() and "different ABI" in r.getMessage() for r in caplog.records)


def test_report_is_immutable() -> None:
    r = boot.EnsureReport(driver=_driver.DriverInfo(present=False, evidence="x"))
    with pytest.raises(AttributeError):
        r.driver = None  # type: ignore[misc]
    assert r == boot.EnsureReport(driver=_driver.DriverInfo(present=False, evidence="x"))
    assert r != boot.EnsureReport(driver=_driver.DriverInfo(present=False, evidence="y"))
    assert r.summary() == "no NVIDIA driver (x); nothing loaded"
    assert repr(r).startswith("EnsureReport(driver=DriverInfo(present=False, evidence='x'), needs=(), ")


def test_one_report_per_machine(tmp_path: Path) -> None:
    """ensure() works once per machine and consumers asked: the same snapshot (or this machine, however often
    it is read) gets the same report, another machine its own."""
    first, second = machine(driver=True, search_paths=[str(tmp_path)]), machine(driver=False)
    with first.scope():
        a = gpuboot.ensure(consumers=[])
        assert gpuboot.ensure(consumers=[]) is a and gpuboot.ensure(consumers=["ctranslate2"]) is not a
    with second.scope():
        b = gpuboot.ensure(consumers=[])
    assert a.driver.present and not b.driver.present
    with first.scope():
        assert gpuboot.ensure(consumers=[]) is a
    assert gpuboot.ensure() is gpuboot.ensure()  # this machine, read afresh each call
