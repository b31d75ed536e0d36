"""Each installed consumer's GPU code against one GPU: native, JIT or none, with the way out.

The consumer's binaries come from its row (``gpuboot.consumers.table.Consumer.binaries``);
their fatbins are read once per file (``fatbin.py``) and judged by the
CUDA compatibility rules (``rules.py``).  ``ARCH_FIXES`` holds the known
ways to a build that carries an architecture, each sourced; without one, the
fix is the consumer's own build option (``Consumer.build_arch``).
"""

from __future__ import annotations

from typing import List, Mapping, Optional, Sequence, Tuple

from ..base.record import Record
from .rules import CodeVerdict, judge

__all__ = ["ArchFix", "ARCH_FIXES", "ConsumerCode", "consumer_code", "installed_code"]


class ArchFix(Record):
    """A known way to get a consumer build that carries code for older (or newer) GPUs.

    Attributes:
        consumer: the distribution name.
        cc_from: the lowest compute capability it serves (inclusive).
        cc_below: the compute capability it serves up to (exclusive).
        fix: the instruction, exact.
        requirement: the pip requirement it installs (checked by ``doctor/actions``), or ``""``.
        torch_index: the PyTorch index tag it installs from (``doctor/actions.TORCH_INDEXES``), or ``""``.
        source: where the fact comes from.
    """

    consumer: str
    cc_from: Tuple[int, int]
    cc_below: Tuple[int, int]
    fix: str
    requirement: str = ""
    torch_index: str = ""
    source: str = ""


#: Known builds carrying the architectures the newest wheels dropped; a new one is one row.
ARCH_FIXES: Tuple[ArchFix, ...] = (
    ArchFix(consumer="ctranslate2", cc_from=(3, 5), cc_below=(5, 3),
            fix='pip install "ctranslate2<4" (3.24.0: cubins sm_35 and sm_50; built for CUDA 11 and cuDNN 8, so '
                'also pip install nvidia-cublas-cu11 "nvidia-cudnn-cu11<9")', requirement="ctranslate2<4",
            source="the ctranslate2 3.24.0 manylinux wheel's libctranslate2 fatbin: cubins sm_35, sm_50, sm_53, "
                   "sm_60, sm_61, sm_70, sm_75, sm_80, sm_86 (tests/test_gpu_code.py reads it)"),
    ArchFix(consumer="torch", cc_from=(5, 0), cc_below=(7, 5),
            fix="install PyTorch's CUDA 12.6 build, which still carries Maxwell (5.0), Pascal (6.0) and Volta (7.0): "
                "pip install torch --index-url https://download.pytorch.org/whl/cu126", torch_index="cu126",
            source="PyTorch 2.8 release notes ('Removed support for Maxwell, Pascal, and Volta architectures with "
                   "CUDA 12.8 and 12.9 builds'); support matrix in pytorch/pytorch#172352 (12.6: 5.0, 6.0, 7.0, 7.5, "
                   "8.0, 8.6, 9.0)"),
)


class ConsumerCode(Record):
    """One installed consumer's GPU code judged against one GPU.

    Attributes:
        consumer: the distribution name (``"ctranslate2"``).
        version: its installed version.
        gpu: the GPU, as reasons name it (``"cuda:0 NVIDIA H100 80GB HBM3 (CC 9.0)"``).
        binaries: the files read.
        verdict: native / jit / none, with the reason.
        fix: the way out (``""`` when native).
        source: where the fix comes from.
    """

    consumer: str
    version: str
    gpu: str
    binaries: Tuple[str, ...]
    verdict: CodeVerdict
    fix: str = ""
    source: str = ""

    @property
    def runs(self) -> bool:
        """The consumer's kernels can run on this GPU (natively or through a JIT compile)."""
        return self.verdict.kind != "none"

    def line(self) -> str:
        """One line: ``"ctranslate2 4.8.5 cannot run on cuda:0 ... : <reason>; fix: <fix>"``."""
        what = {"native": "runs natively on", "jit": "runs through a JIT compile on",
                "none": "cannot run on"}[self.verdict.kind]
        text = f"{self.consumer} {self.version} {what} {self.gpu}: {self.verdict.reason}"
        return f"{text}; fix: {self.fix}" if self.fix else text


def _fix(name: str, verdict: CodeVerdict) -> Tuple[str, str]:
    from ..consumers.table import consumer
    from .rules import PTX_ISA_SOURCE

    if verdict.kind == "native":
        return "", ""
    if verdict.ptx_cuda is not None and verdict.kind == "none":
        need = f"{verdict.ptx_cuda[0]}.{verdict.ptx_cuda[1]}"
        return (f"update the NVIDIA driver to one that supports CUDA {need} or newer (nvidia-smi's 'CUDA Version' "
                f"at least {need})", PTX_ISA_SOURCE)
    cc = verdict.cc
    for row in ARCH_FIXES:
        if row.consumer == name and row.cc_from <= cc < row.cc_below:
            return row.fix, row.source
    build = consumer(name).build_arch if consumer(name) is not None else ""  # type: ignore[union-attr]
    text = build.format(cc=f"{cc[0]}.{cc[1]}", arch=f"{cc[0]}{cc[1]}") if build else ""
    if verdict.kind == "jit":
        return (f"for native code, {text}" if text else "", "")
    return (text or f"no {name} build gpuboot knows carries code for CC {cc[0]}.{cc[1]}: run it on the CPU"), ""


def consumer_code(name: str, cc: Tuple[int, int], driver_cuda: Optional[Tuple[int, int]] = None,
                  gpu: str = "", found: Optional[Tuple[Optional[str], Tuple[str, ...]]] = None
                  ) -> Optional[ConsumerCode]:
    """How installed consumer ``name`` runs on a GPU of compute capability ``cc``, or ``None`` when it is not
    installed, its row names no binaries, or none of its binaries could be read.  ``found``: its ``(version,
    binaries)`` when already read (doctor's context), else they are looked up (``files.installed_binaries``)."""
    from ..binaries.fatbin import Fatbin, read_fatbin
    from ..consumers.binaries import installed_binaries
    from ..consumers.table import consumer

    row = consumer(name)
    if row is None:
        return None
    version, binaries = found if found is not None else installed_binaries(row.name, row.binaries)
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
    fix, source = _fix(name, verdict)
    return ConsumerCode(consumer=name, version=version, gpu=gpu or f"a CC {cc[0]}.{cc[1]} GPU",
                        binaries=tuple(binaries), verdict=verdict, fix=fix, source=source)


def installed_code(cc: Tuple[int, int], driver_cuda: Optional[Tuple[int, int]] = None, gpu: str = "",
                   consumers: Optional[Sequence[str]] = None,
                   found: Optional[Mapping[str, Tuple[Optional[str], Tuple[str, ...]]]] = None
                   ) -> Tuple[ConsumerCode, ...]:
    """``consumer_code`` for every installed consumer (default: every row of ``consumers.CONSUMER_TABLE``);
    ``found``: their ``(version, binaries)`` already read (only those are judged)."""
    from ..consumers.table import CONSUMERS

    out: List[ConsumerCode] = []
    for name in CONSUMERS if consumers is None else consumers:
        if found is not None and name not in found:
            continue
        code = consumer_code(name, cc, driver_cuda, gpu, found=found[name] if found is not None else None)
        if code is not None:
            out.append(code)
    return tuple(out)
