"""Known-bad versions: combinations of a library, a consumer and a GPU that their makers document as broken.

``KNOWN_BAD`` is a table: each row names what breaks, where the fact comes
from, and a rule over what doctor gathered (the installed NVIDIA libraries'
wheel versions, the consumers' versions and CUDA majors, the visible GPUs'
compute capabilities); a new known-bad version is one row.  JAX checks the
first three at start-up (``jax_plugins/xla_cuda12/__init__.py``,
``_check_cuda_versions``, jax-cuda12-pjrt 0.10.2); gpuboot checks them for
every consumer in the process, before anything runs.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

from ..base.record import Record
from .actions import Action, host, pip_install
from .report import Context, Finding, Severity

__all__ = ["KnownBad", "KNOWN_BAD", "check_known_bad"]


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
            out.append((release, lib.distribution or "?", lib.path))
    return out


def _ccs(ctx: Context) -> List[Tuple[str, Tuple[int, int]]]:
    return [(d.name, d.compute_capability) for d in ctx.inventory.visible]


def _cublas_wheel(release: Tuple[int, ...]) -> str:
    return "nvidia-cublas" if release[0] >= 13 else f"nvidia-cublas-cu{release[0]}"


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


def _ct2_int8_blackwell(ctx: Context) -> Optional[Tuple[str, Tuple[str, ...], Tuple[Action, ...]]]:
    found = ctx.metadata("ctranslate2")
    release = _version(found[0]) if found else None
    gpus = [(n, cc) for n, cc in _ccs(ctx) if cc[0] == 12]
    if release is None or not gpus or release >= (4, 7):
        return None
    return (f"ctranslate2 {found[0]} on CC 12.x ({gpus[0][0]}): int8 compute types fail with "  # type: ignore[index]
            "CUBLAS_STATUS_NOT_SUPPORTED (gpuboot chooses float16 there)", (f"GPU {gpus[0][0]}",),
            (pip_install("ctranslate2>=4.7.0"),))


def _ct2_int8_cublas13(ctx: Context) -> Optional[Tuple[str, Tuple[str, ...], Tuple[Action, ...]]]:
    ct2 = [n for n in ctx.needs if n.consumer == "ctranslate2" and n.cuda_major >= 13]
    gpus = [(n, cc) for n, cc in _ccs(ctx) if cc[0] == 12]
    if not ct2 or not gpus:
        return None
    return (f"ctranslate2 {ct2[0].version} built for CUDA {ct2[0].cuda_major} on CC 12.x ({gpus[0][0]}): "
            "int8_float16 and int8_bfloat16 crash in cuBLAS 13 unless CTranslate2 was built for sm_120",
            (ct2[0].source,), (host("use compute_type float16 or bfloat16 (or build CTranslate2 with "
                                    "-DCUDA_ARCH_LIST=12.0)"),))


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
    KnownBad(id="ctranslate2-int8-cc12", severity="warning", rule=_ct2_int8_blackwell,
             source="CTranslate2 #1865; fixed by padding int8 GEMMs to multiples of 16 in 4.7.0 (CTranslate2 #1982)"),
    KnownBad(id="ctranslate2-int8-cublas13", severity="warning", rule=_ct2_int8_cublas13,
             source="CTranslate2 #1933 (int8_float16 and int8_bfloat16 with cuBLAS 13 on CC 12.0)"),
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
