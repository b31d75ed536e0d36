"""Every CUDA and NVML code gpuboot names exists in NVIDIA's headers with that name: cuda.h (the CUDA toolkit on
these machines) and nvml.h (the nvidia-nvml-dev wheel).  A rule written for a code the real library never returns
would test nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict

from driver_host import headers

import gpuboot._gpus.cause_rules as rules_module
import gpuboot._gpus.causes as causes_module
import gpuboot.machine.probe_child as child
import gpuboot.select as select_module
from gpuboot._gpus.codes import ATTRIBUTE_COMPUTE_MODE, COMPUTE_MODES, CUDA_ERRORS, NVML_ERRORS, cuda_version


def _enum(text: str, prefix: str) -> Dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(rf"\b({prefix}[A-Z0-9_]*)\s*=\s*(\d+)\s*,?", text)}


def test_the_code_tables_match_the_headers() -> None:
    cuda_inc, nvml_inc = headers()
    cuda_h = (cuda_inc / "cuda.h").read_text()
    nvml_h = (nvml_inc / "nvml.h").read_text()
    cuda = _enum(cuda_h, "CUDA_")
    nvml = _enum(nvml_h, "NVML_")
    for code, name in CUDA_ERRORS.items():
        assert cuda.get(name) == code, (name, code, cuda.get(name))
    for code, name in NVML_ERRORS.items():
        assert nvml.get(name) == code, (name, code, nvml.get(name))
    modes = _enum(cuda_h, "CU_COMPUTEMODE_")
    for code, name in COMPUTE_MODES.items():
        assert modes.get(name) == code
    assert _enum(cuda_h, "CU_DEVICE_ATTRIBUTE_")["CU_DEVICE_ATTRIBUTE_COMPUTE_MODE"] == ATTRIBUTE_COMPUTE_MODE
    assert child.COMPUTE_MODE_ATTRIBUTE == ATTRIBUTE_COMPUTE_MODE
    # cuda.h: "returns the CUDA version as (1000 * major + 10 * minor)"
    assert "(1000 * major + 10 * minor)" in cuda_h
    assert cuda_version(12040) == (12, 4) and cuda_version(13000) == (13, 0) and cuda_version(0) is None


def test_every_code_a_rule_compares_with_is_in_the_tables() -> None:
    """The numbers the rules and the selection compare cuInit's, NVML's and context codes with."""
    for module in (causes_module, rules_module, select_module):
        text = Path(module.__file__ or "").read_text()
        pattern = r"(cu_init|nvml_init|code)\s*[!=]=\s*(\d+)|cuda_(?:error|code)\((\d+)\)|nvml_(?:error|code)\((\d+)\)"
        for m in re.finditer(pattern, text):
            kind, number = m.group(1), int(m.group(2) or m.group(3) or m.group(4))
            table = NVML_ERRORS if kind == "nvml_init" or m.group(4) else CUDA_ERRORS
            assert number in table, (module.__name__, m.group(0))
