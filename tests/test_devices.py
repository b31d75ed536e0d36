"""GPU discovery through NVML and CUDA_VISIBLE_DEVICES, served by a fake NVML built from the real
pynvml error classes and structures."""

from __future__ import annotations

import os
from pathlib import Path
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
    V100,
    FakeNVML,
    GiB,
    MiB,
    a100_with_mig,
    gpu,
)
from helpers import choose, hosted
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuboot._gpus.nvml import discover, list_devices
from gpuboot._gpus.visible import parse_visible_devices
from gpuboot.select import select_device

NO_ENV: Dict[str, str] = {}


def test_a100_mig_slice() -> None:
    inv = hosted(discover, nvml=FakeNVML([a100_with_mig(0, slices=1)]))(environ=NO_ENV)
    (parent,) = inv.devices
    assert parent.mig_enabled and parent.cuda_ordinal is None
    (mig,) = parent.mig_instances
    assert (mig.is_mig, mig.mig_profile, mig.cuda_ordinal, mig.parent_uuid) == (True, "1g.10gb", 0, parent.uuid)
    c = choose([a100_with_mig(0)])
    assert c.gpu is not None and c.gpu.uuid == mig.uuid
    assert (c.cuda_ordinal, c.torch_dtype, c.compute_type) == (0, "bfloat16", "float16")
    assert c.gpu.total_memory == 9728 * MiB


def test_only_one_mig_instance_is_enumerated() -> None:
    inv = hosted(discover, nvml=FakeNVML([a100_with_mig(0, slices=3)]))(environ=NO_ENV)
    assert len(inv.visible) == 1 and inv.visible[0].uuid.startswith("MIG-")
    assert any("only one" in w for w in inv.warnings)
    third = inv.devices[0].mig_instances[2].uuid
    inv = hosted(discover, nvml=FakeNVML([a100_with_mig(0, slices=3)]))(environ={"CUDA_VISIBLE_DEVICES": third})
    assert [d.uuid for d in inv.visible] == [third]


def test_visible_devices_remap_ordinals() -> None:
    gpus = [gpu(A100, 0), gpu(A100, 1), gpu(A100, 2)]
    inv = hosted(discover, nvml=FakeNVML(gpus))(environ={"CUDA_VISIBLE_DEVICES": "2,0"})
    assert [(d.nvml_index, d.cuda_ordinal) for d in inv.visible] == [(2, 0), (0, 1)]
    assert [d.cuda_ordinal for d in inv.devices] == [1, None, 0]


def test_visible_devices_by_uuid_prefix() -> None:
    gpus = [gpu(A100, 0, uuid="GPU-aaaa1111"), gpu(A100, 1, uuid="GPU-bbbb2222")]
    inv = hosted(discover, nvml=FakeNVML(gpus))(environ={"CUDA_VISIBLE_DEVICES": "GPU-bbbb"})
    assert [d.nvml_index for d in inv.visible] == [1]
    ambiguous = [gpu(A100, 0, uuid="GPU-aaaa1111"), gpu(A100, 1, uuid="GPU-aaaa2222")]
    assert hosted(discover, nvml=FakeNVML(ambiguous))(environ={"CUDA_VISIBLE_DEVICES": "GPU-aaaa"}).visible == ()


def test_hidden_every_gpu() -> None:
    c = choose([gpu(A100, 0)], env={"CUDA_VISIBLE_DEVICES": ""})
    assert c.kind == "cpu" and "hides every GPU" in c.reason
    assert c.compute_type == "int8"


#: Every error code pynvml defines.
NVML_ERRORS = sorted(v for k, v in vars(pynvml).items() if k.startswith("NVML_ERROR_") and isinstance(v, int)
                     and v != pynvml.NVML_SUCCESS)


@pytest.mark.parametrize("code", NVML_ERRORS)
def test_nvml_init_failures_mean_no_gpus_with_the_reason(code: int) -> None:
    inv = hosted(discover, nvml=FakeNVML([gpu(A100, 0)], init_error=code))(environ=NO_ENV)
    assert inv.devices == () and inv.error is not None
    assert type(pynvml.NVMLError(code)).__name__ in inv.error
    c = hosted(select_device, nvml=FakeNVML([gpu(A100, 0)], init_error=code), ask_consumers=False)(environ=NO_ENV)
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
    inv = hosted(discover, nvml=FakeNVML([bad, gpu(RTX_3090, 1)]))(environ=NO_ENV)
    assert [d.name for d in inv.devices] == [RTX_3090[0]]
    assert inv.skipped[0][0] == 0 and type(pynvml.NVMLError(code)).__name__ in inv.skipped[0][1]
    assert choose([gpu(RTX_4090, 0, errors={fn: code}), gpu(RTX_3090,
                                                            1)]).gpu.name == RTX_3090[0]  # type: ignore[union-attr]


def test_memory_info_v2_missing_falls_back_to_v1_free() -> None:
    g = gpu(RTX_3070, 0, free=5 * GiB)
    (d,) = hosted(list_devices, nvml=FakeNVML([g], memory_v2=False))(environ=NO_ENV)
    assert d.free_memory == 5 * GiB and d.total_memory == 8 * GiB
    (d2,) = hosted(list_devices, nvml=FakeNVML([g]))(environ=NO_ENV)
    assert d2.free_memory == 5 * GiB


def test_driver_and_cuda_versions() -> None:
    inv = hosted(discover, nvml=FakeNVML([gpu(H100, 0)], driver="580.65.06", cuda_version=13000))(environ=NO_ENV)
    assert inv.driver_version == "580.65.06" and inv.cuda_driver_version == (13, 0)
    assert hosted(discover, nvml=FakeNVML([], cuda_version=12040))(environ=NO_ENV).cuda_driver_version == (12, 4)


def test_nvml_is_shut_down_after_discovery() -> None:
    nvml = FakeNVML([gpu(A100, 0)])
    hosted(discover, nvml=nvml)(environ=NO_ENV)
    assert nvml.initialised == 0


def test_real_nvml_on_this_machine_never_raises() -> None:
    """The real pynvml module, asked directly (discover() skips it without a driver)."""
    inv = hosted(discover, nvml=pynvml)(environ=NO_ENV)
    if inv.error is None:  # a machine with a working NVML: it lists its GPUs
        assert inv.devices or inv.skipped
        return
    assert inv.devices == () and "NVMLError" in inv.error
    assert hosted(select_device, ask_consumers=False)().kind in ("cpu", "mps")


def test_without_a_driver_pynvml_is_not_even_imported() -> None:
    from helpers import run_child

    proc = run_child("""
        import sys, gpuboot
        assert not gpuboot.ensure().driver.present
        inv = gpuboot.discover()
        print(inv.error.split(" (")[0], "pynvml" in sys.modules)
    """)
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
    inv = hosted(discover, nvml=FakeNVML([gpu(A100, 0), gpu(RTX_3090, 1), gpu(T4, 2)]))(environ=env)
    ordinals = [d.cuda_ordinal for d in inv.visible]
    assert ordinals == list(range(len(ordinals)))
    assert len({d.uuid for d in inv.visible}) == len(inv.visible)


# --------------------------------------------------------------------------- CUDA_VISIBLE_DEVICES and MIG

PCI = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def _visible(gpus: list, value: Optional[str], env: Optional[Dict[str, str]] = None) -> List[str]:
    environ = {**PCI, **(env or {})}
    if value is not None:
        environ["CUDA_VISIBLE_DEVICES"] = value
    return [d.uuid for d in hosted(discover, nvml=FakeNVML(gpus))(environ=environ).visible]


def test_integers_index_gpus_not_mig_instances() -> None:
    gpus = [a100_with_mig(0, slices=3), gpu(RTX_3090, 1)]
    first_mig = gpus[0].migs[0].uuid
    assert _visible(gpus, "1") == [gpus[1].uuid]  # the RTX 3090, not the second MIG instance
    assert _visible(gpus, "0") == [first_mig]  # a MIG-enabled GPU: its first instance
    assert _visible(gpus, "1,0") == [first_mig]  # ... and then no other GPU is enumerated
    assert _visible(gpus, None) == [first_mig]


def test_a_uuid_prefix_shared_with_a_mig_enabled_gpu_is_ambiguous() -> None:
    gpus = [a100_with_mig(0), gpu(RTX_3090, 1, uuid="GPU-00000000-9999-0000-0000-000000000000")]
    assert gpus[0].uuid.startswith("GPU-00000000")
    assert _visible(gpus, "GPU-00000000") == []  # two GPUs share it: ends the list
    assert _visible(gpus, "GPU-00000000-9") == [gpus[1].uuid]


def test_mig_gpu_uuid_gi_ci_form_names_one_instance() -> None:
    a100 = a100_with_mig(0, slices=3)  # GPU instances 7, 8 and 13, compute instance 0
    gpus = [a100]
    third = a100.migs[2].uuid
    assert _visible(gpus, f"MIG-{a100.uuid}/13/0") == [third]
    assert _visible(gpus, f"MIG-{a100.uuid[:12]}/8/0") == [a100.migs[1].uuid]  # a unique prefix is enough
    assert _visible(gpus, f"MIG-{a100.uuid}/99/0") == []
    assert _visible(gpus, third) == [third]


def test_two_entries_naming_one_device_leave_no_device() -> None:
    gpus = [gpu(A100, 0, uuid="GPU-aaaa1111"), gpu(A100, 1, uuid="GPU-bbbb2222")]
    assert _visible(gpus, "GPU-aaaa1111,GPU-aaaa") == []
    assert _visible(gpus, "GPU-bbbb,GPU-aaaa") == ["GPU-bbbb2222", "GPU-aaaa1111"]
    assert _visible(gpus, "1,1") == []


def reference_visible(gpus: list, value: Optional[str]) -> List[str]:
    """The documented rules, written apart from gpuboot's code: CUDA C
    Programming Guide "CUDA Environment Variables" and the MIG user guide's
    "CUDA Device Enumeration" (as nvitop's parser reads them)."""
    physical = sorted(gpus, key=lambda g: g.pci)
    if value is None:
        tokens: List[object] = list(range(len(physical)))
    else:
        tokens = reference_parse(value) or []
    picked: List[object] = []
    for t in tokens:
        if isinstance(t, int):
            hit = [physical[t]] if t < len(physical) else []
        elif str(t).startswith("MIG-GPU-") and "/" in str(t):
            head, gi, ci = str(t)[4:].split("/")[:3] if str(t).count("/") == 2 else ("", "x", "x")
            owners = [g for g in physical if g.uuid.startswith(head)]
            hit = [m for m in owners[0].migs if gi.isdigit() and ci.isdigit() and (m.gi, m.ci) == (int(gi), int(ci))]\
                if len(owners) == 1 else []
        elif str(t).startswith("MIG-"):
            hit = [m for g in physical for m in g.migs if m.uuid.startswith(str(t))]
        else:
            hit = [g for g in physical if g.uuid.startswith(str(t))]
        if len(hit) != 1:
            break
        if any(hit[0] is p for p in picked):
            return []
        picked.append(hit[0])
    migs = [p for p in picked if getattr(p, "uuid", "").startswith("MIG-")]
    if migs:
        return [migs[0].uuid]  # type: ignore[attr-defined]
    out: List[str] = []
    for p in picked:
        if p.mig_enabled:  # type: ignore[attr-defined]
            if p.migs:  # type: ignore[attr-defined]
                return [p.migs[0].uuid]  # type: ignore[attr-defined]
            continue
        out.append(p.uuid)  # type: ignore[attr-defined]
    return out


_MIXED = [gpu(T4, 0, uuid="GPU-11110000-0000-0000-0000-000000000000"), a100_with_mig(1, slices=3),
          gpu(T4, 2, uuid="GPU-11112222-0000-0000-0000-000000000000")]
_TOKENS = ["0", "1", "2", "3", "-1", "x", "", " 1", "GPU-1111", "GPU-11110", "GPU-11112", "GPU-",
           _MIXED[1].uuid[:10], _MIXED[1].migs[1].uuid, "MIG-0001", f"MIG-{_MIXED[1].uuid}/13/0",
           f"MIG-{_MIXED[1].uuid[:12]}/7/0", f"MIG-{_MIXED[1].uuid}/9/0", "MIG-GPU-1111/7/0"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), min_size=0, max_size=4))
def test_visibility_matches_the_documented_rules(tokens: List[str]) -> None:
    value = ",".join(tokens)
    assert _visible(_MIXED, value) == reference_visible(_MIXED, value)


# --------------------------------------------------------------------------- CUDA's own device order

_STUB_LIBCUDA = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* The four driver calls gpuboot asks, answering from $GPUBOOT_STUB_BUS_IDS
   ("0000:02:00.0,0000:01:00.0") in CUDA's enumeration order. */
static char ids[16][32]; static int n = -1;
int cuInit(unsigned flags) {
    const char *env = getenv("GPUBOOT_STUB_BUS_IDS"); char buf[512]; char *tok;
    if (!env) return 100; /* CUDA_ERROR_NO_DEVICE */
    strncpy(buf, env, sizeof buf - 1); buf[sizeof buf - 1] = 0; n = 0;
    for (tok = strtok(buf, ","); tok && n < 16; tok = strtok(NULL, ",")) strncpy(ids[n++], tok, 31);
    return 0;
}
int cuDeviceGetCount(int *count) { if (n < 0) return 3; *count = n; return 0; }
int cuDeviceGet(int *dev, int ordinal) { if (ordinal >= n) return 101; *dev = ordinal; return 0; }
int cuDeviceGetPCIBusId(char *out, int len, int dev) { strncpy(out, ids[dev], len); return 0; }
"""


def _stub_libcuda(tmp_path: Path) -> Path:
    import shutil
    import subprocess

    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    src = tmp_path / "libcuda.c"
    src.write_text(_STUB_LIBCUDA)
    out = tmp_path / "lib" / "libcuda.so.1"
    out.parent.mkdir()
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(out), str(src), "-Wl,-soname,libcuda.so.1"], check=True)
    return out.parent


def test_mixed_gpus_take_cudas_own_order_from_a_child_process(tmp_path: Path) -> None:
    """A real child process dlopens libcuda.so.1 -- here a stub compiled with
    gcc, answering as a driver that ranks the V100 (bus 02) before the T4
    (bus 01): CUDA ordinal 0 is the V100, and no heuristic warning."""
    from functools import partial

    from gpuboot.machine.order import cuda_order_from_driver

    lib = _stub_libcuda(tmp_path)
    gpus = [gpu(T4, 0), gpu(V100, 1)]
    env = {"LD_LIBRARY_PATH": str(lib), "GPUBOOT_STUB_BUS_IDS": "0000:02:00.0,0000:01:00.0",
           "PATH": os.environ.get("PATH", "")}
    inv = hosted(discover, nvml=FakeNVML(gpus), order_probe=partial(cuda_order_from_driver, env))(environ=env)
    assert [(d.name, d.cuda_ordinal) for d in inv.visible] == [(V100[0], 0), (T4[0], 1)]
    assert not any("CUDA_DEVICE_ORDER" in w for w in inv.warnings)
    assert cuda_order_from_driver(env) == ["0000:02:00.0", "0000:01:00.0"]


def test_the_estimate_and_its_warning_only_when_the_driver_cannot_say(tmp_path: Path) -> None:
    from functools import partial

    from gpuboot.machine.order import cuda_order_from_driver

    lib = _stub_libcuda(tmp_path)
    env = {"LD_LIBRARY_PATH": str(lib)}  # no GPUBOOT_STUB_BUS_IDS: cuInit fails
    assert cuda_order_from_driver(env) is None
    inv = hosted(discover, nvml=FakeNVML([gpu(T4, 0), gpu(V100, 1)]), order_probe=partial(cuda_order_from_driver,
                                                                                          env))(environ=env)
    assert [d.name for d in inv.visible] == [T4[0], V100[0]]  # estimate: higher CC first
    assert any("CUDA_DEVICE_ORDER=PCI_BUS_ID" in w for w in inv.warnings)
