"""Driver truth against the REAL NVIDIA user-space driver (Debian's 535.261.03), each scenario in a private mount
namespace (tests/driver_host.py): doctor names the broken layer and its fix, select_device() gives the same cause,
and no scenario reports an ok driver.  gcc-built stubs only for the codes the real driver cannot give here."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import jsonschema
import pytest
from driver_host import VERSION, namespaces_available, only, real_driver, run, stub_library

from gpuboot.doctor import json_schema


@pytest.fixture(scope="module")
def driver() -> Path:
    namespaces_available()
    return real_driver()


def ids(out: Dict[str, Any]) -> List[str]:
    return [f[0] for f in out["findings"] if f[1] in ("problem", "info") and f[0] not in ("device-choice",)]


def problem(out: Dict[str, Any], fid: str) -> List[Any]:
    found = [f for f in out["findings"] if f[0] == fid]
    assert found, (fid, out["findings"])
    assert found[0][1] == "problem", found
    return found[0]


def assert_named(out: Dict[str, Any], fid: str, *words: str) -> List[Any]:
    """doctor exits 1 with ``fid``; no ok driver; select_device's reason carries the same cause."""
    f = problem(out, fid)
    assert out["exit"] == 1 and out["answered"] is False
    assert not any(x[0] == "driver" and x[1] == "ok" for x in out["findings"]), out["findings"]
    assert f[2] in out["reason"], (f[2], out["reason"])  # the same cause, in one line
    assert f"fix: {f[3]}" in out["reason"]
    for w in words:
        assert w in f[2] + " " + (f[3] or ""), (w, f)
    assert not any(x[0] == "wheels-without-driver" for x in out["findings"])  # never "uninstall" with a driver here
    jsonschema.validate(out["json"], json_schema())
    return f


def test_the_real_driver_answers_as_it_does_without_a_gpu(driver: Path, tmp_path: Path) -> None:
    """The control: the real libcuda and NVML, asked (no CAP_MKNOD: nothing can be created)."""
    out = run(tmp_path, libdirs=[driver])
    p = out["probe"]
    assert p["libcuda"].endswith(f"libcuda.so.{VERSION}") and p["libcuda_version"] == VERSION
    assert (p["cuda_driver_version"], p["cu_init"], p["nvml_init"]) == (12020, 100, 9)
    assert p["kernel_module"] is None and p["device_nodes"] == []


def test_user_space_without_a_kernel_module(driver: Path, tmp_path: Path) -> None:
    out = run(tmp_path, libdirs=[driver])
    f = assert_named(out, "kernel-module-not-loaded", VERSION, "sudo modprobe nvidia", "--gpus all")
    assert f[2].startswith("kernel module: ")
    assert "not found" not in " ".join(x[2] for x in out["findings"])  # the old "install the driver" is gone


def test_a_stale_device_node(driver: Path, tmp_path: Path) -> None:
    out = run(tmp_path, libdirs=[driver], nodes=["nvidiactl"])
    assert_named(out, "stale-device-nodes", "/dev/nvidiactl")
    problem(out, "kernel-module-not-loaded")


def test_kernel_module_and_user_space_differ(driver: Path, tmp_path: Path) -> None:
    out = run(tmp_path, libdirs=[driver], kernel_module="550.54.14", nodes=["nvidiactl", "nvidia0"])
    assert out["probe"]["kernel_module"] == "550.54.14"
    assert_named(out, "driver-version-mismatch", "550.54.14", VERSION, "reboot")


def test_root_without_a_kernel_module_never_creates_a_device_node(driver: Path, tmp_path: Path) -> None:
    """With CAP_MKNOD (root), cuInit/nvmlInit would mknod /dev/nvidiactl: gpuboot
    does not call them, says so, and still names the layer."""
    out = run(tmp_path, libdirs=[driver], mknod=True)
    assert out["dev"] == [] and out["probe"]["cu_init"] is None and "stale /dev/nvidiactl" in out["probe"][
        "init_skipped"]
    assert_named(out, "kernel-module-not-loaded")


def test_docker_without_gpus(driver: Path, tmp_path: Path) -> None:
    """An nvidia/cuda image (NVIDIA_VISIBLE_DEVICES=all) started without --gpus: nothing NVIDIA inside."""
    out = run(tmp_path, container=True, env={"NVIDIA_VISIBLE_DEVICES": "all"})
    assert_named(out, "container-without-gpu", "--gpus all", "NVIDIA Container Toolkit")


def test_a_cpu_container_is_information_not_a_problem(tmp_path: Path) -> None:
    namespaces_available()
    out = run(tmp_path, container=True)
    (f,) = [x for x in out["findings"] if x[0] == "container-without-gpu"]
    assert f[1] == "info" and out["exit"] == 0


def test_driver_capabilities_without_compute(driver: Path, tmp_path: Path) -> None:
    """The toolkit injected NVML (nvidia-smi works) but not libcuda."""
    nvml_only = only(tmp_path / "nvml-only", driver, ["libnvidia-ml.so.1"])
    out = run(tmp_path, libdirs=[nvml_only], container=True, kernel_module=VERSION, nodes=["nvidiactl", "nvidia0"],
              env={"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "utility"})
    assert_named(out, "container-no-compute", "NVIDIA_DRIVER_CAPABILITIES=compute,utility")


def test_nvml_version_mismatch_after_an_upgrade(driver: Path, tmp_path: Path) -> None:
    stub = stub_library(tmp_path / "nvml-18", "nvml", 18)  # stub: NVML_ERROR_LIB_RM_VERSION_MISMATCH
    out = run(tmp_path, libdirs=[stub, driver], kernel_module=VERSION, nodes=["nvidiactl"])
    assert out["probe"]["nvml_init"] == 18
    assert_named(out, "driver-version-mismatch", "reboot")


def test_nvml_unknown_error_in_a_running_container(driver: Path, tmp_path: Path) -> None:
    stub = stub_library(tmp_path / "nvml-999", "nvml", 999)  # stub: NVML_ERROR_UNKNOWN
    out = run(tmp_path, libdirs=[stub, driver], container=True, kernel_module=VERSION, nodes=["nvidiactl"],
              env={"NVIDIA_VISIBLE_DEVICES": "all"})
    assert_named(out, "container-lost-gpus", "restart the container")


def test_a_compat_libcuda_on_a_geforce(driver: Path, tmp_path: Path) -> None:
    compat = stub_library(tmp_path / "cuda-12.8" / "compat", "cuda", 804, file_version="570.124.06")
    out = run(tmp_path, libdirs=[compat, driver], kernel_module="550.54.14", nodes=["nvidiactl", "nvidia0"])
    assert_named(out, "compat-unsupported-gpu", str(compat), "804")


def test_a_compat_libcuda_older_than_the_host_driver(driver: Path, tmp_path: Path) -> None:
    compat = stub_library(tmp_path / "cuda-12.2" / "compat", "cuda", 803, file_version="535.54.03")
    out = run(tmp_path, libdirs=[compat, driver], kernel_module="550.54.14", nodes=["nvidiactl", "nvidia0"])
    assert_named(out, "compat-older-than-driver", "535.54.03", "550.54.14", str(compat))


def test_the_toolkit_stub_on_the_library_path(driver: Path, tmp_path: Path) -> None:
    stubs = stub_library(tmp_path / "cuda" / "lib64" / "stubs", "cuda", 34)
    out = run(tmp_path, libdirs=[stubs, driver], kernel_module=VERSION, nodes=["nvidiactl", "nvidia0"])
    assert_named(out, "stub-libcuda", str(stubs), "LD_LIBRARY_PATH")


def test_cuinit_unknown_error_without_nvidia_uvm(driver: Path, tmp_path: Path) -> None:
    stub = stub_library(tmp_path / "cuda-999", "cuda", 999)
    out = run(tmp_path, libdirs=[stub, driver], kernel_module=VERSION, nodes=["nvidiactl", "nvidia0"])
    assert_named(out, "cuda-unknown-error", "/dev/nvidia-uvm is missing", "nvidia-modprobe -u")


def test_wsl_with_a_linux_driver_inside(driver: Path, tmp_path: Path) -> None:
    out = run(tmp_path, libdirs=[driver], wsl=True)
    assert out["probe"]["wsl"] is True and out["probe"]["wsl_libcuda"] == "/usr/lib/wsl/lib/libcuda.so.1"
    assert_named(out, "wsl-linux-driver", "/usr/lib/wsl/lib/libcuda.so.1", "Windows")


def test_a_driver_too_old_for_the_runtime(driver: Path, tmp_path: Path) -> None:
    stub = stub_library(tmp_path / "cuda-35", "cuda", 35, cuda_version=11040, file_version="470.256.02")
    out = run(tmp_path, libdirs=[stub, driver], kernel_module="470.256.02", nodes=["nvidiactl", "nvidia0"])
    assert_named(out, "driver-insufficient", "CUDA 11.4", "525.60.13")
