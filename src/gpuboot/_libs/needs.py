"""Resolve what the installed consumers need to library files: one resolution per CUDA/cuDNN major."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from ..base.record import Record
from ..consumers.types import Need
from .resolve import resolve
from .types import Library, MissingLibrary, Resolution

if TYPE_CHECKING:
    from ..machine.snapshot import Machine

__all__ = ["NeedsPlan", "resolve_need", "resolve_needs", "FALLBACK"]

#: What is provided when no known consumer is installed: whatever of these is found.
FALLBACK: Tuple[str, ...] = ("cudart", "cublas", "cudnn")


class NeedsPlan(Record):
    """The files that satisfy a set of needs.

    Attributes:
        needs: the needs resolved.
        libraries: found libraries, load order, each file once.
        missing: required libraries that are not installed.
        cuda_majors: the CUDA majors the groups resolved to.
    """

    needs: Tuple[Need, ...]
    libraries: Tuple[Library, ...]
    missing: Tuple[MissingLibrary, ...]
    cuda_majors: Tuple[int, ...]


def resolve_need(machine: Machine, need: Need, *, with_optional: bool = True) -> Resolution:
    """The files one consumer needs on ``machine``, at its CUDA major (and cuDNN major where
    cuDNN is required); with ``with_optional``, also what it uses when present."""
    return resolve(machine, need.libraries, cuda_major=need.cuda_major,
                   cudnn_major=need.cudnn_major if "cudnn" in need.libraries else None,
                   optional=need.optional if with_optional else ())


def _groups(needs: Sequence[Need]) -> List[Tuple[Optional[int], Optional[int], Tuple[str, ...], Tuple[str, ...]]]:
    """Needs that share a CUDA and cuDNN major, merged into one request."""
    merged: Dict[Tuple[int, Optional[int]], Tuple[List[str], List[str]]] = {}
    for n in needs:
        req, opt = merged.setdefault((n.cuda_major, n.cudnn_major), ([], []))
        req.extend(x for x in n.libraries if x not in req)
        opt.extend(x for x in n.optional if x not in opt)
    out: List[Tuple[Optional[int], Optional[int], Tuple[str, ...], Tuple[str, ...]]] = [
        (cuda, cudnn, tuple(req), tuple(x for x in opt if x not in req))
        for (cuda, cudnn), (req, opt) in merged.items()]
    return out or [(None, None, (), FALLBACK)]


def resolve_needs(machine: Machine, needs: Sequence[Need]) -> NeedsPlan:
    """Resolve ``needs`` together: needs of one CUDA/cuDNN major share one
    resolution (one location where possible); with no needs, whatever of
    ``FALLBACK`` is found, nothing reported missing."""
    libraries: List[Library] = []
    missing: List[MissingLibrary] = []
    majors: List[int] = []
    for cuda_major, cudnn_major, required, optional in _groups(needs):
        res = resolve(machine, required, cuda_major=cuda_major, cudnn_major=cudnn_major, optional=optional)
        if res.cuda_major is not None and res.cuda_major not in majors:
            majors.append(res.cuda_major)
        libraries.extend(lib for lib in res.libraries if all(lib.path != o.path for o in libraries))
        missing.extend(res.missing)
    return NeedsPlan(needs=tuple(needs), libraries=tuple(libraries), missing=tuple(missing), cuda_majors=tuple(majors))
