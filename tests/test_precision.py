"""Precision policy on a table of real GPUs (torch dtype, CTranslate2 compute_type), through a fake
NVML built from the real pynvml error classes and structures."""

from __future__ import annotations

from typing import Dict

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
    gpu,
)
from helpers import choose

from gpuboot.devices import list_devices

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


def test_choice_is_reconciled_with_ctranslate2s_supported_types() -> None:
    """What ctranslate2.get_supported_compute_types returned on a T4 whose
    build lacks fp16 kernels (shape: a set of strings)."""
    from gpuboot._precision import compute_type_for

    (t4,) = list_devices(nvml=FakeNVML([gpu(T4, 0)]), environ=NO_ENV)
    ctype, why = compute_type_for(t4, "auto", supported={"int8", "int8_float32", "float32"})
    assert ctype == "int8" and "float16 not in ctranslate2's supported types" in why
    assert compute_type_for(t4, "auto", supported={"float32"})[0] == "float32"
    assert compute_type_for(t4, "auto", supported={"float16", "int8", "float32"})[0] == "float16"
