"""The driver cause table (``_gpus/causes.py``) over arbitrary probes: no rule raises, every probe where CUDA did
not answer gets a broken layer, Windows is spoken to as Windows, and each row is what the table says it is."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from probes import empty, healthy

from gpuboot._gpus.causes import CAUSES, driver_causes
from gpuboot.machine.probe import DriverProbe

LAYERS = {"driver", "kernel module", "device nodes", "container", "WSL", "compat library", "library path",
          "fabric manager", "GPU"}
CODES = st.one_of(st.none(), st.sampled_from([0, 3, 34, 46, 100, 101, 304, 802, 803, 804, 999]),
                  st.integers(-2**31, 2**31))
TEXT = st.one_of(st.none(), st.text(max_size=40), st.sampled_from([
    "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14", "/usr/local/cuda-12.8/compat/libcuda.so.570.124.06",
    "/usr/local/cuda/lib64/stubs/libcuda.so.1", "/usr/lib/wsl/lib/libcuda.so.1",
    r"C:\Windows\System32\nvcuda.dll", "550.54.14", "535.261.03", "570.124.06"]))
NODES = st.lists(st.sampled_from(["nvidiactl", "nvidia0", "nvidia1", "nvidia-uvm", "dxg", "nvidia-modeset"]),
                 unique=True).map(tuple)
RESTRICTED = st.lists(st.tuples(st.integers(0, 8), st.sampled_from([2, 3, 7]), st.sampled_from([None, 0, 46, 1])),
                      max_size=3).map(tuple)

PROBES = st.builds(
    DriverProbe, platform=st.sampled_from(["linux", "win32"]), libcuda=TEXT, libcuda_error=TEXT,
    libcuda_version=TEXT, cuda_driver_version=st.one_of(st.none(), st.integers(-5, 14000)), cu_init=CODES,
    device_count=st.one_of(st.none(), st.integers(-1, 16)), nvml_lib=TEXT, nvml_error=TEXT,
    nvml_init=st.one_of(st.none(), st.sampled_from([0, 9, 12, 18, 999]), st.integers(-9, 2000)),
    nvml_driver_version=TEXT, nvml_cuda_version=st.one_of(st.none(), st.integers(-5, 14000)),
    kernel_module=TEXT, device_nodes=NODES, container=st.one_of(st.none(), st.sampled_from(["/.dockerenv"])),
    nvidia_visible_devices=TEXT, nvidia_driver_capabilities=TEXT, wsl=st.booleans(), wsl_libcuda=TEXT,
    library_path_dirs=st.lists(st.sampled_from(["/usr/local/cuda/lib64/stubs", "/usr/local/cuda/compat"]),
                               max_size=2).map(tuple),
    restricted_devices=RESTRICTED, init_skipped=TEXT, error=TEXT, elapsed_ms=st.floats(0, 1e4))

LINUX_WORDS = ("sudo", "modprobe", "apt ", "ldconfig", "LD_LIBRARY_PATH", "docker", "lspci", "/dev/")


@settings(max_examples=600, deadline=None)
@given(PROBES, st.booleans())
def test_no_rule_raises_and_every_cause_is_a_row(p: DriverProbe, wanted: bool) -> None:
    causes = driver_causes(p, gpu_expected=wanted)
    rows = {r.id: r for r in CAUSES}
    for c in causes:
        assert c.id in rows and c.layer == rows[c.id].layer and c.layer in LAYERS
        assert c.title and c.fix and c.source and c.severity in ("problem", "warning", "info")
    # one broken layer, unless a row says the next one is to be named too
    assert all(rows[c.id].then for c in causes[:-1])
    if not p.answered and p.anything:
        assert any(c.severity == "problem" for c in causes), (p, causes)
    if p.platform == "win32":
        for c in causes:
            assert not any(w in c.fix for w in LINUX_WORDS), (c.id, c.fix)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0, 3, 34, 46, 100, 304, 802, 803, 804, 999]), st.sampled_from(["linux", "win32"]))
def test_when_nvml_answers_and_cuda_does_not_a_layer_is_named(code: int, platform: str) -> None:
    p = healthy(cu_init=code, device_count=1 if code == 0 else None, platform=platform)
    problems = [c for c in driver_causes(p) if c.severity == "problem"]
    assert bool(problems) == (code != 0), problems


def test_a_healthy_probe_has_no_cause_and_an_empty_host_is_information() -> None:
    assert driver_causes(healthy()) == []
    (cause,) = driver_causes(empty())
    assert (cause.id, cause.severity) == ("no-driver", "info")
    assert driver_causes(empty(), gpu_expected=True)[0].severity == "problem"


def test_the_stub_rule_asks_what_was_loaded_not_what_is_on_the_path() -> None:
    """A toolkit stubs directory on LD_LIBRARY_PATH beside a real driver that answered is no cause."""
    ok = healthy(library_path_dirs=("/usr/local/cuda-12.4/lib64/stubs",))
    assert driver_causes(ok) == []
    loaded = healthy(libcuda="/usr/local/cuda-12.4/lib64/stubs/libcuda.so.1", cu_init=34, device_count=None,
                     library_path_dirs=("/usr/local/cuda-12.4/lib64/stubs",))
    (cause,) = driver_causes(loaded)
    assert cause.id == "stub-libcuda" and cause.fix.startswith("remove /usr/local/cuda-12.4/lib64/stubs from")
    copied = healthy(libcuda="/usr/lib/x86_64-linux-gnu/libcuda.so.1", cu_init=34, device_count=None)
    (cause,) = driver_causes(copied)
    assert cause.id == "stub-libcuda" and cause.fix.startswith("delete /usr/lib/x86_64-linux-gnu/libcuda.so.1")


def test_windows_is_told_windows_fixes() -> None:
    """Neither cuInit nor NVML answers on Windows: no `modprobe`, a driver (re)install and nvcuda.dll."""
    p = DriverProbe(platform="win32", libcuda=r"C:\Windows\System32\nvcuda.dll", cu_init=100,
                    nvml_lib=r"C:\Windows\System32\nvml.dll", nvml_init=9)
    (cause,) = driver_causes(p)
    assert cause.id == "no-gpu" and "modprobe" not in cause.fix and "Device Manager" in cause.fix
    p = p._replace(cu_init=999)
    (cause,) = driver_causes(p)
    assert "nvidia.com/drivers" in cause.fix and "sudo" not in cause.fix
    missing = DriverProbe(platform="win32", libcuda_error="Could not find module 'nvcuda.dll'",
                          nvml_lib=r"C:\Windows\System32\nvml.dll", nvml_init=0)
    (cause,) = driver_causes(missing)
    assert cause.id == "libcuda-missing" and "nvcuda.dll" in cause.title and "apt install" not in cause.fix


def test_some_gpus_busy_is_a_warning_all_busy_a_problem() -> None:
    some = healthy(count=2, restricted_devices=((1, 3, 46),))
    (cause,) = driver_causes(some)
    assert (cause.id, cause.severity) == ("gpu-unavailable", "warning") and "cuda:1" in cause.title
    every = healthy(count=1, restricted_devices=((0, 2, 46),))
    (cause,) = driver_causes(every)
    assert cause.severity == "problem" and "-c DEFAULT" in cause.fix and "PROHIBITED" in cause.title


def _ids(**kw: Any) -> list:
    return [c.id for c in driver_causes(healthy(**kw))]


def test_the_removed_code_35_is_not_a_driver_api_code() -> None:
    """cuInit never returns 35 (cudaErrorInsufficientDriver is the runtime API's): no rule names it."""
    assert "driver-insufficient" not in {r.id for r in CAUSES}
    assert _ids(cu_init=35, device_count=None) == ["driver-not-answering"]
