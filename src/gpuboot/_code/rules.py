"""Will this GPU run the GPU code a binary carries?  Native, through a JIT compile of PTX, or not at all.

The rules (NVIDIA, CUDA C++ Programming Guide, "Binary Compatibility" and
"PTX Compatibility"; the Hopper and Blackwell compatibility guides; CUDA 12.9
"family-specific" targets):

* a cubin for ``sm_XY`` runs on a GPU of compute capability X.Z with Z >= Y
  (same major); an arch-specific ``sm_XYa`` cubin only on X.Y itself; a
  family-specific ``sm_XYf`` on X.Z with Z >= Y;
* PTX for ``compute_XY`` is JIT-compiled by the driver for any GPU of CC >= X.Y
  (``compute_XYa``: X.Y only; ``compute_XYf``: its family), provided the driver
  is at least as new as the CUDA release that introduced the PTX's ISA version;
  an older driver refuses it (``CUDA_ERROR_UNSUPPORTED_PTX_VERSION``, 222 in
  ``cuda.h``);
* the driver takes a matching cubin before any PTX.

A binary is judged module by module (one fatbin container per compiled source
file): a kernel runs only through its own module's entries.  Modules holding
only arch- or family-specific entries (Hopper-only attention kernels) are
called only on those GPUs, so they count only there; a module known to hold no
kernel (the image ``nvcc -shared`` device-links) is never launched and does
not count.
"""

from __future__ import annotations

from typing import Dict, List, Literal, Optional, Sequence, Tuple

from ..base.record import Record
from ..binaries.fatbin import Fatbin, GpuCode, Module

__all__ = ["PTX_ISA_CUDA", "PTX_ISA_SOURCE", "CodeVerdict", "judge", "ptx_needs_cuda", "cubin_runs", "ptx_runs",
           "JIT_CACHE_NOTE"]

#: PTX ISA version -> the first CUDA release whose driver and compilers load it.
PTX_ISA_CUDA: Dict[Tuple[int, int], Tuple[int, int]] = {
    (6, 0): (9, 0), (6, 1): (9, 1), (6, 2): (9, 2), (6, 3): (10, 0), (6, 4): (10, 1), (6, 5): (10, 2),
    (7, 0): (11, 0), (7, 1): (11, 1), (7, 2): (11, 2), (7, 3): (11, 3), (7, 4): (11, 4), (7, 5): (11, 5),
    (7, 6): (11, 6), (7, 7): (11, 7), (7, 8): (11, 8),
    (8, 0): (12, 0), (8, 1): (12, 1), (8, 2): (12, 2), (8, 3): (12, 3), (8, 4): (12, 4), (8, 5): (12, 5),
    (8, 6): (12, 7), (8, 7): (12, 8), (8, 8): (12, 9),
    (9, 0): (13, 0), (9, 1): (13, 1), (9, 2): (13, 2), (9, 3): (13, 3), (9, 4): (13, 4), (9, 5): (13, 5),
}
PTX_ISA_SOURCE = ("PTX ISA release history (docs.nvidia.com/cuda/parallel-thread-execution, 'Release Notes'); "
                  "cuda.bindings.utils.get_minimal_required_cuda_ver_from_ptx_ver")

#: What a JIT start costs and where its result is kept (CUDA C++ Programming Guide, "Just-in-Time Compilation";
#: CUDA environment variables).
JIT_CACHE_NOTE = ("the driver JIT-compiles it at the first start (seconds to minutes) and keeps the result in its "
                  "compute cache (CUDA_CACHE_PATH; raise CUDA_CACHE_MAXSIZE, in bytes, if the cache is too small to "
                  "keep it)")

Kind = Literal["native", "jit", "none"]


class CodeVerdict(Record):
    """How one GPU runs one binary's GPU code.

    Attributes:
        kind: ``"native"`` (a cubin for this GPU in every module), ``"jit"``
            (some module only through PTX: slow first start), ``"none"`` (a
            module with no code this GPU can run, or PTX this driver refuses).
        cc: the GPU's compute capability.
        carries: what the binary holds (``Fatbin.describe()``).
        reason: why, in one line, naming the architecture and the entries.
        ptx_cuda: for ``"jit"``/``"none"`` through PTX: the CUDA version the
            driver must support for that PTX (from its ISA), else ``None``.
        modules: how many modules were judged (those that apply to this GPU).
        missing: how many of them have nothing this GPU runs.
        jit_modules: how many run only through PTX.
    """

    kind: Kind
    cc: Tuple[int, int]
    carries: str
    reason: str
    ptx_cuda: Optional[Tuple[int, int]] = None
    modules: int = 0
    missing: int = 0
    jit_modules: int = 0


def ptx_needs_cuda(isa: Tuple[int, int]) -> Optional[Tuple[int, int]]:
    """The CUDA version a driver must support to load PTX of ISA ``isa``, or ``None`` when the ISA is newer than
    the table (``PTX_ISA_CUDA``)."""
    return PTX_ISA_CUDA.get(isa)


def cubin_runs(code: GpuCode, cc: Tuple[int, int]) -> bool:
    """A cubin ``code`` runs on a GPU of compute capability ``cc``."""
    major, minor = code.cc
    if code.suffix == "a":
        return cc == (major, minor)
    return cc[0] == major and cc[1] >= minor


def ptx_runs(code: GpuCode, cc: Tuple[int, int]) -> bool:
    """PTX ``code`` can be JIT-compiled for a GPU of compute capability ``cc`` (driver version aside)."""
    if code.suffix == "a":
        return cc == code.cc
    if code.suffix == "f":
        return cc[0] == code.cc[0] and cc[1] >= code.cc[1]
    return cc >= code.cc


def _cc(cc: Tuple[int, int]) -> str:
    return f"CC {cc[0]}.{cc[1]}"


def _v(v: Tuple[int, int]) -> str:
    return f"{v[0]}.{v[1]}"


def _judge_module(module: Module, cc: Tuple[int, int], driver_cuda: Optional[Tuple[int, int]]
                  ) -> Tuple[str, Optional[GpuCode]]:
    """``("native" | "jit" | "old-driver" | "none", the entry that decides)`` for one module."""
    cubins = [c for c in module.code if c.kind == "cubin" and cubin_runs(c, cc)]
    if cubins:
        return "native", max(cubins, key=lambda c: (c.cc, c.suffix))  # the driver takes the closest match
    ptx = [c for c in module.code if c.kind == "ptx" and ptx_runs(c, cc)]
    if not ptx:
        return "none", None
    best = max(ptx, key=lambda c: (c.cc, c.version))  # the driver JITs the newest PTX the GPU can take
    need = ptx_needs_cuda(best.version)
    if driver_cuda is not None and (need is None or driver_cuda < need):
        return "old-driver", best
    return "jit", best


def judge(fatbin: Fatbin, cc: Tuple[int, int], driver_cuda: Optional[Tuple[int, int]] = None,
          name: str = "") -> CodeVerdict:
    """How a GPU of compute capability ``cc`` runs the code in ``fatbin``.

    Args:
        fatbin: what ``fatbin.read_fatbin`` read.
        cc: the GPU's compute capability (NVML's, or CUDA's).
        driver_cuda: the highest CUDA version the driver supports
            (``cuDriverGetVersion``, NVML ``nvmlSystemGetCudaDriverVersion``), or
            ``None`` when not known (PTX is then assumed loadable, and the
            reason says which driver it needs).
        name: how the reason names the binary (its file name by default).

    Returns:
        A ``CodeVerdict``.  A binary with no fatbin at all is ``"none"``
        (a build without GPU code).
    """
    label = name or fatbin.path.replace("\\", "/").rsplit("/", 1)[-1]
    carries = fatbin.describe()
    applies = [m for m in fatbin.modules if m.kernels and (
               not m.specific or any(cubin_runs(c, cc) if c.kind == "cubin" else ptx_runs(c, cc)
                                        for c in m.code))]
    if not applies:
        reason = (f"{label} carries no GPU code" if not fatbin.modules else
                  f"{label} has no code for {_cc(cc)}: it carries {carries}")
        return CodeVerdict(kind="none", cc=cc, carries=carries, reason=reason + _RULE)
    outcomes: Dict[str, List[Tuple[int, Optional[GpuCode]]]] = {}
    for m in applies:
        kind, via = _judge_module(m, cc, driver_cuda)
        outcomes.setdefault(kind, []).append((m.count, via))
    total = sum(m.count for m in applies)
    missing = sum(n for n, _ in outcomes.get("none", []))
    jit = sum(n for n, _ in outcomes.get("jit", []) + outcomes.get("old-driver", []))
    share = "" if len(outcomes) == 1 else " in {n} of its {total} modules"
    if "none" in outcomes:
        where = share.format(n=missing, total=total)
        return CodeVerdict(kind="none", cc=cc, carries=carries,
                           reason=f"{label} has no code for {_cc(cc)}{where}: it carries {carries}{_RULE}",
                           modules=total, missing=missing, jit_modules=jit)
    if "old-driver" in outcomes:
        via = _newest([v for _, v in outcomes["old-driver"]])
        need = ptx_needs_cuda(via.version)
        needs = f"a driver for CUDA {_v(need)} or newer" if need else "a driver newer than any gpuboot knows"
        have = f"this driver supports CUDA {_v(driver_cuda)}" if driver_cuda else ""
        where = share.format(n=sum(n for n, _ in outcomes["old-driver"]), total=total)
        return CodeVerdict(kind="none", cc=cc, carries=carries, ptx_cuda=need,
                           reason=(f"{label} reaches {_cc(cc)} only through PTX {via.name}{where}, PTX ISA "
                                   f"{_v(via.version)}, which needs {needs}; {have} (the load would fail with "
                                   "CUDA_ERROR_UNSUPPORTED_PTX_VERSION, 222)"), modules=total, missing=missing,
                                   jit_modules=jit)
    if "jit" in outcomes:
        via = _newest([v for _, v in outcomes["jit"]])
        need = ptx_needs_cuda(via.version)
        where = share.format(n=jit, total=total)
        driver = f" (PTX ISA {_v(via.version)}: a driver for CUDA {_v(need)} or newer)" if need else ""
        return CodeVerdict(kind="jit", cc=cc, carries=carries, ptx_cuda=need,
                           reason=(f"{label} has no cubin for {_cc(cc)}{where}, only PTX {via.name}{driver}: "
                                   f"{JIT_CACHE_NOTE}"), modules=total, missing=missing, jit_modules=jit)
    natives = sorted({v.name for _, v in outcomes["native"] if v is not None})
    return CodeVerdict(kind="native", cc=cc, carries=carries,
                       reason=f"{label} runs natively on {_cc(cc)} ({', '.join(natives)} cubins)", modules=total,
                       missing=missing, jit_modules=jit)


_RULE = (" (a cubin runs only on its own major at an equal or higher minor, PTX only on an equal or newer CC: "
         "\"no kernel image is available for execution on the device\")")


def _newest(codes: Sequence[Optional[GpuCode]]) -> GpuCode:
    real = [c for c in codes if c is not None]
    return max(real, key=lambda c: (c.version, c.cc))
