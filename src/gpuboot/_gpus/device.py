"""``Device`` (one GPU or MIG instance as NVML reports it) and ``Inventory`` (what discovery learned)."""

from __future__ import annotations

from typing import Optional, Tuple

from ..base.record import Record

__all__ = ["Device", "Inventory"]

class Device(Record):
    """One GPU (or one MIG instance) as NVML reports it.

    Attributes:
        nvml_index: NVML's index (PCI bus order); for a MIG instance, its
            parent's index.
        cuda_ordinal: the ordinal CUDA gives it in this process
            (``CUDA_VISIBLE_DEVICES`` and ``CUDA_DEVICE_ORDER`` applied), or
            ``None`` when hidden.
        uuid: ``GPU-...`` or ``MIG-...``.
        name: marketing name, e.g. ``"NVIDIA GeForce RTX 4090"``.
        pci_bus_id: ``"00000000:01:00.0"``.
        compute_capability: ``(major, minor)``, e.g. ``(8, 9)``.
        total_memory, free_memory: bytes (``free`` from NVML memory info v2
            where the driver has it, else v1; never ``total - used``, which
            counts reserved memory as used since driver 510).
        mig_enabled: MIG mode is on (``None`` where NVML cannot tell).
        mig_instances: the MIG instances of a MIG-enabled GPU.
        is_mig: this is a MIG instance; ``parent_uuid`` names its GPU.
        mig_profile: e.g. ``"1g.10gb"`` for a MIG instance, from its name.
        pci_device_id: the PCI device id (``0x21C4``: a TU116 GTX 1660 SUPER),
            from NVML's PCI info; what the chip is, whatever the name says.
        gpu_instance_id, compute_instance_id: a MIG instance's GI and CI ids
            (``MIG-<GPU-UUID>/<GI>/<CI>`` in ``CUDA_VISIBLE_DEVICES``).
    """

    nvml_index: int
    cuda_ordinal: Optional[int]
    uuid: str
    name: str
    pci_bus_id: str
    compute_capability: Tuple[int, int]
    total_memory: int
    free_memory: int
    mig_enabled: Optional[bool] = False
    mig_instances: Tuple[Device, ...] = ()
    is_mig: bool = False
    parent_uuid: Optional[str] = None
    mig_profile: Optional[str] = None
    pci_device_id: Optional[int] = None
    gpu_instance_id: Optional[int] = None
    compute_instance_id: Optional[int] = None

    def describe(self) -> str:
        gib = self.free_memory / 2**30
        where = f"cuda:{self.cuda_ordinal}" if self.cuda_ordinal is not None else "hidden"
        return (f"{where} {self.name} (CC {self.compute_capability[0]}.{self.compute_capability[1]}, "
                f"{gib:.1f} GiB free of {self.total_memory / 2**30:.1f}, NVML {self.nvml_index})")


class Inventory(Record):
    """Everything ``discover()`` learned.

    Attributes:
        devices: every GPU NVML could read (visible or not), NVML order.
        visible: the devices CUDA will enumerate, in CUDA ordinal order.
        skipped: ``(nvml_index, reason)`` for GPUs that could not be read
            (no permission, GPU lost, not supported).
        driver_version: e.g. ``"550.54.14"``, else ``None``.
        cuda_driver_version: the driver's highest CUDA version, ``(12, 4)``.
        error: why there are no GPUs at all (no NVML library, no driver).
        warnings: e.g. the ``CUDA_DEVICE_ORDER`` ambiguity.
    """

    devices: Tuple[Device, ...] = ()
    visible: Tuple[Device, ...] = ()
    skipped: Tuple[Tuple[int, str], ...] = ()
    driver_version: Optional[str] = None
    cuda_driver_version: Optional[Tuple[int, int]] = None
    error: Optional[str] = None
    warnings: Tuple[str, ...] = ()
