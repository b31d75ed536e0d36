"""Precision policy on a table of real GPUs (torch dtype, CTranslate2 compute_type), through a fake
NVML built from the real pynvml error classes and structures."""

from __future__ import annotations

from typing import Dict

import pytest
from fake_nvml import (
    A100,
    GTX_1080,
    GTX_1650,
    GTX_1660_SUPER,
    H100,
    JETSON_TX2,
    P100,
    RTX_2060,
    RTX_3070,
    RTX_3090,
    RTX_4090,
    RTX_5090,
    T4,
    T1000,
    V100,
    FakeNVML,
    gpu,
)
from helpers import choose, hosted

from gpuboot._gpus.nvml import list_devices

NO_ENV: Dict[str, str] = {}


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
    # Chips judged by their PCI device id, not their names:
    (GTX_1650,       "float16",  "int8",    "int8",         "float32"),  # TU117: no tensor cores
    (T1000,          "float16",  "int8",    "int8",         "float32"),  # TU117, no "GTX 16" in the name
    (RTX_2060,       "float16",  "float16", "int8_float16", "float16"),  # TU106, CC 7.5 with tensor cores
    (JETSON_TX2,     "float16",  "float32", "float32",      "float32"),  # CC 6.2: no dp4a (CT2: 6.1 only)
]


@pytest.mark.parametrize(("spec", "torch_dtype", "auto", "speed", "accuracy"), TABLE,
                         ids=[row[0][0] for row in TABLE])
def test_single_gpu_table(spec: tuple, torch_dtype: str, auto: str, speed: str, accuracy: str) -> None:
    # A driver for CUDA 12.8: new enough for every GPU here to run ctranslate2 4.8.5 (H100 and RTX 5090 through
    # its PTX, ISA 8.7; tests/test_gpu_code.py covers older drivers).
    c = choose([gpu(spec, 0)], driver_cuda=12080)
    assert (c.kind, c.cuda_ordinal, c.ct2_device) == ("cuda", 0, "cuda")
    assert c.torch_dtype == torch_dtype
    assert c.compute_type == auto
    assert choose([gpu(spec, 0)], prefer="speed", driver_cuda=12080).compute_type == speed
    assert choose([gpu(spec, 0)], prefer="memory", driver_cuda=12080).compute_type == speed
    acc = choose([gpu(spec, 0)], prefer="accuracy", driver_cuda=12080)
    assert (acc.compute_type, acc.torch_dtype) == (accuracy, "float32")
    assert spec[0] in c.reason


def test_rtx5090_with_old_ctranslate2_avoids_int8() -> None:
    c = choose([gpu(RTX_5090, 0)], ct2="4.6.0", prefer="speed", driver_cuda=12080)
    assert c.compute_type == "float16"
    assert "#1865" in c.reason
    assert choose([gpu(RTX_5090, 0)], ct2="4.7.0", prefer="speed", driver_cuda=12080).compute_type == "int8_float16"


def test_gtx1660_float16_quirk_is_explained() -> None:
    c = choose([gpu(GTX_1660_SUPER, 0)])
    assert c.compute_type == "int8" and "whisper-diarization #327" in c.reason


def test_choice_is_reconciled_with_ctranslate2s_supported_types() -> None:
    """What ctranslate2.get_supported_compute_types returned on a T4 whose
    build lacks fp16 kernels (shape: a set of strings)."""
    from gpuboot._gpus.precision import compute_type_for

    (t4,) = hosted(list_devices, nvml=FakeNVML([gpu(T4, 0)]))(environ=NO_ENV)
    ctype, why = compute_type_for(t4, "auto", supported={"int8", "int8_float32", "float32"})
    assert ctype == "int8" and "float16 not in ctranslate2's supported types" in why
    assert compute_type_for(t4, "auto", supported={"float32"})[0] == "float32"
    assert compute_type_for(t4, "auto", supported={"float16", "int8", "float32"})[0] == "float16"


def test_ct2_cuda_allow_fp16_is_honoured() -> None:
    plain = choose([gpu(GTX_1080, 0)])
    allowed = choose([gpu(GTX_1080, 0)], env={"CT2_CUDA_ALLOW_FP16": "1"})
    assert plain.compute_type == "int8"
    assert allowed.compute_type == "float16" and "CT2_CUDA_ALLOW_FP16=1" in allowed.reason
    assert choose([gpu(GTX_1650, 0)], env={"CT2_CUDA_ALLOW_FP16": "1"}).compute_type == "float16"


def test_a_driver_too_old_for_ctranslate2_keeps_it_on_the_cpu() -> None:
    """Driver 470 supports CUDA 11.4; ctranslate2 4.8 is built for CUDA 12."""
    old = choose([gpu(RTX_3070, 0)], ct2="4.8.5", driver_cuda=11040)
    assert (old.kind, old.ct2_device, old.compute_type) == ("cuda", "cpu", "int8")
    assert "supports CUDA 11.4" in old.reason and "built for CUDA 12" in old.reason
    assert any("update the NVIDIA driver" in w for w in old.warnings)
    ct2_3 = choose([gpu(RTX_3070, 0)], ct2="3.24.0", driver_cuda=11040)  # a CUDA 11 build: fine on this driver
    assert (ct2_3.ct2_device, ct2_3.compute_type) == ("cuda", "float16")


def test_an_explicit_cuda_ordinal_runs_the_rules_for_that_gpu() -> None:
    gpus = [gpu(GTX_1080, 0), gpu(RTX_3070, 1)]
    env = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    best = choose(gpus, env=env)
    assert (best.cuda_ordinal, best.compute_type) == (1, "float16")
    pascal = choose(gpus, env=env, cuda_ordinal=0)
    assert (pascal.cuda_ordinal, pascal.compute_type, pascal.torch_dtype) == (0, "int8", "float32")
    assert "CUDA ordinal 0 as asked" in pascal.reason
    with pytest.raises(ValueError, match="no visible GPU has that CUDA ordinal"):
        choose(gpus, env=env, cuda_ordinal=5)
