"""Doctor's check of the driver: "ok" only when CUDA answered, else one finding per broken layer and its fix.

The verdict is the driver probe's (``machine/probe.py``): the driver is ok only
when ``cuInit`` returned 0 and counted at least one GPU.  NVML answering is
not enough -- in a container without the ``compute`` capability, with a
``cuda-compat`` libcuda on a GeForce, or without ``/dev/nvidia-uvm``, NVML
and ``nvidia-smi`` answer while every CUDA application fails -- so such a
host gets "NVML answers, CUDA does not: <cause>".  The causes are
``_gpus/causes.py``'s; there is never advice to remove CUDA wheels while a
driver is installed but unusable.
"""

from __future__ import annotations

from typing import List

from .._gpus.causes import driver_causes
from .._gpus.codes import cuda_version_text
from .._libs import catalog as cat
from ..machine.metadata import valid_name
from .actions import pip_uninstall
from .report import Context, Finding, Severity

__all__ = ["check_driver"]

_NVML_ONLY = "NVML answers, CUDA does not: "


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
    if probe is None:  # a Context built without asking the driver: say what was not asked
        if nvml_answered:
            return [Finding(id="driver-not-asked", severity="info",
                            title=f"NVIDIA driver {inv.driver_version or '?'} answers NVML; CUDA was not asked",
                            evidence=(ctx.driver_evidence,),
                            remedy="`gpuboot doctor` asks CUDA itself (cuInit, in a child process)")]
        if ctx.driver_present:
            return [Finding(id="driver-not-answering", severity="problem",
                            title=f"the NVIDIA driver did not answer NVML: {inv.error}",
                            evidence=(ctx.driver_evidence,), remedy="run `nvidia-smi` for the driver's own message")]
        return [Finding(id="no-driver", severity="info", title="NVIDIA driver: not found",
                        evidence=(ctx.driver_evidence,),
                        remedy="install the NVIDIA driver to use a GPU (https://www.nvidia.com/drivers)"),
                        *_spare_wheels(ctx)]
    causes = driver_causes(probe, gpu_expected=_gpu_expected(ctx))
    out: List[Finding] = []
    if probe.answered and not any(c.severity == "problem" for c in causes):
        version = inv.driver_version or probe.user_space or "unknown version"
        cuda = (f"CUDA {inv.cuda_driver_version[0]}.{inv.cuda_driver_version[1]}" if inv.cuda_driver_version else
                cuda_version_text(probe.nvml_cuda_version or probe.cuda_driver_version))
        evidence = (ctx.driver_evidence, *([f"libcuda: {probe.libcuda}"] if probe.libcuda else []),
                    f"cuInit: 0, {probe.device_count} GPU(s)")
        out.append(Finding(id="driver", severity="ok", title=f"NVIDIA driver {version} (supports up to {cuda})",
                           evidence=evidence))
    nvml_only = (nvml_answered or probe.nvml_answered) and not probe.answered and probe.anything
    for c in causes:
        severity: Severity = ("problem" if c.severity == "problem" else
                              "warning" if c.severity == "warning" else "info")
        title = c.title if c.id in ("no-driver",) else f"{c.layer}: {c.title}"
        out.append(Finding(id=c.id, severity=severity, title=(_NVML_ONLY + title) if nvml_only else title,
                           evidence=((ctx.driver_evidence,) if c.id == "no-driver" else ()) + (*c.evidence,
                                                                                       f"source: {c.source}"),
                           remedy=c.fix))
    if not probe.anything and not ctx.driver_present and all(c.severity != "problem" for c in causes):
        out.extend(_spare_wheels(ctx))  # nothing NVIDIA here, and nothing says a GPU is wanted
    return out


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
        title = (f"NVIDIA wheels that no installed consumer needs ({size / 2**30:.2f} GiB of libraries), and no "
                 "driver to use them")
        evidence = (*(dists or [str(w.path) for w in spare[:5]]), *(f"kept, needed by a consumer: {d}" for d in kept))
        valid = [d for d in dists if valid_name(d)]
        if valid:
            out.append(Finding.fixed_by("wheels-without-driver", "warning", title, evidence, ctx.platform,
                                        pip_uninstall(*valid)))
        else:
            out.append(Finding(id="wheels-without-driver", severity="warning", title=title, evidence=evidence,
                               remedy="remove the NVIDIA wheels or install a driver"))
    return out
