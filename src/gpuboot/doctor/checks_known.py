"""Known-bad versions: combinations of an NVIDIA library, a consumer and a GPU that their makers document as broken.

``KNOWN_BAD`` is the table of the NVIDIA libraries' breakages: each row names what breaks, where the fact comes
from, and a rule over what doctor gathered (the installed NVIDIA libraries' wheel versions, the consumers' CUDA
majors, the visible GPUs' compute capabilities); a new one is one row.  JAX checks the first three at start-up
(``jax_plugins/xla_cuda12/__init__.py``, ``_check_cuda_versions``, jax-cuda12-pjrt 0.10.2); gpuboot checks them for
every consumer in the process, before anything runs.  A consumer's own known-bad builds are its row's ``quirks``
(``consumers/table.py``): ``check_consumer_quirks`` reports each that applies on a visible GPU.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

from ..base.record import Record
from .actions import Action, host, pip_install
from .report import Context, Finding, Severity

__all__ = ["KnownBad", "KNOWN_BAD", "check_known_bad", "check_consumer_quirks"]


class KnownBad(Record):
    """One documented breakage.

    Attributes:
        id: doctor's finding id.
        severity: ``"problem"`` (fails or corrupts) or ``"warning"``.
        source: where the fact comes from.
        rule: ``ctx -> (title, evidence, actions)`` when it applies here, else ``None``.
    """

    id: str
    severity: Severity
    source: str
    rule: Callable[[Context], Optional[Tuple[str, Tuple[str, ...], Tuple[Action, ...]]]]


def _version(text: Optional[str]) -> Optional[Tuple[int, ...]]:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text).release if text else None
    except InvalidVersion:
        return None


def _library(ctx: Context, name: str) -> List[Tuple[Tuple[int, ...], str, str]]:
    """``(release, distribution, path)`` of each installed copy of catalog library ``name`` with a wheel version."""
    out = []
    for lib in ctx.installed:
        release = _version(lib.version) if lib.name == name else None
        if release is not None:
            out.append((release, lib.distribution or "?", str(lib.path)))
    return out


def _ccs(ctx: Context) -> List[Tuple[str, Tuple[int, int]]]:
    return [(d.name, d.compute_capability) for d in ctx.inventory.visible]


def _cudnn_wheel(ctx: Context) -> str:
    cuda = max((n.cuda_major for n in ctx.needs if n.cudnn_major), default=12)
    return f"nvidia-cudnn-cu{cuda}"


def _tmem(ctx: Context) -> Optional[Tuple[str, Tuple[str, ...], Tuple[Action, ...]]]:
    blackwell = [(n, cc) for n, cc in _ccs(ctx) if cc[0] in (10, 11)]
    bad = [x for x in _library(ctx, "cublas") if (12, 8) <= x[0][:2] < (13, 2)]
    if not blackwell or not bad:
        return None
    release, dist, path = bad[0]
    gpu, cc = blackwell[0]
    actions: Tuple[Action, ...] = ((pip_install("nvidia-cublas>=13.2"),) if release[0] >= 13 else
                                   (host("run cuBLAS work on one stream at a time; no CUDA 12 cuBLAS has the fix "
                                         "(it came with cuBLAS 13.2)"),))
    return (f"cuBLAS {'.'.join(map(str, release))} frees Tensor Memory more than once in many kernels on CC "
            f"{cc[0]}.{cc[1]} ({gpu}): a cuBLAS kernel running beside another kernel (another stream) can silently "
            "corrupt data", (f"{dist}: {path}",), actions)


def _cudnn_9100(ctx: Context) -> Optional[Tuple[str, Tuple[str, ...], Tuple[Action, ...]]]:
    bad = [x for x in _library(ctx, "cudnn") if x[0][:3] == (9, 10, 0)]
    if not bad:
        return None
    _release, dist, path = bad[0]
    return ("cuDNN 9.10.0 broke binary backward compatibility (reordered enum values for block-scale data types): "
            "a consumer built against any other cuDNN 9 can misbehave with it", (f"{dist}: {path}",),
            (pip_install(f"{_cudnn_wheel(ctx)}>=9.10.1"),))


def _cudnn_multi_gpu(ctx: Context) -> Optional[Tuple[str, Tuple[str, ...], Tuple[Action, ...]]]:
    if len(ctx.inventory.visible) < 2:
        return None
    cudnn = [x for x in _library(ctx, "cudnn") if x[0][:3] < (9, 10, 1) and x[0][0] == 9]
    cublas = [x for x in _library(ctx, "cublasLt") + _library(ctx, "cublas") if x[0][:2] >= (12, 9)]
    if not cudnn or not cublas:
        return None
    return (f"cuDNN {'.'.join(map(str, cudnn[0][0]))} with cuBLASLt {'.'.join(map(str, cublas[0][0]))} on "
            f"{len(ctx.inventory.visible)} GPUs: matmuls whose finalized execution plan is reused across GPUs give "
            "wrong results", (f"{cudnn[0][1]}: {cudnn[0][2]}", f"{cublas[0][1]}: {cublas[0][2]}"),
            (pip_install(f"{_cudnn_wheel(ctx)}>=9.10.1"),))


def _cublas_before_blackwell(ctx: Context) -> Optional[Tuple[str, Tuple[str, ...], Tuple[Action, ...]]]:
    gpus = [(n, cc) for n, cc in _ccs(ctx) if cc == (12, 0)]
    old = [x for x in _library(ctx, "cublas") if x[0][0] == 12 and x[0][:2] < (12, 8)]
    if not gpus or not old:
        return None
    release, dist, path = old[0]
    return (f"cuBLAS {'.'.join(map(str, release))} predates CUDA 12.8, the first with compute capability 12.0 "
            f"support: {gpus[0][0]} fails with CUBLAS_STATUS_NOT_SUPPORTED", (f"{dist}: {path}",),
            (pip_install("nvidia-cublas-cu12>=12.8"),))


#: Documented breakages, each with its source; a new one is one row.
KNOWN_BAD: Tuple[KnownBad, ...] = (
    KnownBad(id="cublas-tmem-double-free", severity="warning", rule=_tmem,
             source="JAX jax_plugins/xla_cuda12/__init__.py (_check_cuda_versions): cuBLAS 12.8 to 13.1 on the "
                    "sm_100f/sm_110f families; PTX ISA tcgen05.alloc/dealloc"),
    KnownBad(id="cudnn-9-10-0", severity="problem", rule=_cudnn_9100,
             source="cuDNN 9.10.1 release notes; JAX jax_plugins/xla_cuda12/__init__.py (_check_cuda_versions)"),
    KnownBad(id="cudnn-multi-gpu-matmul", severity="problem", rule=_cudnn_multi_gpu,
             source="cuDNN 9.10.0 release notes (fixed in 9.10.1); JAX jax_plugins/xla_cuda12/__init__.py"),
    KnownBad(id="cublas-too-old-for-gpu", severity="problem", rule=_cublas_before_blackwell,
             source="CUDA 12.8 release notes (Blackwell support in cuBLAS)"),
)


def check_known_bad(ctx: Context, table: Sequence[KnownBad] = KNOWN_BAD) -> List[Finding]:
    """Every ``KNOWN_BAD`` row that applies here, with its source and its way out."""
    out: List[Finding] = []
    for row in table:
        hit = row.rule(ctx)
        if hit is None:
            continue
        title, evidence, actions = hit
        out.append(Finding.fixed_by(row.id, row.severity, title, (*evidence, f"source: {row.source}"),
                                    ctx.platform, *actions))
    return out


def check_consumer_quirks(ctx: Context) -> List[Finding]:
    """Each installed consumer's known-bad builds (its row's ``quirks``) that apply on a visible GPU: the
    breakage, its source, and the upgrade that fixes it (or what to do instead)."""
    from ..consumers.table import consumer

    out: List[Finding] = []
    for need in ctx.needs:
        row = consumer(need.consumer)
        for quirk in row.quirks if row is not None else ():
            gpus = [(n, cc) for n, cc in _ccs(ctx) if quirk.applies(need.version, need.cuda_major, cc)]
            if not gpus:
                continue
            gpu, cc = gpus[0]
            built = f" built for CUDA {need.cuda_major}" if quirk.cuda_from is not None else ""
            never = f" (gpuboot never chooses {', '.join(quirk.drops)} there)" if quirk.drops else ""
            title = f"{need.consumer} {need.version}{built} on CC {cc[0]}.x ({gpu}): {quirk.what}{never}"
            action = pip_install(quirk.fix) if quirk.fix else host(quirk.instead)
            out.append(Finding.fixed_by(quirk.id, quirk.severity, title,
                                        (f"GPU {gpu}", need.source, f"source: {quirk.source}"), ctx.platform,
                                        action))
    return out
