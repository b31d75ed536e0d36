"""Driver detection: a few stat calls."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import machine

from gpuboot.machine import driver as _driver


def test_driver_detection_on_windows_looks_for_nvcuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SystemRoot", str(tmp_path))
    assert not _driver.detect_driver(platform="win32").present
    (tmp_path / "System32").mkdir()
    (tmp_path / "System32" / "nvcuda.dll").write_bytes(b"")
    info = _driver.detect_driver(platform="win32")
    assert info.present and info.evidence.endswith("nvcuda.dll")
    assert machine(platform="win32").driver == info  # a snapshot of a Windows machine reads the same


# --------------------------------------------------------------------------- the probe's own facts and limits

def _stub_libcuda(directory: Path, body: str) -> Path:
    """A gcc-built stub libcuda.so.1 (not NVIDIA's) whose cuInit runs ``body``."""
    import subprocess

    directory.mkdir(parents=True, exist_ok=True)
    src = directory / "stub.c"
    src.write_text("#include <stdlib.h>\n#include <unistd.h>\n"
                   "int cuDriverGetVersion(int *v) { *v = 12040; return 0; }\n"
                   f"int cuInit(unsigned f) {{ (void)f; {body} }}\n"
                   "int cuDeviceGetCount(int *n) { *n = 1; return 0; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", str(directory / "libcuda.so.1"),
                    str(src)], check=True, capture_output=True)
    return directory


def test_a_hung_driver_is_a_timeout_not_a_hang(tmp_path: Path) -> None:
    from gpuboot.machine.probe import probe_driver

    stub = _stub_libcuda(tmp_path / "hang", "sleep(60); return 0;")
    import time

    t0 = time.monotonic()
    p = probe_driver(root=str(tmp_path), environ={"LD_LIBRARY_PATH": str(stub), "PATH": "/usr/bin:/bin"}, timeout=2,
                     init=True)
    assert time.monotonic() - t0 < 15
    assert p.error is not None and "did not answer within 2 s" in p.error and not p.answered


def test_a_crashing_driver_does_not_take_the_caller_down(tmp_path: Path) -> None:
    from gpuboot._gpus.causes import driver_causes
    from gpuboot.machine.probe import probe_driver

    stub = _stub_libcuda(tmp_path / "crash", "abort(); return 0;")
    p = probe_driver(root=str(tmp_path), environ={"LD_LIBRARY_PATH": str(stub)}, init=True)
    assert p.error is not None and "signal 6" in p.error
    (cause,) = driver_causes(p)
    assert cause.id == "driver-probe-failed" and "nvidia-smi" in cause.fix


def test_a_driver_that_answers_is_no_cause(tmp_path: Path) -> None:
    from gpuboot._gpus.causes import driver_causes
    from gpuboot.machine.probe import probe_driver

    stub = _stub_libcuda(tmp_path / "ok", "return 0;")
    p = probe_driver(root=str(tmp_path), environ={"LD_LIBRARY_PATH": str(stub)}, init=True)
    assert (p.cu_init, p.device_count, p.cuda_driver_version) == (0, 1, 12040) and p.answered
    assert driver_causes(p) == []
    assert p.libcuda == str(stub / "libcuda.so.1")


@pytest.mark.parametrize(("text", "version"), [
    ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\n", "550.54.14"),
    ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build  (dvs-builder@U16-I3-B03-4-3)"
     "  Thu Jan 23 22:41:04 UTC 2025\n", "570.86.15"),
    ("NVRM version: NVIDIA UNIX aarch64 Kernel Module  535.261.03  Mon Jun  9 2025\n", "535.261.03"),
    ("garbage\n", None),
])
def test_kernel_module_version_from_proc(tmp_path: Path, text: str, version: str) -> None:
    from gpuboot.machine.probe import kernel_module_version

    (tmp_path / "proc" / "driver" / "nvidia").mkdir(parents=True)
    (tmp_path / "proc" / "driver" / "nvidia" / "version").write_text(text)
    assert kernel_module_version(str(tmp_path)) == version


def test_host_facts_come_from_the_injected_root(tmp_path: Path) -> None:
    from gpuboot.machine.probe import _host_facts, libcuda_hints

    root = tmp_path
    (root / "dev").mkdir()
    for n in ("nvidiactl", "nvidia0", "nvidia-uvm", "null"):
        (root / "dev" / n).write_text("")
    (root / "proc" / "1").mkdir(parents=True)
    (root / "proc" / "1" / "cgroup").write_text("0::/kubepods/burstable/pod1234/abcd\n")
    compat = tmp_path / "usr" / "local" / "cuda" / "compat"
    compat.mkdir(parents=True)
    (compat / "libcuda.so.1").write_text("")
    facts = _host_facts(str(root), {"LD_LIBRARY_PATH": f"{compat}:relative/stubs:"}, "linux")
    assert facts["device_nodes"] == ("nvidia-uvm", "nvidia0", "nvidiactl")
    assert facts["container"] == "cgroup: kubepods" and facts["wsl"] is False
    assert facts["library_path_dirs"] == (str(compat),)
    assert libcuda_hints(str(root), {"LD_LIBRARY_PATH": ""}) == [str(compat / "libcuda.so.1")]
    (root / ".dockerenv").write_text("")
    assert _host_facts(str(root), {}, "linux")["container"] == "/.dockerenv"
