"""The real NVIDIA CUDA 12 wheels that .ci/run installs (they dlopen without a GPU)."""

from __future__ import annotations

import json
from importlib import metadata

import pytest
from helpers import require_real, run_child

import gpuboot


def _installed(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        require_real(dist)
        raise


def test_real_wheels_are_located_with_their_owner_and_version() -> None:
    cublas_version = _installed("nvidia-cublas-cu12")
    cudart_version = _installed("nvidia-cuda-runtime-cu12")
    libs = gpuboot.locate(["cudart", "cublas"], cuda_major=12)
    assert [lib.filename for lib in libs] == ["libcudart.so.12", "libcublasLt.so.12", "libcublas.so.12"]
    assert [(lib.distribution, lib.version) for lib in libs] == [
        ("nvidia-cuda-runtime-cu12", cudart_version), ("nvidia-cublas-cu12", cublas_version),
        ("nvidia-cublas-cu12", cublas_version)]
    assert all(lib.source == "wheel" and lib.path.is_file() for lib in libs)


def test_real_wheels_preload_for_real() -> None:
    _installed("nvidia-cublas-cu12")
    _installed("nvidia-cuda-runtime-cu12")
    proc = run_child("""
        import ctypes, json, gpuboot
        libs = gpuboot.locate(["cudart", "cublas"], cuda_major=12)
        res = gpuboot.preload(libs)
        maps = open("/proc/self/maps").read()
        h = ctypes.CDLL("libcublas.so.12")            # by name, as CTranslate2 does
        ver = ctypes.c_int()
        print(json.dumps({
            "ok": [r.ok for r in res],
            "mapped": [str(l.path) in maps for l in libs],
            "cublasGetProperty": h.cublasGetProperty(0, ctypes.byref(ver)),   # 0 = major, no GPU needed
            "major": ver.value,
        }))
    """)
    out = json.loads(proc.stdout)
    assert out["ok"] == [True, True, True]
    assert out["mapped"] == [True, True, True]
    assert out["cublasGetProperty"] == 0 and out["major"] == 12


def test_ensure_for_ctranslate2_loads_the_real_cublas() -> None:
    _installed("nvidia-cublas-cu12")
    try:
        ct2 = metadata.version("ctranslate2")
    except metadata.PackageNotFoundError:
        require_real("ctranslate2")
        raise
    proc = run_child("""
        import json, sys, gpuboot
        from gpuboot.machine.driver import DriverInfo
        from gpuboot.machine.snapshot import Machine
        with Machine(driver=DriverInfo(present=True, evidence="given")).scope():
            r = gpuboot.ensure(consumers=["ctranslate2"])
        print(json.dumps({
            "needs": [[n.consumer, n.cuda_major] for n in r.needs],
            "loaded": [l.library.filename for l in r.loaded],
            "missing": [m.name for m in r.missing],
            "imported": [m for m in ("ctranslate2", "faster_whisper", "torch", "pynvml") if m in sys.modules],
            "maps": "libcublas.so.12" in open("/proc/self/maps").read(),
        }))
    """)
    out = json.loads(proc.stdout)
    assert out["needs"] == [["ctranslate2", 12]]
    assert out["loaded"][-2:] == ["libcublasLt.so.12", "libcublas.so.12"]
    assert out["missing"] == []
    assert out["imported"] == []  # needs come from metadata; nothing heavy imported
    assert out["maps"] is True
    assert ct2


def test_real_wheel_alias_is_refused_across_majors() -> None:
    _installed("nvidia-cublas-cu12")
    cublas = next(lib for lib in gpuboot.locate(["cublas"], cuda_major=12) if lib.name == "cublas")
    with pytest.raises(gpuboot.AbiMismatchError):
        gpuboot.alias(cublas, "libcublas.so.13")
