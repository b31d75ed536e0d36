"""GPU discovery through NVML and CUDA_VISIBLE_DEVICES, served by a fake NVML built from the real
pynvml error classes and structures."""

from __future__ import annotations

from typing import Dict, List, Optional

import pynvml
import pytest
from fake_nvml import (
    A100,
    H100,
    RTX_3070,
    RTX_3090,
    RTX_4090,
    T4,
    FakeNVML,
    GiB,
    MiB,
    a100_with_mig,
    gpu,
)
from helpers import choose
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuboot.devices import discover, list_devices, parse_visible_devices
from gpuboot.select import select_device

NO_ENV: Dict[str, str] = {}


def test_a100_mig_slice() -> None:
    inv = discover(nvml=FakeNVML([a100_with_mig(0, slices=1)]), environ=NO_ENV)
    (parent,) = inv.devices
    assert parent.mig_enabled and parent.cuda_ordinal is None
    (mig,) = parent.mig_instances
    assert (mig.is_mig, mig.mig_profile, mig.cuda_ordinal, mig.parent_uuid) == (True, "1g.10gb", 0, parent.uuid)
    c = choose([a100_with_mig(0)])
    assert c.device is not None and c.device.uuid == mig.uuid
    assert (c.cuda_ordinal, c.torch_dtype, c.compute_type) == (0, "bfloat16", "float16")
    assert c.device.total_memory == 9728 * MiB


def test_only_one_mig_instance_is_enumerated() -> None:
    inv = discover(nvml=FakeNVML([a100_with_mig(0, slices=3)]), environ=NO_ENV)
    assert len(inv.visible) == 1 and inv.visible[0].uuid.startswith("MIG-")
    assert any("only one" in w for w in inv.warnings)
    third = inv.devices[0].mig_instances[2].uuid
    inv = discover(nvml=FakeNVML([a100_with_mig(0, slices=3)]), environ={"CUDA_VISIBLE_DEVICES": third})
    assert [d.uuid for d in inv.visible] == [third]


def test_visible_devices_remap_ordinals() -> None:
    gpus = [gpu(A100, 0), gpu(A100, 1), gpu(A100, 2)]
    inv = discover(nvml=FakeNVML(gpus), environ={"CUDA_VISIBLE_DEVICES": "2,0"})
    assert [(d.nvml_index, d.cuda_ordinal) for d in inv.visible] == [(2, 0), (0, 1)]
    assert [d.cuda_ordinal for d in inv.devices] == [1, None, 0]


def test_visible_devices_by_uuid_prefix() -> None:
    gpus = [gpu(A100, 0, uuid="GPU-aaaa1111"), gpu(A100, 1, uuid="GPU-bbbb2222")]
    inv = discover(nvml=FakeNVML(gpus), environ={"CUDA_VISIBLE_DEVICES": "GPU-bbbb"})
    assert [d.nvml_index for d in inv.visible] == [1]
    ambiguous = [gpu(A100, 0, uuid="GPU-aaaa1111"), gpu(A100, 1, uuid="GPU-aaaa2222")]
    assert discover(nvml=FakeNVML(ambiguous), environ={"CUDA_VISIBLE_DEVICES": "GPU-aaaa"}).visible == ()


def test_hidden_every_gpu() -> None:
    c = choose([gpu(A100, 0)], env={"CUDA_VISIBLE_DEVICES": ""})
    assert c.kind == "cpu" and "hides every GPU" in c.reason
    assert c.compute_type == "int8"


#: Every error code pynvml defines.
NVML_ERRORS = sorted(v for k, v in vars(pynvml).items() if k.startswith("NVML_ERROR_") and isinstance(v, int)
                     and v != pynvml.NVML_SUCCESS)


@pytest.mark.parametrize("code", NVML_ERRORS)
def test_nvml_init_failures_mean_no_gpus_with_the_reason(code: int) -> None:
    inv = discover(nvml=FakeNVML([gpu(A100, 0)], init_error=code), environ=NO_ENV)
    assert inv.devices == () and inv.error is not None
    assert type(pynvml.NVMLError(code)).__name__ in inv.error
    c = select_device(nvml=FakeNVML([gpu(A100, 0)], init_error=code), environ=NO_ENV, reconcile=False)
    assert c.kind == "cpu" and type(pynvml.NVMLError(code)).__name__ in c.reason


@pytest.mark.parametrize(("fn", "code"), [
    ("nvmlDeviceGetHandleByIndex", pynvml.NVML_ERROR_NO_PERMISSION),
    ("nvmlDeviceGetHandleByIndex", pynvml.NVML_ERROR_GPU_IS_LOST),
    ("nvmlDeviceGetMemoryInfo", pynvml.NVML_ERROR_NO_PERMISSION),
    ("nvmlDeviceGetCudaComputeCapability", pynvml.NVML_ERROR_NOT_SUPPORTED),
    *(("nvmlDeviceGetUUID", code) for code in NVML_ERRORS),
])
def test_one_unreadable_gpu_is_skipped_with_its_reason(fn: str, code: int) -> None:
    bad = gpu(RTX_4090, 0, errors={fn: code})
    inv = discover(nvml=FakeNVML([bad, gpu(RTX_3090, 1)]), environ=NO_ENV)
    assert [d.name for d in inv.devices] == [RTX_3090[0]]
    assert inv.skipped[0][0] == 0 and type(pynvml.NVMLError(code)).__name__ in inv.skipped[0][1]
    assert choose([gpu(RTX_4090, 0, errors={fn: code}), gpu(RTX_3090, 1)]).device.name == RTX_3090[0]  # type: ignore[union-attr]


def test_memory_info_v2_missing_falls_back_to_v1_free() -> None:
    g = gpu(RTX_3070, 0, free=5 * GiB)
    (d,) = list_devices(nvml=FakeNVML([g], memory_v2=False), environ=NO_ENV)
    assert d.free_memory == 5 * GiB and d.total_memory == 8 * GiB
    (d2,) = list_devices(nvml=FakeNVML([g]), environ=NO_ENV)
    assert d2.free_memory == 5 * GiB


def test_driver_and_cuda_versions() -> None:
    inv = discover(nvml=FakeNVML([gpu(H100, 0)], driver="580.65.06", cuda_version=13000), environ=NO_ENV)
    assert inv.driver_version == "580.65.06" and inv.cuda_driver_version == (13, 0)
    assert discover(nvml=FakeNVML([], cuda_version=12040), environ=NO_ENV).cuda_driver_version == (12, 4)


def test_nvml_is_shut_down_after_discovery() -> None:
    nvml = FakeNVML([gpu(A100, 0)])
    discover(nvml=nvml, environ=NO_ENV)
    assert nvml.initialised == 0


def test_real_nvml_on_this_machine_never_raises() -> None:
    """The real pynvml module, asked directly (discover() skips it without a driver)."""
    inv = discover(nvml=pynvml, environ=NO_ENV)
    if inv.error is None:
        pytest.skip("this machine has a working NVML")
    assert inv.devices == () and "NVMLError" in inv.error
    assert select_device(reconcile=False).kind in ("cpu", "mps")


def test_without_a_driver_pynvml_is_not_even_imported() -> None:
    from helpers import run_child

    proc = run_child("""
        import sys, gpuboot
        if gpuboot.ensure().driver.present:
            print("driver")
        else:
            inv = gpuboot.discover()
            print(inv.error.split(" (")[0], "pynvml" in sys.modules)
    """)
    if proc.stdout.strip() == "driver":
        pytest.skip("this machine has an NVIDIA driver")
    assert proc.stdout.strip() == "no NVIDIA driver False"


def reference_parse(value: Optional[str]) -> Optional[List[object]]:
    """A small reference model of the CUDA runtime's rules (module docstring
    of gpuboot.devices), written independently of the implementation."""
    if value is None:
        return None
    out: List[object] = []
    items = value.split(",")
    space = " \t\n\v\f\r"  # C isspace(); CUDA reads ASCII only
    uuid_mode = value.strip(space).startswith(("GPU-", "MIG-"))
    for item in items:
        if uuid_mode:
            token: object = item.strip(space)
            if not str(token).startswith(("GPU-", "MIG-")):
                break
        else:
            s = item.lstrip(space)
            if s.startswith("+"):
                s = s[1:]
            digits = ""
            for ch in s:
                if "0" <= ch <= "9":
                    digits += ch
                else:
                    break
            if not digits:
                break
            token = int(digits)
        if token in out:
            return []
        out.append(token)
    return out


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("", []), ("0", [0]), ("0,1", [0, 1]), ("0,2,-1,1", [0, 2]), ("1,1", []),
    ("0, 1", [0, 1]), ("abc", []), ("2,x,0", [2]), ("GPU-abc,GPU-def", ["GPU-abc", "GPU-def"]),
    ("GPU-abc,0", ["GPU-abc"]), ("MIG-xyz", ["MIG-xyz"]), ("GPU-a,GPU-a", []),
    ("\U0001e950", []), ("1,\u0663", [1]),  # Adlam / Arabic-Indic digits: not digits to strtoul
])
def test_visible_devices_parser_examples(value: Optional[str], expected: Optional[list]) -> None:
    assert parse_visible_devices(value) == expected


visible_alphabet = st.sampled_from(list("0123456789,-+ GPUMI-abcdef"))


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.none(), st.text(), st.text(alphabet=visible_alphabet)))
def test_visible_devices_parser_matches_reference_and_never_raises(value: Optional[str]) -> None:
    assert parse_visible_devices(value) == reference_parse(value)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=visible_alphabet), st.sampled_from([None, "PCI_BUS_ID", "FASTEST_FIRST", "", "junk"]))
def test_discovery_with_any_environment_never_raises(visible: str, order: Optional[str]) -> None:
    env = {"CUDA_VISIBLE_DEVICES": visible}
    if order is not None:
        env["CUDA_DEVICE_ORDER"] = order
    inv = discover(nvml=FakeNVML([gpu(A100, 0), gpu(RTX_3090, 1), gpu(T4, 2)]), environ=env)
    ordinals = [d.cuda_ordinal for d in inv.visible]
    assert ordinals == list(range(len(ordinals)))
    assert len({d.uuid for d in inv.visible}) == len(inv.visible)
