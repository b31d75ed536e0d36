"""``CUDA_VISIBLE_DEVICES`` and ``CUDA_DEVICE_ORDER`` as the CUDA runtime reads them: pure rules over ``Device`` lists.

CUDA C Programming Guide, "CUDA Environment Variables"; torch
``_parse_visible_devices``; nvitop ``parse_cuda_visible_devices``:

* unset: every device; set but empty: none;
* a comma-separated list of integers (GPUs in CUDA enumeration order) or of
  ``GPU-``/``MIG-`` UUIDs, where a unique prefix of a UUID is enough, or
  ``MIG-GPU-<UUID>/<GPU instance>/<compute instance>``;
* the first entry that is invalid (negative, not a number, no such device,
  ambiguous prefix) ends the list: ``"0,2,-1,1"`` -> devices 0 and 2;
* a repeated entry, or two entries naming the same device, make it empty;
* at most one MIG instance is enumerated (``apply_visibility`` has the rules).
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .device import Device

__all__ = ["VisibleEntry", "parse_visible_devices", "cuda_order", "apply_visibility"]

VisibleEntry = Union[int, str]


_C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale


_LEADING_INT = re.compile(r"[ \t\n\v\f\r]*\+?([0-9]+)")


def _leading_int(text: str) -> int:
    """strtoul-like: the leading ASCII digits of ``text`` (after C-locale
    whitespace and an optional '+'), or -1 when there are none or a '-' sign.
    Python's ``int()`` and ``\\d`` accept every Unicode digit; the CUDA runtime
    does not."""
    m = _LEADING_INT.match(text)
    return int(m.group(1)) if m else -1


def parse_visible_devices(value: Optional[str]) -> Optional[List[VisibleEntry]]:
    """Parse ``CUDA_VISIBLE_DEVICES`` like the CUDA runtime.

    Returns:
        ``None`` when unset (every device), else the entries in order:
        integers (CUDA enumeration positions) or UUID strings/prefixes.  An
        empty list means no device.  Never raises.
    """
    if value is None:
        return None
    entries = value.split(",")
    out: List[VisibleEntry] = []
    if value.strip(_C_SPACE).startswith(("GPU-", "MIG-")):
        for raw in entries:
            e = raw.strip(_C_SPACE)
            if not e.startswith(("GPU-", "MIG-")):
                break
            if e in out:
                return []
            out.append(e)
        return out
    for raw in entries:
        n = _leading_int(raw)
        if n < 0:
            break
        if n in out:
            return []
        out.append(n)
    return out


def cuda_order(devices: Sequence[Device], order: Optional[str],
               cuda_bus_order: Optional[Sequence[str]] = None) -> Tuple[List[Device], Optional[str]]:
    """Devices in the order CUDA enumerates them, and a warning when that
    order cannot be known.

    ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` is PCI bus order (NVML's).  The default
    ``FASTEST_FIRST`` is CUDA's own ranking: it equals PCI order when all GPUs
    are the same model; for mixed GPUs the order the driver reported
    (``cuda_bus_order``, from ``cuda_order_from_driver``) is used, and only
    without it does gpuboot estimate (compute capability, then memory) and
    warn that ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` makes the order certain.
    """
    by_pci = sorted(devices, key=lambda d: (_bus_key(d.pci_bus_id), d.nvml_index))
    if (order or "FASTEST_FIRST").strip().upper() == "PCI_BUS_ID":
        return by_pci, None
    kinds = {(d.name, d.compute_capability, d.total_memory) for d in devices}
    if len(kinds) <= 1:
        return by_pci, None
    if cuda_bus_order:
        rank: Dict[Tuple[int, str], int] = {}
        for i, bus in enumerate(cuda_bus_order):
            rank.setdefault(_bus_key(bus), i)
        if all(_bus_key(d.pci_bus_id) in rank for d in devices):
            return sorted(devices, key=lambda d: rank[_bus_key(d.pci_bus_id)]), None
    fastest = sorted(by_pci, key=lambda d: (-d.compute_capability[0], -d.compute_capability[1],
                                            -d.total_memory))
    return fastest, ("GPUs of different models are visible and CUDA_DEVICE_ORDER is not PCI_BUS_ID: CUDA's "
                     "FASTEST_FIRST order is a heuristic, so CUDA ordinals may differ from gpuboot's "
                     "estimate; export CUDA_DEVICE_ORDER=PCI_BUS_ID to make them certain")


def apply_visibility(devices: Sequence[Device], visible: Optional[str], order: Optional[str],
                     cuda_bus_order: Optional[Sequence[str]] = None) -> Tuple[List[Device], List[str]]:
    """Assign CUDA ordinals as the CUDA runtime does.  Returns the visible
    devices in ordinal order (each with ``cuda_ordinal`` set) and warnings.

    Rules (CUDA C Programming Guide, "CUDA Environment Variables"; MIG user
    guide, "CUDA Device Enumeration"; the same as nvitop's parser):

    * integers index the GPUs in CUDA's enumeration order -- GPUs, never MIG
      instances; ``GPU-`` entries match GPU UUIDs by unique prefix (a
      MIG-enabled GPU's UUID counts: a prefix it shares is ambiguous);
      ``MIG-<uuid>`` matches MIG instance UUIDs, ``MIG-GPU-<uuid>/<GI>/<CI>``
      the instance with those GPU and compute instance ids;
    * the first entry that matches nothing ends the list; two entries that
      are the same device leave no device at all;
    * a process enumerates at most one MIG instance: the first MIG instance
      listed, else the first instance of the first MIG-enabled GPU listed
      (then the other GPUs are not enumerated).

    ``cuda_bus_order``: PCI bus ids in the order the CUDA driver enumerates
    (``cuda_order_from_driver``); without it the order is estimated.
    """
    warnings: List[str] = []
    ordered, warn = cuda_order(devices, order, cuda_bus_order)
    if warn:
        warnings.append(warn)
    entries = parse_visible_devices(visible)
    selected: List[Device] = []
    if entries is None:
        selected = list(ordered)
    else:
        for e in entries:
            match = _resolve_entry(e, ordered)
            if match is None:
                break
            if any(match.uuid == d.uuid for d in selected):
                selected = []
                warnings.append(f"CUDA_VISIBLE_DEVICES={visible!r} names {match.uuid} twice: CUDA sees no device")
                break
            selected.append(match)
    chosen = _one_mig(selected, warnings)
    return [d._replace(cuda_ordinal=i) for i, d in enumerate(chosen)], warnings


def _one_mig(selected: Sequence[Device], warnings: List[str]) -> List[Device]:
    migs = [d for d in selected if d.is_mig]
    if migs:
        if len(migs) > 1:
            warnings.append(f"{len(migs)} MIG instances are visible but a CUDA process can use only one: "
                            f"{migs[0].uuid}")
        return [migs[0]]
    out: List[Device] = []
    for d in selected:
        if d.mig_enabled:
            if not d.mig_instances:
                continue
            if len(d.mig_instances) > 1 or len(selected) > 1:
                warnings.append(f"{d.uuid} is in MIG mode: a CUDA process enumerates only one of its MIG "
                                f"instances, the first ({d.mig_instances[0].uuid}), and no other GPU")
            return [d.mig_instances[0]]
        out.append(d)
    return out


_MIG_BY_GPU = re.compile(r"^MIG-(GPU-[^/]+)/([0-9]+)/([0-9]+)$")


def _resolve_entry(entry: VisibleEntry, ordered: Sequence[Device]) -> Optional[Device]:
    if isinstance(entry, int):
        return ordered[entry] if entry < len(ordered) else None
    m = _MIG_BY_GPU.match(entry)
    if m:
        gpus = [d for d in ordered if d.uuid.startswith(m.group(1))]
        if len(gpus) != 1:
            return None
        gi, ci = int(m.group(2)), int(m.group(3))
        hits = [x for x in gpus[0].mig_instances if (x.gpu_instance_id, x.compute_instance_id) == (gi, ci)]
        return hits[0] if hits else None
    if entry.startswith("MIG-"):
        hits = [x for d in ordered for x in d.mig_instances if x.uuid.startswith(entry)]
    else:
        hits = [d for d in ordered if d.uuid.startswith(entry)]
    return hits[0] if len(hits) == 1 else None  # an ambiguous prefix ends the list


def _bus_key(bus_id: str) -> Tuple[int, str]:
    """``00000000:01:00.0`` (NVML) and ``0000:01:00.0`` (CUDA) compare equal."""
    domain, _, rest = bus_id.strip().lower().partition(":")
    try:
        return int(domain, 16), rest
    except ValueError:
        return -1, bus_id.lower()
