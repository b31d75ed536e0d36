"""``select_device``'s reasons: what CUDA, the driver and the consumers' rows say about a GPU, in one line each.

The consumers asked are the rows of ``consumers.table`` with ``placement`` (their GPU code decides the GPU) and
the one whose row ``chooses`` a precision; each function reads one source of a ``Machine`` and never raises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional, Sequence, Tuple

from .._gpus.device import Device

if TYPE_CHECKING:
    from .._code.consumers import ConsumerCode
    from ..consumers.types import Chooses, Consumer
    from ..machine.probe import DriverProbe
    from ..machine.snapshot import Machine

__all__ = ["gpu_code", "chooser", "compute_type_row", "cuda_verdict", "probe_cuda", "driver_cause", "driver_too_old",
           "quirks_avoided"]


def gpu_code(machine: Machine, device: Device, driver_cuda: Optional[Tuple[int, int]]) -> Tuple[ConsumerCode, ...]:
    """The GPU code of each installed placement consumer judged for ``device`` (``_code/consumers.py``)."""
    from .._code.consumers import installed_code
    from ..consumers.table import CONSUMER_TABLE

    cc = device.compute_capability
    label = f"cuda:{device.cuda_ordinal} {device.name} (CC {cc[0]}.{cc[1]})"
    return installed_code(machine, cc, driver_cuda, label, rows=[r for r in CONSUMER_TABLE if r.placement])


def chooser(codes: Sequence[ConsumerCode], chooses: Chooses) -> Optional[ConsumerCode]:
    """The code of the consumer whose row decides the ``chooses`` precision, among ``codes``."""
    from ..consumers.table import consumer

    for code in codes:
        row = consumer(code.consumer)
        if row is not None and row.chooses == chooses:
            return code
    return None


def compute_type_row() -> Optional[Consumer]:
    """The row of the consumer whose build decides ``DeviceChoice.compute_type`` (CTranslate2's)."""
    from ..consumers.table import CONSUMER_TABLE

    return next((r for r in CONSUMER_TABLE if r.chooses == "compute_type"), None)


def cuda_verdict(probe: Optional[DriverProbe]) -> Optional[str]:
    """``None`` when CUDA answered (or was not asked: no probe), else the
    broken layer and its fix in one line (``_gpus/causes.py``)."""
    if probe is None or probe.answered:
        return None
    from .._gpus.causes import cause_line

    return cause_line(probe) or "cuInit did not succeed"


def probe_cuda(probe: Optional[DriverProbe]) -> Optional[Tuple[int, int]]:
    """The CUDA version the probe's driver supports (NVML's, else ``cuDriverGetVersion``)."""
    if probe is None:
        return None
    from .._gpus.codes import cuda_version

    return cuda_version(probe.nvml_cuda_version or probe.cuda_driver_version)


def driver_cause(machine: Machine, error: str) -> str:
    """Why no GPU is usable, in one line: the driver probe's broken layer and fix when there is a driver (or a
    user-space ``libcuda``) to ask or a GPU is expected (an NVIDIA container image's ``NVIDIA_VISIBLE_DEVICES``:
    one started without ``--gpus`` has nothing NVIDIA inside), else discovery's own ``error`` ("no NVIDIA
    driver ...")."""
    from ..machine.hostfacts import libcuda_hints

    expected = machine.driver.present or bool(machine.environ.get("NVIDIA_VISIBLE_DEVICES"))
    probe = machine.probe if expected or libcuda_hints(machine.root, machine.environ) else None
    if probe is None:
        return error
    from .._gpus.causes import driver_causes

    causes = driver_causes(probe, gpu_expected=True)
    if not causes or causes[0].id == "no-driver":  # nothing NVIDIA here: discovery's own words say it best
        return error
    return causes[0].line()


def driver_too_old(machine: Machine, driver_cuda: Optional[Tuple[int, int]]) -> Optional[str]:
    """Why the compute-type consumer (CTranslate2) cannot use this driver, or ``None``: its installed build's
    CUDA major above the highest CUDA version the driver supports (NVML ``nvmlSystemGetCudaDriverVersion``)."""
    from ..consumers.installed import installed_need

    row = compute_type_row()
    need = installed_need(machine, row) if row is not None and driver_cuda is not None else None
    if need is None or driver_cuda is None or driver_cuda[0] >= need.cuda_major:
        return None
    return (f"the driver supports CUDA {driver_cuda[0]}.{driver_cuda[1]}, but {need.consumer} {need.version} is "
            f"built for CUDA {need.cuda_major} ({need.source}): update the NVIDIA driver (`gpuboot doctor` names the "
            "minimum)")


def quirks_avoided(machine: Machine, device: Device) -> Dict[str, str]:
    """The compute types the installed compute-type consumer's build breaks on ``device`` (its row's
    ``quirks``), each with why."""
    from ..consumers.installed import installed_need

    row = compute_type_row()
    dist = machine.distribution(row.name) if row is not None else None
    if row is None or dist is None:
        return {}
    need = installed_need(machine, row)
    out: Dict[str, str] = {}
    for quirk in row.quirks:
        if quirk.drops and quirk.applies(dist.version, need.cuda_major if need else None, device.compute_capability):
            why = f"{row.name} {dist.version} on CC {device.compute_capability[0]}.x: {quirk.what} ({quirk.source})"
            for ctype in quirk.drops:
                out.setdefault(ctype, why)
    return out
