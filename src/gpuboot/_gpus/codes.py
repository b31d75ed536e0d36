"""The CUDA driver API and NVML codes gpuboot reads, named as their headers name them, and CUDA version decoding.

Every number here is checked against the headers by ``tests/test_codes.py``:
``cuda.h`` (enum ``cudaError_enum`` and ``CUcomputemode``, CUDA 13.0) and
``nvml.h`` (enum ``nvmlReturn_t``, the ``nvidia-nvml-dev`` wheel).  A code a
rule handles must be one of these: a code the real library never returns
tests nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Optional, Tuple

__all__ = ["CUDA_ERRORS", "NVML_ERRORS", "COMPUTE_MODES", "cuda_error", "nvml_error", "cuda_code", "nvml_code",
           "cuda_version",
           "cuda_version_text"]

#: cuda.h, ``enum cudaError_enum``: the codes ``cuInit``, ``cuDeviceGetCount``
#: and context creation return that gpuboot explains.
CUDA_ERRORS: Dict[int, str] = {
    0: "CUDA_SUCCESS",
    1: "CUDA_ERROR_INVALID_VALUE",
    2: "CUDA_ERROR_OUT_OF_MEMORY",
    3: "CUDA_ERROR_NOT_INITIALIZED",
    34: "CUDA_ERROR_STUB_LIBRARY",
    36: "CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER",
    46: "CUDA_ERROR_DEVICE_UNAVAILABLE",
    100: "CUDA_ERROR_NO_DEVICE",
    101: "CUDA_ERROR_INVALID_DEVICE",
    102: "CUDA_ERROR_DEVICE_NOT_LICENSED",
    222: "CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
    209: "CUDA_ERROR_NO_BINARY_FOR_GPU",
    304: "CUDA_ERROR_OPERATING_SYSTEM",
    800: "CUDA_ERROR_NOT_PERMITTED",
    801: "CUDA_ERROR_NOT_SUPPORTED",
    802: "CUDA_ERROR_SYSTEM_NOT_READY",
    803: "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
    804: "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
    999: "CUDA_ERROR_UNKNOWN",
}

#: nvml.h, ``nvmlReturn_t``: the codes ``nvmlInit`` returns that gpuboot explains.
NVML_ERRORS: Dict[int, str] = {
    0: "NVML_SUCCESS",
    4: "NVML_ERROR_NO_PERMISSION",
    9: "NVML_ERROR_DRIVER_NOT_LOADED",
    12: "NVML_ERROR_LIBRARY_NOT_FOUND",
    17: "NVML_ERROR_OPERATING_SYSTEM",
    18: "NVML_ERROR_LIB_RM_VERSION_MISMATCH",
    999: "NVML_ERROR_UNKNOWN",
}

#: cuda.h, ``CUcomputemode`` (``cuDeviceGetAttribute(CU_DEVICE_ATTRIBUTE_COMPUTE_MODE = 20)``).
COMPUTE_MODES: Dict[int, str] = {
    0: "CU_COMPUTEMODE_DEFAULT",
    2: "CU_COMPUTEMODE_PROHIBITED",
    3: "CU_COMPUTEMODE_EXCLUSIVE_PROCESS",
}
#: cuda.h ``CU_DEVICE_ATTRIBUTE_COMPUTE_MODE``.
ATTRIBUTE_COMPUTE_MODE = 20


def cuda_error(code: Optional[int]) -> str:
    """``"CUDA_ERROR_NO_DEVICE (100)"``; an unlisted code as ``"code 7"``; ``None`` as ``"not called"``."""
    if code is None:
        return "not called"
    name = CUDA_ERRORS.get(code)
    return f"{name} ({code})" if name else f"code {code}"


def nvml_error(code: Optional[int]) -> str:
    """``"NVML_ERROR_DRIVER_NOT_LOADED (9)"``; an unlisted code as ``"code 7"``; ``None`` as ``"not called"``."""
    if code is None:
        return "not called"
    name = NVML_ERRORS.get(code)
    return f"{name} ({code})" if name else f"code {code}"


def cuda_code(code: int) -> str:
    """``"CUDA_ERROR_NO_DEVICE, 100"``: a code named inside parentheses of a sentence."""
    name = CUDA_ERRORS.get(code)
    return f"{name}, {code}" if name else f"code {code}"


def nvml_code(code: int) -> str:
    """``"NVML_ERROR_DRIVER_NOT_LOADED, 9"``: a code named inside parentheses of a sentence."""
    name = NVML_ERRORS.get(code)
    return f"{name}, {code}" if name else f"code {code}"


def cuda_version(value: Optional[int]) -> Optional[Tuple[int, int]]:
    """``cuDriverGetVersion``/``nvmlSystemGetCudaDriverVersion`` integer -> ``(major, minor)``:
    12040 -> (12, 4) (cuda.h: ``1000 * major + 10 * minor``); ``None`` for ``None`` or a value <= 0."""
    if value is None or not isinstance(value, int) or value <= 0:
        return None
    return value // 1000, value % 1000 // 10


def cuda_version_text(value: Optional[int]) -> str:
    """``12040`` -> ``"CUDA 12.4"``; ``"CUDA ?"`` when unknown."""
    v = cuda_version(value)
    return f"CUDA {v[0]}.{v[1]}" if v else "CUDA ?"
