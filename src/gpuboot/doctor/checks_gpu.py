"""Doctor's checks of the driver, the GPUs and the device choice."""

from __future__ import annotations

from typing import List

from .._gpus.causes import DRIVER_MINIMUMS
from .._gpus.codes import cuda_version
from .report import Context, Finding

__all__ = ["DRIVER_MINIMUMS", "check_driver_age", "check_devices", "check_choice"]


def check_driver_age(ctx: Context) -> List[Finding]:
    """Each consumer's CUDA major against the highest CUDA version the driver
    supports (minor version compatibility: any 12.x runtime on a 12.x driver)."""
    cuda_v = ctx.inventory.cuda_driver_version
    if cuda_v is None and ctx.probe is not None and (ctx.probe.answered or ctx.probe.nvml_answered):
        cuda_v = cuda_version(ctx.probe.nvml_cuda_version or ctx.probe.cuda_driver_version)
    if cuda_v is None:
        return []
    out = []
    for n in ctx.needs:
        if cuda_v[0] < n.cuda_major:
            minimum = DRIVER_MINIMUMS.get(n.cuda_major, {}).get(ctx.platform, "?")
            out.append(Finding(
                id="driver-too-old", severity="problem",
                title=f"{n.consumer} {n.version} needs CUDA {n.cuda_major}, but the driver supports only up to "
                f"CUDA {cuda_v[0]}.{cuda_v[1]}",
                evidence=(f"driver {ctx.inventory.driver_version or (ctx.probe.user_space if ctx.probe else None)}",
                 f"source: {n.source}"),
                remedy=f"upgrade the NVIDIA driver to >= {minimum} (CUDA {n.cuda_major} minimum on "
                f"{'Windows' if ctx.platform == 'win32' else 'Linux'})"))
    return out


def check_devices(ctx: Context) -> List[Finding]:
    inv = ctx.inventory
    out: List[Finding] = []
    for d in inv.devices:
        out.append(Finding(id="gpu", severity="ok", title=f"GPU {d.describe()}", evidence=(d.uuid,)))
    for index, reason in inv.skipped:
        out.append(Finding(id="gpu-unreadable", severity="warning",
                           title=f"GPU NVML {index} could not be read: {reason}", evidence=(),
                           remedy="check permissions on /dev/nvidia* (run `ls -l /dev/nvidia*`) or the GPU's health "
                           "(`nvidia-smi -q`)"))
    visible = ctx.environ.get("CUDA_VISIBLE_DEVICES")
    if inv.devices and not inv.visible and visible is not None:
        out.append(Finding(id="visible-devices-hide-all", severity="problem",
                           title=f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU: CUDA sees none",
                           evidence=tuple(f"NVML {d.nvml_index}: {d.uuid}" for d in inv.devices),
                           remedy="unset CUDA_VISIBLE_DEVICES, or list devices that exist (e.g. "
                           f"CUDA_VISIBLE_DEVICES=0 or ={inv.devices[0].uuid})"))
    migs = [d for d in inv.devices if d.mig_enabled]
    if migs:
        out.append(Finding(id="mig-enabled", severity="info",
                           title=f"MIG is enabled on {len(migs)} GPU(s): a CUDA process uses at most one MIG instance",
                           evidence=tuple(f"{m.uuid}: {len(m.mig_instances)} instance(s)" for m in migs),
                           remedy="choose an instance with CUDA_VISIBLE_DEVICES=MIG-<uuid> (see `nvidia-smi -L`)"))
    for w in inv.warnings:
        if "CUDA_DEVICE_ORDER" in w:
            out.append(Finding(id="device-order", severity="warning",
                               title="CUDA ordinals of mixed GPUs are a heuristic", evidence=(w,),
                               remedy="export CUDA_DEVICE_ORDER=PCI_BUS_ID"))
    if ctx.machine.wsl:
        out.append(Finding(id="wsl", severity="info",
                           title="WSL2: the driver is Windows'; libcuda is /usr/lib/wsl/lib/libcuda.so.1",
                           evidence=("/usr/lib/wsl/lib",),
                           remedy="do not install a Linux NVIDIA driver inside WSL; update the Windows driver instead"))
    return out


def check_choice(ctx: Context) -> List[Finding]:
    """The device and precisions ``select_device`` picks on this machine, and why (without importing a
    consumer: the context's snapshot never asks one)."""
    from ..select import select_device

    with ctx.machine.scope():
        c = select_device()
    return [Finding(id="device-choice", severity="info",
                    title=f"choice: {c.torch_device} torch_dtype={c.torch_dtype} compute_type={c.compute_type}",
                    evidence=(c.reason, *c.warnings))]
