"""Doctor's checks of the driver, the GPUs and the device choice."""

from __future__ import annotations

from typing import List, Mapping

from .._libs import catalog as cat
from .report import Context, Finding

__all__ = ["DRIVER_MINIMUMS", "check_driver", "check_driver_age", "check_devices", "check_choice"]

#: Minimum driver per CUDA major (CUDA Toolkit release notes, "CUDA Toolkit and
#: Corresponding Driver Versions" / minor version compatibility table).
DRIVER_MINIMUMS: Mapping[int, Mapping[str, str]] = {
    11: {"linux": "450.80.02", "win32": "452.39"},
    12: {"linux": "525.60.13", "win32": "528.33"},
    13: {"linux": "580.65.06", "win32": "580.88"},
}


def check_driver(ctx: Context) -> List[Finding]:
    inv = ctx.inventory
    if not ctx.driver_present:
        out = [Finding("no-driver", "info", "NVIDIA driver: not found", (ctx.driver_evidence,),
                       "install the NVIDIA driver to use a GPU (https://www.nvidia.com/drivers)")]
        wheels = [lib for lib in ctx.installed if lib.source == "wheel"]
        needed = {name for n in ctx.needs for name in (*n.libraries, *n.optional)}
        needed = needed | {d for name in needed for d in cat.spec(name).depends + cat.spec(name).parts}
        kept_dists = {lib.distribution for lib in wheels if lib.name in needed and lib.distribution}
        spare = [lib for lib in wheels if lib.name not in needed and lib.distribution not in kept_dists]
        if spare:
            size = 0
            for lib in spare:
                try:
                    size += lib.path.stat().st_size
                except OSError:
                    pass
            dists = sorted({lib.distribution for lib in spare if lib.distribution})
            kept = sorted(d for d in kept_dists if d)
            out.append(Finding(
                "wheels-without-driver", "warning",
                f"NVIDIA wheels that no installed consumer needs ({size / 2**30:.2f} GiB of libraries), and no "
                "driver to use them", (*(dists or [str(w.path) for w in spare[:5]]),
                                       *(f"kept, needed by a consumer: {d}" for d in kept)),
                ("pip uninstall -y " + " ".join(dists)) if dists else "remove the NVIDIA wheels or install a driver"))
        return out
    version = inv.driver_version or "unknown version"
    cuda = f"CUDA {inv.cuda_driver_version[0]}.{inv.cuda_driver_version[1]}" if inv.cuda_driver_version else "CUDA ?"
    return [Finding("driver", "ok", f"NVIDIA driver {version} (supports up to {cuda})", (ctx.driver_evidence,))]


def check_driver_age(ctx: Context) -> List[Finding]:
    cuda_v = ctx.inventory.cuda_driver_version
    if cuda_v is None or not ctx.driver_present:
        return []
    out = []
    for n in ctx.needs:
        if cuda_v[0] < n.cuda_major:
            minimum = DRIVER_MINIMUMS.get(n.cuda_major, {}).get(ctx.platform, "?")
            out.append(Finding(
                "driver-too-old", "problem",
                f"{n.consumer} {n.version} needs CUDA {n.cuda_major}, but the driver supports only up to "
                f"CUDA {cuda_v[0]}.{cuda_v[1]}",
                (f"driver {ctx.inventory.driver_version}", f"source: {n.source}"),
                f"upgrade the NVIDIA driver to >= {minimum} (CUDA {n.cuda_major} minimum on "
                f"{'Windows' if ctx.platform == 'win32' else 'Linux'})"))
    return out


def check_devices(ctx: Context) -> List[Finding]:
    inv = ctx.inventory
    out: List[Finding] = []
    for d in inv.devices:
        out.append(Finding("gpu", "ok", f"GPU {d.describe()}", (d.uuid,)))
    for index, reason in inv.skipped:
        out.append(Finding("gpu-unreadable", "warning", f"GPU NVML {index} could not be read: {reason}", (),
                           "check permissions on /dev/nvidia* (run `ls -l /dev/nvidia*`) or the GPU's health "
                           "(`nvidia-smi -q`)"))
    visible = ctx.environ.get("CUDA_VISIBLE_DEVICES")
    if inv.devices and not inv.visible and visible is not None:
        out.append(Finding("visible-devices-hide-all", "problem",
                           f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU: CUDA sees none",
                           tuple(f"NVML {d.nvml_index}: {d.uuid}" for d in inv.devices),
                           "unset CUDA_VISIBLE_DEVICES, or list devices that exist (e.g. "
                           f"CUDA_VISIBLE_DEVICES=0 or ={inv.devices[0].uuid})"))
    migs = [d for d in inv.devices if d.mig_enabled]
    if migs:
        out.append(Finding("mig-enabled", "info",
                           f"MIG is enabled on {len(migs)} GPU(s): a CUDA process uses at most one MIG instance",
                           tuple(f"{m.uuid}: {len(m.mig_instances)} instance(s)" for m in migs),
                           "choose an instance with CUDA_VISIBLE_DEVICES=MIG-<uuid> (see `nvidia-smi -L`)"))
    for w in inv.warnings:
        if "CUDA_DEVICE_ORDER" in w:
            out.append(Finding("device-order", "warning", "CUDA ordinals of mixed GPUs are a heuristic", (w,),
                               "export CUDA_DEVICE_ORDER=PCI_BUS_ID"))
    if ctx.wsl:
        out.append(Finding("wsl", "info", "WSL2: the driver is Windows'; libcuda is /usr/lib/wsl/lib/libcuda.so.1",
                           ("/usr/lib/wsl/lib",),
                           "do not install a Linux NVIDIA driver inside WSL; update the Windows driver instead"))
    return out


def check_choice(ctx: Context) -> List[Finding]:
    """The device and precisions ``select_device`` picks here, and why."""
    from ..select import select_device

    ct2 = ctx.metadata("ctranslate2")
    c = select_device(inventory=ctx.inventory, environ=ctx.environ, reconcile=False,
                      ct2_version=ct2[0] if ct2 else "", cpu_threads=ctx.cpu_threads)
    return [Finding("device-choice", "info",
                    f"choice: {c.torch_device} torch_dtype={c.torch_dtype} compute_type={c.compute_type}",
                    (c.reason, *c.warnings))]
