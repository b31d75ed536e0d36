"""A consumer's own CUDA binaries, found beside its metadata, and what they link against.

The files are found by the patterns of the consumer's row
(``Consumer.binaries``, gpuboot's own table), under the directory
that holds the distribution's ``.dist-info``; a match whose real path leaves
that directory (a link planted in a cloned repository) is not read.  Only
headers are read (``binaries/names.py``).
"""

from __future__ import annotations

import glob
import os
import re
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from ..base.record import Record
from ..binaries.names import read_binary

if TYPE_CHECKING:
    from ..machine.snapshot import Machine
    from .types import Consumer

__all__ = ["consumer_binaries", "installed_binaries", "Linked", "linked"]


def consumer_binaries(dist_info: Optional[str], patterns: Sequence[str]) -> Tuple[str, ...]:
    """The files matching ``patterns`` (``glob`` patterns relative to the
    directory holding ``dist_info``), each once, in pattern order; ``()``
    when ``dist_info`` is unknown.  Never raises."""
    if not dist_info or not patterns:
        return ()
    site = os.path.realpath(os.path.dirname(dist_info))
    found: List[str] = []
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.join(glob.escape(site), pattern))):
            real = os.path.realpath(path)
            if os.path.commonpath([site, real]) != site or not os.path.isfile(real) or real in found:
                continue
            found.append(real)
    return tuple(found)


def installed_binaries(machine: Machine, row: Consumer) -> Tuple[Optional[str], Tuple[str, ...]]:
    """``(version, binaries)`` of consumer ``row`` as installed on ``machine``: the files matching its
    ``binaries`` patterns beside its ``.dist-info`` (read once per snapshot); ``(None, ())`` when it is not
    installed, and ``(version, ())`` when its metadata gives no directory (a described distribution)."""

    def read() -> Tuple[Optional[str], Tuple[str, ...]]:
        dist = machine.distribution(row.name)
        if dist is None:
            return None, ()
        return dist.version, consumer_binaries(dist.path, row.binaries)

    return machine.memo(("binaries", row.name), read)


class Linked(Record):
    """What a consumer's binaries name in their dynamic sections (ELF ``DT_NEEDED``, PE imports).

    Attributes:
        cuda_major: the CUDA major of the toolkit libraries they link (``libcublas.so.13`` -> 13), or ``None``.
        cudnn_major: the cuDNN major they link (``libcudnn.so.9``), or ``None``.
        evidence: ``"libonnxruntime_providers_cuda.so needs libcublas.so.13"``, one per major found.
    """

    cuda_major: Optional[int] = None
    cudnn_major: Optional[int] = None
    evidence: Tuple[str, ...] = ()


# The toolkit libraries whose file name carries the CUDA major (catalog.py; cuRAND and cuFFT do not).
_CUDA_NAME = re.compile(r"^(?:lib(?:cudart|cublas|cublasLt|nvrtc)\.so\.(\d+)(?:\.\d+)*"
                        r"|(?:cudart64|cublas64|cublasLt64)_(\d+)\.dll"
                        r"|nvrtc64_(\d+)\d_0\.dll)$", re.IGNORECASE)
_CUDNN_NAME = re.compile(r"^(?:libcudnn\.so\.(\d+)|cudnn64_(\d+)\.dll)$", re.IGNORECASE)


def _cuda_major(name: str) -> Optional[int]:
    m = _CUDA_NAME.match(name)
    if not m:
        return None
    raw = next(g for g in m.groups() if g)
    major = int(raw)
    return 11 if major in (110, 11) else major  # cudart64_110.dll, libcudart.so.11.0


def linked(paths: Sequence[str]) -> Linked:
    """The CUDA and cuDNN majors ``paths`` link against; a ``Linked`` with
    ``None``s when they name none (CTranslate2 ``dlopen``s cuBLAS by name and
    links CUDA's runtime statically)."""
    cuda: Optional[int] = None
    cudnn: Optional[int] = None
    evidence: List[str] = []
    for path in paths:
        info = read_binary(path)
        if info is None:
            continue
        base = os.path.basename(path)
        for name in info.needed:
            major = _cuda_major(name)
            if major is not None and cuda is None:
                cuda = major
                evidence.append(f"{base} needs {name}")
            m = _CUDNN_NAME.match(name)
            if m and cudnn is None:
                cudnn = int(m.group(1) or m.group(2))
                evidence.append(f"{base} needs {name}")
    return Linked(cuda_major=cuda, cudnn_major=cudnn, evidence=tuple(evidence))
