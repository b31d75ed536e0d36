"""GPU discovery through NVML, and the CUDA view of it.

NVML (``nvidia-ml-py``, module ``pynvml``) is read without initialising CUDA:
no CUDA context is created and no GPU memory is taken.  NVML numbers GPUs by
its own index (PCI bus order); CUDA numbers them by *ordinal*, in
``CUDA_DEVICE_ORDER`` (default ``FASTEST_FIRST``) and after
``CUDA_VISIBLE_DEVICES`` has filtered and reordered them.  ``WhisperModel(
device_index=...)`` and ``torch.device("cuda", i)`` take the CUDA ordinal.

``CUDA_VISIBLE_DEVICES``, as the CUDA runtime reads it (CUDA C Programming
Guide, "CUDA Environment Variables"; torch ``_parse_visible_devices``; nvitop
``parse_cuda_visible_devices``):

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

import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _driver
from ._driver import DriverInfo

__all__ = ["Device", "Inventory", "discover", "list_devices", "parse_visible_devices",
           "VisibleEntry", "cuda_order", "apply_visibility", "cuda_order_from_driver"]

VisibleEntry = Union[int, str]


@dataclass(frozen=True)
class Device:
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

    @property
    def cc(self) -> float:
        """Compute capability as a number for comparisons (8.9)."""
        return self.compute_capability[0] + self.compute_capability[1] / 10

    def describe(self) -> str:
        gib = self.free_memory / 2**30
        where = f"cuda:{self.cuda_ordinal}" if self.cuda_ordinal is not None else "hidden"
        return (f"{where} {self.name} (CC {self.compute_capability[0]}.{self.compute_capability[1]}, "
                f"{gib:.1f} GiB free of {self.total_memory / 2**30:.1f}, NVML {self.nvml_index})")


@dataclass(frozen=True)
class Inventory:
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
    warnings: Tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------- CUDA_VISIBLE_DEVICES


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


# --------------------------------------------------------------------------- ordering


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
    from dataclasses import replace

    return [replace(d, cuda_ordinal=i) for i, d in enumerate(chosen)], warnings


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


def cuda_order_from_driver(environ: Optional[Mapping[str, str]] = None, timeout: float = 20.0) -> Optional[List[str]]:
    """PCI bus ids in the order the CUDA driver enumerates every GPU, asked of
    libcuda (``cuInit``, ``cuDeviceGet``, ``cuDeviceGetPCIBusId``) in a
    short-lived child process, so this process creates no CUDA context (as
    nvitop does).  ``CUDA_DEVICE_ORDER`` is passed on; ``CUDA_VISIBLE_DEVICES``
    is not (every GPU is wanted).  ``None`` when the driver cannot answer.
    """
    import json
    import subprocess
    import sys

    lib = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
    code = (
        "import ctypes, json, sys\n"
        f"cuda = ctypes.CDLL({lib!r})\n"
        "n = ctypes.c_int()\n"
        "if cuda.cuInit(0) or cuda.cuDeviceGetCount(ctypes.byref(n)): sys.exit(3)\n"
        "out = []\n"
        "for i in range(n.value):\n"
        "    dev, buf = ctypes.c_int(), ctypes.create_string_buffer(64)\n"
        "    if cuda.cuDeviceGet(ctypes.byref(dev), i) or cuda.cuDeviceGetPCIBusId(buf, 64, dev): sys.exit(3)\n"
        "    out.append(buf.value.decode())\n"
        "print(json.dumps(out))\n")
    env = dict(os.environ if environ is None else environ)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                              env=env)
        if proc.returncode != 0:
            return None
        ids = json.loads(proc.stdout)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return [str(x) for x in ids] if isinstance(ids, list) else None


def _bus_key(bus_id: str) -> Tuple[int, str]:
    """``00000000:01:00.0`` (NVML) and ``0000:01:00.0`` (CUDA) compare equal."""
    domain, _, rest = bus_id.strip().lower().partition(":")
    try:
        return int(domain, 16), rest
    except ValueError:
        return -1, bus_id.lower()


# --------------------------------------------------------------------------- NVML


def _nvml() -> Any:
    import pynvml

    return pynvml


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
            instances.append(Device(index, None, _text(nvml.nvmlDeviceGetUUID(mh)), m_name, pci,
                                    (int(major), int(minor)), m_total, m_free, None, (), True, uuid,
                                    prof.group(1) if prof else None, device_id, gi, ci))
    return Device(index, None, uuid, name, pci, (int(major), int(minor)), total, free, mig, tuple(instances),
                  pci_device_id=device_id)


def _instance_ids(nvml: Any, handle: Any) -> Tuple[Optional[int], Optional[int]]:
    try:
        return int(nvml.nvmlDeviceGetGpuInstanceId(handle)), int(nvml.nvmlDeviceGetComputeInstanceId(handle))
    except (nvml.NVMLError, AttributeError):
        return None, None


def discover(*, nvml: Any = None, environ: Optional[Mapping[str, str]] = None,
             driver: Optional[DriverInfo] = None,
             order_probe: Optional[Callable[[], Optional[List[str]]]] = None) -> Inventory:
    """Read every GPU through NVML and work out what CUDA will see.

    Never raises for NVML's sake: no driver (``detect_driver``: a few
    ``stat`` calls, checked before ``pynvml`` is even imported), no NVML
    library or an NVML error on init gives an ``Inventory`` with ``error`` set; a GPU that cannot be read (no
    permission, lost, not supported) is listed in ``skipped`` with the
    reason, and the others are still read.

    Args:
        nvml: the ``pynvml`` module, or a stand-in with its functions, error
            classes and return types (tests).
        environ: where ``CUDA_VISIBLE_DEVICES`` and ``CUDA_DEVICE_ORDER`` are
            read (default ``os.environ``).
        driver: a driver check already made (``ensure()``'s); default: check now.
        order_probe: returns the CUDA driver's PCI bus order; asked only when
            GPUs of different models are visible and the order is not
            ``PCI_BUS_ID``.  Default with the real NVML: ``cuda_order_from_driver``.
    """
    env = os.environ if environ is None else environ
    if nvml is None and order_probe is None:
        order_probe = lambda: cuda_order_from_driver(env)  # noqa: E731
    if nvml is None:
        found = driver if driver is not None else _driver.detect_driver()
        if not found.present:  # no NVML to load: skip importing pynvml and a failing dlopen
            return Inventory(error=f"no NVIDIA driver ({found.evidence})")
        try:
            nvml = _nvml()
        except ImportError:
            return Inventory(error="nvidia-ml-py is not installed (pip install nvidia-ml-py)")
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return Inventory(error=f"NVML unavailable: {type(exc).__name__}: {exc}")
    except OSError as exc:
        return Inventory(error=f"NVML unavailable: {exc}")
    try:
        driver_version: Optional[str]
        try:
            driver_version = _text(nvml.nvmlSystemGetDriverVersion())
        except nvml.NVMLError:
            driver_version = None
        cuda_v: Optional[Tuple[int, int]]
        try:
            v = int(nvml.nvmlSystemGetCudaDriverVersion_v2())
            cuda_v = (v // 1000, (v % 1000) // 10)
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
        bus_order = None
        if mixed and order_probe is not None and (order or "").strip().upper() != "PCI_BUS_ID":
            bus_order = order_probe()
        visible, warnings = apply_visibility(devices, env.get("CUDA_VISIBLE_DEVICES"), order, bus_order)
        by_uuid = {d.uuid: d.cuda_ordinal for d in visible}
        from dataclasses import replace

        devices = [replace(d, cuda_ordinal=by_uuid.get(d.uuid),
                           mig_instances=tuple(replace(m, cuda_ordinal=by_uuid.get(m.uuid))
                                               for m in d.mig_instances)) for d in devices]
        if env.get("CUDA_VISIBLE_DEVICES") is not None and devices and not visible:
            warnings.append(f"CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES')!r} hides every GPU")
        return Inventory(tuple(devices), tuple(visible), tuple(skipped), driver_version, cuda_v, None,
                         tuple(warnings))
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:  # shutdown failing must not hide the result
            pass


def list_devices(*, nvml: Any = None, environ: Optional[Mapping[str, str]] = None) -> List[Device]:
    """Every GPU NVML can read, NVML order, each with its CUDA ordinal
    (``None`` when hidden).  ``[]`` without a driver; see ``discover()`` for
    the reasons and the skipped devices."""
    return list(discover(nvml=nvml, environ=environ).devices)
