"""GPU discovery through NVML (``nvidia-ml-py``, module ``pynvml``), without initialising CUDA.

NVML numbers GPUs by its own index (PCI bus order); CUDA numbers them by
*ordinal*, in ``CUDA_DEVICE_ORDER`` (default ``FASTEST_FIRST``) and after
``CUDA_VISIBLE_DEVICES`` has filtered and reordered them (``visible.py``).
``WhisperModel(device_index=...)`` and ``torch.device("cuda", i)`` take the
CUDA ordinal.  No CUDA context is created and no GPU memory is taken.
"""

from __future__ import annotations

import re
from typing import Any, List, Mapping, Optional, Tuple

from .codes import cuda_version
from .device import Device, Inventory
from .visible import apply_visibility

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..machine.snapshot import Machine

__all__ = ["discover", "list_devices"]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _memory(nvml: Any, handle: Any) -> Tuple[int, int]:
    try:
        info = nvml.nvmlDeviceGetMemoryInfo(handle, version=nvml.nvmlMemory_v2)
    except (nvml.NVMLError, AttributeError, TypeError):
        info = nvml.nvmlDeviceGetMemoryInfo(handle)  # v2 missing (WSL, old drivers)
    return int(info.total), int(info.free)


_MIG_PROFILE = re.compile(r"MIG (\d+g\.\d+gb)", re.IGNORECASE)


def _read_device(nvml: Any, index: int, handle: Any) -> Device:
    uuid = _text(nvml.nvmlDeviceGetUUID(handle))
    name = _text(nvml.nvmlDeviceGetName(handle))
    pci_info = nvml.nvmlDeviceGetPciInfo(handle)
    pci = _text(pci_info.busId)
    raw_id = int(getattr(pci_info, "pciDeviceId", 0) or 0)
    device_id = (raw_id >> 16) if raw_id else None  # (device << 16) | vendor 0x10DE
    major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
    total, free = _memory(nvml, handle)
    mig: Optional[bool] = False
    instances: List[Device] = []
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
        mig = bool(current == getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1))
    except nvml.NVMLError_NotSupported:
        mig = False
    except nvml.NVMLError:
        mig = None
    if mig:
        count = nvml.nvmlDeviceGetMaxMigDeviceCount(handle)
        for i in range(count):
            try:
                mh = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, i)
            except nvml.NVMLError_NotFound:
                continue
            m_total, m_free = _memory(nvml, mh)
            m_name = _text(nvml.nvmlDeviceGetName(mh))
            prof = _MIG_PROFILE.search(m_name)
            gi, ci = _instance_ids(nvml, mh)
            instances.append(Device(nvml_index=index, cuda_ordinal=None, uuid=_text(nvml.nvmlDeviceGetUUID(mh)),
                                    name=m_name, pci_bus_id=pci,
                                    compute_capability=(int(major), int(minor)), total_memory=m_total,
                                    free_memory=m_free, mig_enabled=None, mig_instances=(), is_mig=True,
                                    parent_uuid=uuid,
                                    mig_profile=prof.group(1) if prof else None, pci_device_id=device_id,
                                    gpu_instance_id=gi, compute_instance_id=ci))
    return Device(nvml_index=index, cuda_ordinal=None, uuid=uuid, name=name, pci_bus_id=pci,
                  compute_capability=(int(major), int(minor)), total_memory=total, free_memory=free, mig_enabled=mig,
                  mig_instances=tuple(instances),
                  pci_device_id=device_id)


def _instance_ids(nvml: Any, handle: Any) -> Tuple[Optional[int], Optional[int]]:
    try:
        return int(nvml.nvmlDeviceGetGpuInstanceId(handle)), int(nvml.nvmlDeviceGetComputeInstanceId(handle))
    except (nvml.NVMLError, AttributeError):
        return None, None


def discover(*, environ: Optional[Mapping[str, str]] = None) -> Inventory:
    """Read every GPU through NVML and work out what CUDA will see.

    Never raises for NVML's sake: no driver (the machine's driver check: a few ``stat`` calls, made before
    ``pynvml`` is even imported), no NVML library or an NVML error on init gives an ``Inventory`` with ``error``
    set; a GPU that cannot be read (no permission, lost, not supported) is listed in ``skipped`` with the
    reason, and the others are still read.  Where GPUs of different models are visible and
    ``CUDA_DEVICE_ORDER`` is not ``PCI_BUS_ID``, CUDA's own order is asked of the driver in a child process
    (``Machine.cuda_order``).  The machine is ``machine.snapshot.current()``; the inventory is read once per
    snapshot and environment.

    Args:
        environ: where ``CUDA_VISIBLE_DEVICES`` and ``CUDA_DEVICE_ORDER`` are
            read (default: the machine's environment, ``os.environ``).
    """
    from ..machine.snapshot import current

    machine = current()
    env = machine.environ if environ is None else environ
    key = ("inventory", env.get("CUDA_VISIBLE_DEVICES"), env.get("CUDA_DEVICE_ORDER"))
    return machine.memo(key, lambda: _read(machine, env))


def _read(machine: Machine, env: Mapping[str, str]) -> Inventory:
    found = machine.driver
    if not found.present:  # no NVML to load: skip importing pynvml and a failing dlopen
        return Inventory(error=f"no NVIDIA driver ({found.evidence})")
    nvml = machine.nvml
    if nvml is None:
        return Inventory(error="nvidia-ml-py is not installed (pip install nvidia-ml-py)")
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return Inventory(error=f"NVML unavailable: {type(exc).__name__}: {exc}")
    except OSError as exc:
        return Inventory(error=f"NVML unavailable: {exc}")
    try:
        return _devices(machine, nvml, env)
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:  # shutdown failing must not hide the result
            pass


def _devices(machine: Machine, nvml: Any, env: Mapping[str, str]) -> Inventory:
    driver_version: Optional[str]
    try:
        driver_version = _text(nvml.nvmlSystemGetDriverVersion())
    except nvml.NVMLError:
        driver_version = None
    cuda_v: Optional[Tuple[int, int]]
    try:
        cuda_v = cuda_version(int(nvml.nvmlSystemGetCudaDriverVersion_v2()))
    except (nvml.NVMLError, AttributeError):
        cuda_v = None
    try:
        count = int(nvml.nvmlDeviceGetCount())
    except nvml.NVMLError as exc:
        return Inventory(driver_version=driver_version, cuda_driver_version=cuda_v,
                         error=f"NVML cannot count GPUs: {type(exc).__name__}: {exc}")
    devices: List[Device] = []
    skipped: List[Tuple[int, str]] = []
    for i in range(count):
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            devices.append(_read_device(nvml, i, handle))
        except nvml.NVMLError as exc:
            skipped.append((i, f"{type(exc).__name__}: {exc}"))
    order = env.get("CUDA_DEVICE_ORDER")
    mixed = len({(d.name, d.compute_capability, d.total_memory) for d in devices}) > 1
    bus_order = machine.cuda_order if mixed and (order or "").strip().upper() != "PCI_BUS_ID" else None
    visible, warnings = apply_visibility(devices, env.get("CUDA_VISIBLE_DEVICES"), order, bus_order)
    by_uuid = {d.uuid: d.cuda_ordinal for d in visible}
    devices = [d._replace(cuda_ordinal=by_uuid.get(d.uuid),
                          mig_instances=tuple(m._replace(cuda_ordinal=by_uuid.get(m.uuid))
                                              for m in d.mig_instances)) for d in devices]
    if env.get("CUDA_VISIBLE_DEVICES") is not None and devices and not visible:
        warnings.append(f"CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES')!r} hides every GPU")
    return Inventory(devices=tuple(devices), visible=tuple(visible), skipped=tuple(skipped),
                     driver_version=driver_version, cuda_driver_version=cuda_v, error=None,
                     warnings=tuple(warnings))


def list_devices(*, environ: Optional[Mapping[str, str]] = None) -> List[Device]:
    """Every GPU NVML can read, NVML order, each with its CUDA ordinal
    (``None`` when hidden).  ``[]`` without a driver; see ``discover()`` for
    the reasons and the skipped devices."""
    return list(discover(environ=environ).devices)
