"""Device and precision selection on a table of real GPUs, served by a fake
NVML built from the real pynvml error classes and structures."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Dict, List, Optional

import pynvml
import pytest
from fake_nvml import (
    A100,
    GTX_1080,
    GTX_1660_SUPER,
    H100,
    P100,
    RTX_3070,
    RTX_3090,
    RTX_4090,
    RTX_5090,
    T4,
    V100,
    FakeNVML,
    GiB,
    MiB,
    a100_with_mig,
    gpu,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuboot.devices import discover, list_devices, parse_visible_devices
from gpuboot.select import (
    DeviceAssigner,
    check_memory,
    cpu_threads,
    recommend_whisper_model,
    select_device,
)

NO_ENV: Dict[str, str] = {}


def choose(gpus: list, env: Optional[Dict[str, str]] = None, ct2: str = "4.8.5", **kw: object):  # type: ignore[no-untyped-def]
    return select_device(nvml=FakeNVML(gpus), environ=env or {}, reconcile=False, ct2_version=ct2, **kw)  # type: ignore[arg-type]


# Expected choices, written from the rules in gpuboot.select's docstring:
#   torch: bf16 CC>=8.0; fp16 CC>=7.0 and 6.0/6.2; fp32 6.1 and older.
#   ct2 auto: float16 with fp16 tensor cores (CC>=7.0, not GTX 16xx), else int8 (CC 6.1/>6.0), else float32.
#   ct2 speed: int8_float16 where int8 and fp16, else int8, else float32.
#   ct2 accuracy: float16 where efficient, else float32.
TABLE = [
    # spec,          torch,      auto,      speed,          accuracy
    (GTX_1080,       "float32",  "int8",    "int8",         "float32"),
    (GTX_1660_SUPER, "float16",  "int8",    "int8",         "float32"),
    (T4,             "float16",  "float16", "int8_float16", "float16"),
    (V100,           "float16",  "float16", "int8_float16", "float16"),
    (RTX_3070,       "bfloat16", "float16", "int8_float16", "float16"),
    (RTX_3090,       "bfloat16", "float16", "int8_float16", "float16"),
    (RTX_4090,       "bfloat16", "float16", "int8_float16", "float16"),
    (A100,           "bfloat16", "float16", "int8_float16", "float16"),
    (H100,           "bfloat16", "float16", "int8_float16", "float16"),
    (RTX_5090,       "bfloat16", "float16", "int8_float16", "float16"),
    (P100,           "float16",  "float32", "float32",      "float32"),  # CC 6.0: fp16 full rate, no int8
]


@pytest.mark.parametrize(("spec", "torch_dtype", "auto", "speed", "accuracy"), TABLE,
                         ids=[row[0][0] for row in TABLE])
def test_single_gpu_table(spec: tuple, torch_dtype: str, auto: str, speed: str, accuracy: str) -> None:
    c = choose([gpu(spec, 0)])
    assert (c.kind, c.cuda_ordinal, c.ct2_device) == ("cuda", 0, "cuda")
    assert c.torch_dtype == torch_dtype
    assert c.compute_type == auto
    assert choose([gpu(spec, 0)], prefer="speed").compute_type == speed
    assert choose([gpu(spec, 0)], prefer="memory").compute_type == speed
    acc = choose([gpu(spec, 0)], prefer="accuracy")
    assert (acc.compute_type, acc.torch_dtype) == (accuracy, "float32")
    assert spec[0] in c.reason


def test_rtx5090_with_old_ctranslate2_avoids_int8() -> None:
    c = choose([gpu(RTX_5090, 0)], ct2="4.6.0", prefer="speed")
    assert c.compute_type == "float16"
    assert "#1865" in c.reason
    assert choose([gpu(RTX_5090, 0)], ct2="4.7.0", prefer="speed").compute_type == "int8_float16"


def test_gtx1660_float16_quirk_is_explained() -> None:
    c = choose([gpu(GTX_1660_SUPER, 0)])
    assert c.compute_type == "int8" and "whisper-diarization #327" in c.reason


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


# --------------------------------------------------------------------------- mixed pairs and ordering


def test_mixed_pair_prefers_tensor_cores_and_warns_about_order() -> None:
    gpus = [gpu(GTX_1080, 0), gpu(RTX_3090, 1)]
    c = choose(gpus)
    assert c.device is not None and c.device.name == RTX_3090[0]
    # FASTEST_FIRST: the 3090 (newer CC) is ordinal 0, and the ambiguity is reported.
    assert c.cuda_ordinal == 0
    assert any("PCI_BUS_ID" in w for w in c.warnings)
    pci = choose([gpu(GTX_1080, 0), gpu(RTX_3090, 1)], env={"CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
    assert pci.cuda_ordinal == 1 and not pci.warnings
    assert [d.name for d in pci.candidates] == [GTX_1080[0], RTX_3090[0]]


def test_identical_gpus_pick_most_free_memory_without_warning() -> None:
    gpus = [gpu(T4, 0, free=3 * GiB), gpu(T4, 1, free=14 * GiB)]
    c = choose(gpus)
    assert c.cuda_ordinal == 1 and not c.warnings


def test_min_free_bytes_skips_full_gpus_and_falls_back_to_cpu() -> None:
    gpus = [gpu(RTX_3070, 0, free=1 * GiB), gpu(RTX_3070, 1, free=6 * GiB)]
    assert choose(gpus, min_free_bytes=5 * GiB).cuda_ordinal == 1
    c = choose([gpu(RTX_3070, 0, free=1 * GiB)], min_free_bytes=5 * GiB)
    assert c.kind == "cpu" and "5.0 GiB free" in c.reason


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


# --------------------------------------------------------------------------- NVML failures


@pytest.mark.parametrize("code", [pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, pynvml.NVML_ERROR_DRIVER_NOT_LOADED,
                                  pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, pynvml.NVML_ERROR_UNKNOWN])
def test_nvml_init_failures_mean_no_gpus_with_the_reason(code: int) -> None:
    inv = discover(nvml=FakeNVML([gpu(A100, 0)], init_error=code), environ=NO_ENV)
    assert inv.devices == () and inv.error is not None
    assert type(pynvml.NVMLError(code)).__name__ in inv.error
    c = select_device(nvml=FakeNVML([gpu(A100, 0)], init_error=code), environ=NO_ENV, reconcile=False)
    assert c.kind == "cpu" and type(pynvml.NVMLError(code)).__name__ in c.reason


@pytest.mark.parametrize(("fn", "code"), [
    ("nvmlDeviceGetHandleByIndex", pynvml.NVML_ERROR_NO_PERMISSION),
    ("nvmlDeviceGetHandleByIndex", pynvml.NVML_ERROR_GPU_IS_LOST),
    ("nvmlDeviceGetUUID", pynvml.NVML_ERROR_GPU_IS_LOST),
    ("nvmlDeviceGetMemoryInfo", pynvml.NVML_ERROR_NO_PERMISSION),
    ("nvmlDeviceGetCudaComputeCapability", pynvml.NVML_ERROR_NOT_SUPPORTED),
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
    from conftest import run_child

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


# --------------------------------------------------------------------------- CUDA_VISIBLE_DEVICES


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


# --------------------------------------------------------------------------- workers


def test_ranks_spread_round_robin_over_visible_gpus() -> None:
    gpus = [gpu(A100, i) for i in range(4)]
    ordinals = [choose(gpus, worker=r).cuda_ordinal for r in range(8)]
    assert ordinals == [0, 1, 2, 3, 0, 1, 2, 3]
    # torchrun sets LOCAL_RANK
    assert choose(gpus, env={"LOCAL_RANK": "2"}).cuda_ordinal == 2
    assert "worker 2" in choose(gpus, env={"LOCAL_RANK": "2"}).reason


def test_ray_style_visible_devices_need_no_special_code() -> None:
    """Ray sets CUDA_VISIBLE_DEVICES to the GPU it assigned each worker."""
    gpus = [gpu(A100, i, uuid=f"GPU-{i}000") for i in range(4)]
    for assigned in ("0", "1", "2", "3"):
        c = choose(gpus, env={"CUDA_VISIBLE_DEVICES": assigned})
        assert c.cuda_ordinal == 0 and c.device is not None and c.device.nvml_index == int(assigned)


def test_assigner_is_balanced_under_contention() -> None:
    gpus = [gpu(A100, i) for i in range(3)]
    inv = discover(nvml=FakeNVML(gpus), environ=NO_ENV)
    assigner = DeviceAssigner(inventory=inv, environ=NO_ENV, reconcile=False, ct2_version="4.8.5")
    got: List[int] = []
    lock = threading.Lock()

    def worker() -> None:
        c = assigner.next()
        with lock:
            got.append(c.cuda_ordinal)  # type: ignore[arg-type]

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = Counter(got)
    assert sorted(counts) == [0, 1, 2]
    assert max(counts.values()) - min(counts.values()) <= 1


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        choose([gpu(A100, 0)], prefer="fast")
    with pytest.raises(ValueError):
        choose([gpu(A100, 0)], worker=-1)
    with pytest.raises(ValueError):
        choose([gpu(A100, 0)], min_free_bytes=-5)
    assert choose([gpu(A100, 0)], env={"LOCAL_RANK": "not-a-number"}).cuda_ordinal == 0


# --------------------------------------------------------------------------- CPU and memory


def test_cpu_threads_honours_affinity_and_cgroup_quota(tmp_path: pytest.TempPathFactory) -> None:
    root = tmp_path  # type: ignore[assignment]
    (root / "cpu.max").write_text("150000 100000\n")  # type: ignore[operator]
    import os

    affinity = len(os.sched_getaffinity(0))
    assert cpu_threads(cgroup_root=str(root)) == min(affinity, 2)
    (root / "cpu.max").write_text("max 100000\n")  # type: ignore[operator]
    assert cpu_threads(cgroup_root=str(root)) == affinity


def test_check_memory() -> None:
    (d,) = list_devices(nvml=FakeNVML([gpu(RTX_3070, 0, free=6 * GiB)]), environ=NO_ENV)
    ok = check_memory(5 * GiB, d)
    assert ok and ok.free_bytes == 6 * GiB and "fits in" in ok.reason
    no = check_memory(7 * GiB, d)
    assert not no and "does not fit" in no.reason
    assert check_memory(1, None).free_bytes > 0  # CPU RAM
    with pytest.raises(ValueError):
        check_memory(-1, d)


@pytest.mark.parametrize(("spec", "free", "prefer", "model"), [
    (RTX_3070, 8 * GiB, "auto", "large-v3"),          # 4521 MB x 1.2 = 5.3 GiB fits
    (RTX_3070, 5 * GiB, "auto", "large-v3-turbo"),    # large fp16 needs 5.3 GiB; turbo 2.97 GiB
    (RTX_3070, 5 * GiB, "memory", "large-v3"),        # int8: 2953 MB x 1.2 = 3.46 GiB
    (RTX_3070, 2600 * MiB, "auto", "small"),          # distil 2.82 GiB no; medium no; small 2.4 GiB
    (GTX_1080, 8 * GiB, "auto", "large-v3"),          # int8 on Pascal
    (RTX_3070, 500 * MiB, "auto", "tiny"),
])
def test_recommend_whisper_model(spec: tuple, free: int, prefer: str, model: str) -> None:
    c = choose([gpu(spec, 0, free=free)], prefer=prefer)
    assert recommend_whisper_model(c) == model


def test_recommend_on_cpu_is_capped_at_small() -> None:
    c = choose([], env=NO_ENV)
    assert c.kind == "cpu"
    assert recommend_whisper_model(c, free_bytes=64 * GiB) == "small"
    assert recommend_whisper_model(c, free_bytes=1 * GiB) == "tiny"



def test_choice_is_reconciled_with_ctranslate2s_supported_types() -> None:
    """What ctranslate2.get_supported_compute_types returned on a T4 whose
    build lacks fp16 kernels (shape: a set of strings)."""
    from gpuboot.devices import list_devices
    from gpuboot.select import compute_type_for

    (t4,) = list_devices(nvml=FakeNVML([gpu(T4, 0)]), environ=NO_ENV)
    ctype, why = compute_type_for(t4, "auto", supported={"int8", "int8_float32", "float32"})
    assert ctype == "int8" and "float16 not in ctranslate2's supported types" in why
    assert compute_type_for(t4, "auto", supported={"float32"})[0] == "float32"
    assert compute_type_for(t4, "auto", supported={"float16", "int8", "float32"})[0] == "float16"
