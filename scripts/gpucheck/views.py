"""Each layer's devices as ``compare.DeviceView`` records (JSON-able dicts between a child and the check)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Dict, List, Optional

from .compare import DeviceView, normalise_uuid


def gpuboot_views() -> List[Dict[str, Any]]:
    import gpuboot

    inv = gpuboot.discover()
    return [asdict(DeviceView(ordinal=-1 if d.cuda_ordinal is None else d.cuda_ordinal, name=d.name,
                              cc=(d.compute_capability[0], d.compute_capability[1]), uuid=d.uuid,
                              total=d.total_memory, free=d.free_memory)) for d in inv.visible]


def torch_views(torch: Any) -> List[Dict[str, Any]]:
    out = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        free, total = torch.cuda.mem_get_info(i)
        out.append(asdict(DeviceView(ordinal=i, name=p.name, cc=(p.major, p.minor),
                                     uuid=normalise_uuid(str(getattr(p, "uuid", "") or "")), total=total, free=free)))
    return out


def cupy_views(cupy: Any) -> List[Dict[str, Any]]:
    """The CUDA runtime's own answers (``cudaGetDeviceCount``, ``cudaGetDeviceProperties``, ``cudaMemGetInfo``)."""
    rt = cupy.cuda.runtime
    out = []
    for i in range(cuda_count(cupy)):
        p = rt.getDeviceProperties(i)
        name = p["name"].decode() if isinstance(p["name"], bytes) else str(p["name"])
        with cupy.cuda.Device(i):
            free, total = rt.memGetInfo()
        out.append(asdict(DeviceView(ordinal=i, name=name, cc=(p["major"], p["minor"]),
                                     uuid=normalise_uuid(p.get("uuid")), total=total, free=free)))
    return out


def cuda_count(cupy: Any) -> int:
    """``cudaGetDeviceCount``; 0 for ``cudaErrorNoDevice`` (100, driver_types.h), as CUDA says when nothing is
    visible."""
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except cupy.cuda.runtime.CUDARuntimeError as exc:
        if getattr(exc, "status", None) == 100:
            return 0
        raise


def views(raw: Optional[List[Dict[str, Any]]]) -> List[DeviceView]:
    """Device views back from a child's JSON."""
    return [DeviceView(**{**d, "cc": tuple(d["cc"])}) for d in raw or []]
