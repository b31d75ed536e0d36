"""Each installed consumer's GPU code against one GPU: native, JIT or none, with the way out.

The consumer's binaries come from its row (``Consumer.binaries``, read once per ``Machine`` snapshot); their
fatbins are read once per file (``binaries/fatbin.py``) and judged by the CUDA compatibility rules
(``rules.py``).  The way out is the row's known build for that GPU (``Consumer.arch_fixes``), else its own build
option (``Consumer.build_arch``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from ..base.record import Record
from ..consumers.types import ArchFix, Consumer
from .rules import CodeVerdict, judge

if TYPE_CHECKING:
    from ..machine.snapshot import Machine

__all__ = ["ConsumerCode", "consumer_code", "installed_code"]


class ConsumerCode(Record):
    """One installed consumer's GPU code judged against one GPU.

    Attributes:
        consumer: the distribution name.
        version: its installed version.
        gpu: the GPU, as reasons name it (``"cuda:0 NVIDIA H100 80GB HBM3 (CC 9.0)"``).
        binaries: the files read.
        verdict: native / jit / none, with the reason.
        fix: the way out (``""`` when native).
        source: where the fix comes from.
        arch_fix: the row's known build the fix is, or ``None``.
    """

    consumer: str
    version: str
    gpu: str
    binaries: Tuple[str, ...]
    verdict: CodeVerdict
    fix: str = ""
    source: str = ""
    arch_fix: Optional[ArchFix] = None

    @property
    def runs(self) -> bool:
        """The consumer's kernels can run on this GPU (natively or through a JIT compile)."""
        return self.verdict.kind != "none"

    def summary(self) -> str:
        """``"<consumer> <version> cannot run on cuda:0 ... : <reason>"``, without the fix."""
        what = {"native": "runs natively on", "jit": "runs through a JIT compile on",
                "none": "cannot run on"}[self.verdict.kind]
        return f"{self.consumer} {self.version} {what} {self.gpu}: {self.verdict.reason}"

    def line(self) -> str:
        """One line: the summary and ``"; fix: <fix>"``."""
        return f"{self.summary()}; fix: {self.fix}" if self.fix else self.summary()


def _fix(row: Consumer, verdict: CodeVerdict) -> Tuple[str, str, Optional[ArchFix]]:
    from .rules import PTX_ISA_SOURCE

    if verdict.kind == "native":
        return "", "", None
    if verdict.ptx_cuda is not None and verdict.kind == "none":
        need = f"{verdict.ptx_cuda[0]}.{verdict.ptx_cuda[1]}"
        return (f"update the NVIDIA driver to one that supports CUDA {need} or newer (nvidia-smi's 'CUDA Version' "
                f"at least {need})", PTX_ISA_SOURCE, None)
    cc = verdict.cc
    known = row.arch_fix(cc)
    if known is not None:
        return known.fix, known.source, known
    build = row.build_arch
    text = build.format(cc=f"{cc[0]}.{cc[1]}", arch=f"{cc[0]}{cc[1]}") if build else ""
    if verdict.kind == "jit":
        return (f"for native code, {text}" if text else "", "", None)
    fix = text or f"no {row.name} build gpuboot knows carries code for CC {cc[0]}.{cc[1]}: run it on the CPU"
    return fix, "", None


def consumer_code(row: Consumer, version: Optional[str], binaries: Sequence[str], cc: Tuple[int, int],
                  driver_cuda: Optional[Tuple[int, int]] = None, gpu: str = "") -> Optional[ConsumerCode]:
    """How consumer ``row`` at ``version``, whose GPU code is in ``binaries``, runs on a GPU of compute capability
    ``cc``; ``None`` when it is not installed or none of its binaries could be read."""
    from ..binaries.fatbin import Fatbin, read_fatbin

    if version is None or not binaries:
        return None
    read = [f for f in (read_fatbin(b) for b in binaries) if f is not None]
    if not read:
        return None
    merged = Fatbin(path=read[0].path, code=tuple(c for f in read for c in f.code),
                    modules=tuple(m for f in read for m in f.modules), containers=sum(f.containers for f in read),
                    entries=sum(f.entries for f in read))
    label = ", ".join(sorted({b.replace("\\", "/").rsplit("/", 1)[-1] for b in binaries}))
    verdict = judge(merged, cc, driver_cuda, name=label)
    fix, source, known = _fix(row, verdict)
    return ConsumerCode(consumer=row.name, version=version, gpu=gpu or f"a CC {cc[0]}.{cc[1]} GPU",
                        binaries=tuple(binaries), verdict=verdict, fix=fix, source=source, arch_fix=known)


def installed_code(machine: Machine, cc: Tuple[int, int], driver_cuda: Optional[Tuple[int, int]] = None,
                   gpu: str = "", rows: Optional[Sequence[Consumer]] = None) -> Tuple[ConsumerCode, ...]:
    """``consumer_code`` of every consumer installed on ``machine`` (default: every row of the table) for a GPU
    of compute capability ``cc``; the binaries are read once per snapshot."""
    from ..consumers.binaries import installed_binaries
    from ..consumers.table import CONSUMER_TABLE

    out: List[ConsumerCode] = []
    for row in CONSUMER_TABLE if rows is None else rows:
        version, binaries = installed_binaries(machine, row)
        code = consumer_code(row, version, binaries, cc, driver_cuda, gpu)
        if code is not None:
            out.append(code)
    return tuple(out)
