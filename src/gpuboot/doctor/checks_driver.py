"""Doctor's check of the driver: NVML's answer, else the driver probe's broken layer and its fix.

Never an "ok" driver unless the driver answered (NVML initialised, or the
probe's ``cuInit``/``nvmlInit`` returned 0), one finding per broken layer
(``_gpus/causes.py``), and never advice to remove CUDA wheels while a driver
is installed but unusable.
"""

from __future__ import annotations

from typing import List

from .._gpus.causes import driver_causes
from .._libs import catalog as cat
from .report import Context, Finding

__all__ = ["check_driver"]


def _gpu_expected(ctx: Context) -> bool:
    """The environment declares that it wants a GPU: the NVIDIA Container
    Toolkit's ``NVIDIA_VISIBLE_DEVICES`` (set by the nvidia/cuda images) names
    devices.  An installed consumer alone does not: CTranslate2 and torch run on
    the CPU too, so a machine without a driver is information, not a problem."""
    value = ctx.environ.get("NVIDIA_VISIBLE_DEVICES", "").strip().lower()
    return bool(value) and value not in ("void", "none")


def check_driver(ctx: Context) -> List[Finding]:
    inv = ctx.inventory
    probe = ctx.probe
    nvml_answered = ctx.driver_present and inv.error is None
    if nvml_answered or (probe is not None and probe.answered and not driver_causes(probe)):
        version = inv.driver_version or (probe.user_space if probe is not None else None) or "unknown version"
        cuda_v = inv.cuda_driver_version
        if cuda_v is None and probe is not None:
            v = probe.nvml_cuda_version or probe.cuda_driver_version
            cuda_v = (v // 1000, v % 1000 // 10) if v else None
        cuda = f"CUDA {cuda_v[0]}.{cuda_v[1]}" if cuda_v else "CUDA ?"
        evidence = [ctx.driver_evidence] + ([f"libcuda: {probe.libcuda}"] if probe is not None and probe.libcuda
                                            else [])
        return [Finding("driver", "ok", f"NVIDIA driver {version} (supports up to {cuda})", tuple(evidence))]
    if probe is not None:
        causes = driver_causes(probe, gpu_expected=_gpu_expected(ctx))
        out = [Finding(c.id, "problem" if c.severity == "problem" else "info",
                       f"{c.layer}: {c.title}" if c.id != "no-driver" else c.title,
                       ((ctx.driver_evidence,) if c.id == "no-driver" else ()) + (*c.evidence, f"source: {c.source}"),
                       c.fix) for c in causes]
        if not out and ctx.driver_present:  # NVML failed, the probe saw nothing more specific
            out.append(Finding("driver-not-answering", "problem",
                               f"the NVIDIA driver did not answer NVML: {inv.error}", (ctx.driver_evidence,),
                               "run `nvidia-smi` for the driver's own message"))
        if not probe.anything and not ctx.driver_present and all(c.severity != "problem" for c in causes):
            out.extend(_spare_wheels(ctx))  # nothing NVIDIA here, and nothing says a GPU is wanted
        return out
    if ctx.driver_present:  # given by the caller, NVML did not answer
        return [Finding("driver-not-answering", "problem", f"the NVIDIA driver did not answer NVML: {inv.error}",
                        (ctx.driver_evidence,), "run `nvidia-smi` for the driver's own message")]
    return [Finding("no-driver", "info", "NVIDIA driver: not found", (ctx.driver_evidence,),
                    "install the NVIDIA driver to use a GPU (https://www.nvidia.com/drivers)"), *_spare_wheels(ctx)]


def _spare_wheels(ctx: Context) -> List[Finding]:
    """NVIDIA wheels no installed consumer needs, on a machine with no trace of
    a driver: only then is removing them advice that cannot hurt."""
    wheels = [lib for lib in ctx.installed if lib.source == "wheel"]
    needed = {name for n in ctx.needs for name in (*n.libraries, *n.optional)}
    needed = needed | {d for name in needed for d in cat.spec(name).depends + cat.spec(name).parts}
    kept_dists = {lib.distribution for lib in wheels if lib.name in needed and lib.distribution}
    spare = [lib for lib in wheels if lib.name not in needed and lib.distribution not in kept_dists]
    out: List[Finding] = []
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
