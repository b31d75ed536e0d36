"""A stand-in for the ``pynvml`` module, for machines without a GPU.

It has the real module's function names and signatures, raises the real
``pynvml`` error classes (``pynvml.NVMLError(code)`` builds the subclass, as
the real library does) and returns the real ctypes structures.  Only the
values are invented: each GPU below is described from NVIDIA's spec pages.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import pynvml

GiB = 2**30
MiB = 2**20


@dataclass
class FakeGPU:
    name: str
    cc: Tuple[int, int]
    total: int
    free: Optional[int] = None
    uuid: str = ""
    pci: str = ""
    mig_capable: bool = False
    mig_enabled: bool = False
    device_id: int = 0  # PCI device id (0x21C4); 0: the driver did not say
    gi: int = 0  # MIG: GPU instance id
    ci: int = 0  # MIG: compute instance id
    migs: List[FakeGPU] = field(default_factory=list)
    errors: Dict[str, int] = field(default_factory=dict)  # function name -> NVML_ERROR_* code

    def __post_init__(self) -> None:
        if self.free is None:
            self.free = self.total - 400 * MiB  # a driver/context reserve


# name as NVML reports it, compute capability, memory (NVIDIA spec pages), PCI
# device id (the PCI ID Repository, vendor 10de)
TESLA_K80 = ("Tesla K80", (3, 7), 12 * GiB, 0x102D)  # GK210, one of its two GPUs
GTX_980 = ("NVIDIA GeForce GTX 980", (5, 2), 4 * GiB, 0x13C0)  # GM204
GTX_1080 = ("NVIDIA GeForce GTX 1080", (6, 1), 8 * GiB, 0x1B80)
GTX_1660_SUPER = ("NVIDIA GeForce GTX 1660 SUPER", (7, 5), 6 * GiB, 0x21C4)  # TU116
GTX_1650 = ("NVIDIA GeForce GTX 1650", (7, 5), 4 * GiB, 0x1F82)  # TU117
T1000 = ("NVIDIA T1000", (7, 5), 4 * GiB, 0x1FB0)  # TU117: no "GTX 16" in its name
RTX_2060 = ("NVIDIA GeForce RTX 2060", (7, 5), 6 * GiB, 0x1F08)  # TU106: tensor cores
T4 = ("Tesla T4", (7, 5), 16 * GiB, 0x1EB8)
V100 = ("Tesla V100-SXM2-32GB", (7, 0), 32 * GiB, 0x1DB5)
RTX_3070 = ("NVIDIA GeForce RTX 3070", (8, 6), 8 * GiB, 0x2484)
RTX_3090 = ("NVIDIA GeForce RTX 3090", (8, 6), 24 * GiB, 0x2204)
RTX_4090 = ("NVIDIA GeForce RTX 4090", (8, 9), 24 * GiB, 0x2684)
A100 = ("NVIDIA A100-SXM4-80GB", (8, 0), 80 * GiB, 0x20B2)
H100 = ("NVIDIA H100 80GB HBM3", (9, 0), 80 * GiB, 0x2330)
RTX_5090 = ("NVIDIA GeForce RTX 5090", (12, 0), 32 * GiB, 0x2B85)
P100 = ("Tesla P100-PCIE-16GB", (6, 0), 16 * GiB, 0x15F8)
JETSON_TX2 = ("NVIDIA Tegra X2", (6, 2), 8 * GiB, 0)  # CC 6.2: fp16 full rate, no dp4a


def gpu(spec: Tuple[str, Tuple[int, int], int, int], index: int, **kw: object) -> FakeGPU:
    name, cc, total, device_id = spec
    uuid = kw.pop("uuid", None) or f"GPU-{index:08x}-1111-2222-3333-{zlib.crc32(name.encode()):012d}"
    return FakeGPU(name, cc, total, uuid=str(uuid), pci=f"00000000:{index + 1:02X}:00.0",  # type: ignore[arg-type]
                   device_id=device_id, **kw)


def a100_with_mig(index: int, slices: int = 1) -> FakeGPU:
    parent = gpu(A100, index, mig_capable=True, mig_enabled=True)
    for j in range(slices):
        parent.migs.append(FakeGPU("NVIDIA A100-SXM4-80GB MIG 1g.10gb", (8, 0), 9728 * MiB,
                                   uuid=f"MIG-{index:04x}{j:04x}-aaaa-bbbb-cccc-000000000000",
                                   pci=parent.pci, device_id=parent.device_id, gi=(7, 8, 13)[j % 3], ci=0))
    return parent


class FakeNVML:
    """Module-like: ``discover(nvml=FakeNVML([...]))``."""

    def __init__(self, gpus: List[FakeGPU], *, init_error: Optional[int] = None, memory_v2: bool = True,
                 driver: str = "550.54.14", cuda_version: int = 12040) -> None:
        for k, v in vars(pynvml).items():  # the real error classes and constants
            if k.startswith(("NVMLError", "NVML_")) or k in ("nvmlMemory_v2",):
                setattr(self, k, v)
        self.gpus = gpus
        self.init_error = init_error
        self.memory_v2 = memory_v2
        self.driver = driver
        self.cuda_version = cuda_version
        self.initialised = 0

    # -- lifecycle
    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return self.cuda_version

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    # -- handles
    def _gpu(self, handle: object, fn: str) -> FakeGPU:
        g = handle if isinstance(handle, FakeGPU) else None
        assert g is not None, "not a handle"
        if fn in g.errors:
            raise pynvml.NVMLError(g.errors[fn])
        return g

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGPU:
        g = self.gpus[index]
        if "nvmlDeviceGetHandleByIndex" in g.errors:
            raise pynvml.NVMLError(g.errors["nvmlDeviceGetHandleByIndex"])
        return g

    def nvmlDeviceGetUUID(self, handle: object) -> str:
        return self._gpu(handle, "nvmlDeviceGetUUID").uuid

    def nvmlDeviceGetName(self, handle: object) -> str:
        return self._gpu(handle, "nvmlDeviceGetName").name

    def nvmlDeviceGetPciInfo(self, handle: object) -> pynvml.nvmlPciInfo_t:
        g = self._gpu(handle, "nvmlDeviceGetPciInfo")
        info = pynvml.nvmlPciInfo_t()
        info.busId = g.pci.encode()
        info.pciDeviceId = (g.device_id << 16) | 0x10DE if g.device_id else 0
        return info

    def nvmlDeviceGetGpuInstanceId(self, handle: object) -> int:
        return self._gpu(handle, "nvmlDeviceGetGpuInstanceId").gi

    def nvmlDeviceGetComputeInstanceId(self, handle: object) -> int:
        return self._gpu(handle, "nvmlDeviceGetComputeInstanceId").ci

    def nvmlDeviceGetCudaComputeCapability(self, handle: object) -> Tuple[int, int]:
        return self._gpu(handle, "nvmlDeviceGetCudaComputeCapability").cc

    def nvmlDeviceGetMemoryInfo(self, handle: object, version: Optional[int] = None) -> object:
        g = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        assert g.free is not None
        if version:
            if not self.memory_v2:  # the real library: symbol missing -> FunctionNotFound
                raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
            mem2 = pynvml.c_nvmlMemory_v2_t()
            mem2.version, mem2.total, mem2.free = version, g.total, g.free
            mem2.reserved = 300 * MiB
            mem2.used = g.total - g.free - mem2.reserved
            return mem2
        mem = pynvml.c_nvmlMemory_t()
        # v1: 'used' includes the reserved memory (driver >= 510); 'free' is right.
        mem.total, mem.free, mem.used = g.total, g.free, g.total - g.free
        return mem

    def nvmlDeviceGetMigMode(self, handle: object) -> List[int]:
        g = self._gpu(handle, "nvmlDeviceGetMigMode")
        if not g.mig_capable:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        mode = pynvml.NVML_DEVICE_MIG_ENABLE if g.mig_enabled else pynvml.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: object) -> int:
        return 7 if self._gpu(handle, "nvmlDeviceGetMaxMigDeviceCount").mig_capable else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: object, index: int) -> FakeGPU:
        g = self._gpu(handle, "nvmlDeviceGetMigDeviceHandleByIndex")
        if index >= len(g.migs):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return g.migs[index]
