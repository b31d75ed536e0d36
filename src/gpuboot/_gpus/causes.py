"""Causes, not codes: what a ``DriverProbe`` saw, mapped to the broken layer and the exact fix.

``CAUSES`` (``cause_rules.py``) is an ordered table, most fundamental layer first: each row names
a stable id, the layer, a small rule function and the rule's source.  A rule
reads only the probe (and whether a GPU is wanted) and returns what it saw --
title, fix, severity -- or ``None``.  The first rule that matches ends the
search unless its row says ``then=True`` (a stale device node is reported
with the missing kernel module behind it).  A new cause is one function and
one row; ``tests/test_causes.py`` feeds arbitrary probes to every rule.

The codes come from ``codes.py`` (cuda.h, nvml.h).  Facts from: NVIDIA's
CUDA Compatibility guide (forward compatibility is for data-center GPUs; the
minimum drivers below), the NVIDIA Container Toolkit documentation
(``--gpus``, ``NVIDIA_DRIVER_CAPABILITIES``; devices lost after ``systemctl
daemon-reload``: NVIDIA/nvidia-container-toolkit#48), the CUDA on WSL guide
(no Linux driver inside WSL), the Fabric Manager user guide (NVSwitch
systems: ``nvidia-fabricmanager`` running, at the driver's version) and
cuda.h's own text for each code.  Layers: ``driver``, ``kernel module``,
``device nodes``, ``container``, ``WSL``, ``compat library``, ``library path``,
``fabric manager``, ``GPU``.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from ..base.record import Record
from ..machine.probe import DriverProbe
from .cause_rules import CAUSES, CauseRule
from .codes import COMPUTE_MODES, cuda_error, cuda_version_text, nvml_error

__all__ = ["Cause", "CauseRule", "CAUSES", "driver_causes", "cause_line", "DRIVER_MINIMUMS", "driver_minimum"]

def driver_minimum(cuda_major: int, platform: str = "linux") -> Optional[str]:
    """The oldest driver that runs CUDA ``cuda_major`` on ``platform`` (``DRIVER_MINIMUMS``)."""
    return DRIVER_MINIMUMS.get(cuda_major, {}).get(platform)


#: Minimum driver per CUDA major and platform (CUDA Toolkit release notes,
#: "CUDA Toolkit and Corresponding Driver Versions": minor version compatibility).
DRIVER_MINIMUMS = {
    11: {"linux": "450.80.02", "win32": "452.39"},
    12: {"linux": "525.60.13", "win32": "528.33"},
    13: {"linux": "580.65.06", "win32": "580.88"},
}

class Cause(Record):
    """One broken layer.

    Attributes:
        id: a stable id (doctor's finding id), e.g. ``"kernel-module-not-loaded"``.
        layer: the layer that is broken (see the module docstring).
        severity: ``"problem"``, ``"warning"`` (some GPUs usable) or ``"info"``
            (nothing here asks for a GPU).
        title: what is wrong, in one line, with the versions and paths seen.
        evidence: what the probe saw.
        fix: the exact command or instruction.
        source: where the rule comes from.
    """

    id: str
    layer: str
    severity: str
    title: str
    evidence: Tuple[str, ...]
    fix: str
    source: str

    def line(self) -> str:
        """``layer: title -- fix: ...``, the one line a reason or a trail carries."""
        return f"{self.layer}: {self.title} -- fix: {self.fix}"


def _evidence(p: DriverProbe) -> Tuple[str, ...]:
    out = []
    if p.libcuda:
        out.append(f"libcuda: {p.libcuda}" + (f" (user-space driver {p.libcuda_version})" if p.libcuda_version else ""))
    elif p.libcuda_error:
        name = "nvcuda.dll" if p.platform == "win32" else "libcuda.so.1"
        out.append(p.libcuda_error if p.libcuda_error.startswith(name) else f"{name}: {p.libcuda_error}")
    if p.cuda_driver_version:
        out.append(f"cuDriverGetVersion: {p.cuda_driver_version} ({cuda_version_text(p.cuda_driver_version)})")
    if p.cu_init is not None:
        out.append(f"cuInit: {cuda_error(p.cu_init)}" + (f", {p.device_count} GPU(s)" if p.cu_init == 0 else ""))
    if p.nvml_init is not None:
        out.append(f"nvmlInit: {nvml_error(p.nvml_init)}")
    if p.init_skipped:
        out.append(f"cuInit/nvmlInit {p.init_skipped}")
    out.extend(f"cuda:{o}: compute mode {COMPUTE_MODES.get(m, m)}, context: {cuda_error(c)}"
               for o, m, c in p.restricted_devices)
    if p.platform != "win32":
        out.append(f"kernel module: {p.kernel_module}" if p.kernel_module else
                   "kernel module: none loaded (no /proc/driver/nvidia/version)")
        out.append("device nodes: " + (", ".join(f"/dev/{n}" for n in p.device_nodes) or "none"))
    if p.container:
        out.append(f"container: {p.container}; NVIDIA_VISIBLE_DEVICES={p.nvidia_visible_devices}, "
                   f"NVIDIA_DRIVER_CAPABILITIES={p.nvidia_driver_capabilities}")
    if p.wsl:
        out.append(f"WSL2: /usr/lib/wsl/lib/libcuda.so.1 {'present' if p.wsl_libcuda else 'absent'}")
    out.extend(f"on LD_LIBRARY_PATH: {d}" for d in p.library_path_dirs)
    if p.error:
        out.append(f"probe: {p.error}")
    return tuple(out)


def driver_causes(p: DriverProbe, *, gpu_expected: bool = False) -> List[Cause]:
    """The broken layers the probe shows, most fundamental first (``CAUSES``);
    none of severity ``"problem"`` when CUDA answered with at least one usable
    GPU (``[]``, or a warning when some GPUs are unavailable).

    Args:
        p: ``probe_driver()``'s answer.
        gpu_expected: something here wants a GPU (``NVIDIA_VISIBLE_DEVICES``
            set): "no driver at all" is then a problem, not information.

    Returns:
        ``Cause`` values; never raises.
    """
    out: List[Cause] = []
    evidence: Optional[Tuple[str, ...]] = None
    for row in CAUSES:
        seen = row.rule(p, gpu_expected)
        if seen is None:
            continue
        evidence = _evidence(p) if evidence is None else evidence
        out.append(Cause(id=row.id, layer=row.layer, severity=seen.severity, title=seen.title, evidence=evidence,
                         fix=seen.fix, source=row.source))
        if not row.then:
            break
    return out


def cause_line(p: DriverProbe, *, gpu_expected: bool = True) -> Optional[str]:
    """The first broken layer as one line (``select_device().reason``,
    ``load_whisper()``'s trail), or ``None`` when nothing is broken."""
    causes = driver_causes(p, gpu_expected=gpu_expected)
    return causes[0].line() if causes else None
