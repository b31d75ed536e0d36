"""What the consumers installed on a machine need: their rows' rules or readers over their validated metadata,
corrected by the majors their own binaries link (``libonnxruntime_providers_cuda.so`` needing
``libcublas.so.13`` is a CUDA 13 build whatever its version range says).  Nothing is imported."""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence

from .readers import needs_of
from .table import CONSUMER_TABLE, consumer
from .types import Consumer, Need

if TYPE_CHECKING:
    from ..machine.snapshot import Machine

__all__ = ["installed_needs", "installed_need"]


def installed_needs(machine: Machine, names: Optional[Sequence[str]] = None) -> List[Need]:
    """The ``Need`` of each consumer installed on ``machine`` (``names``: distribution names; default every
    row), in the order asked; read once per snapshot."""
    rows = CONSUMER_TABLE if names is None else [r for r in (consumer(n) for n in names) if r is not None]
    out = [need for need in (installed_need(machine, row) for row in rows) if need is not None]
    return out


def installed_need(machine: Machine, row: Consumer) -> Optional[Need]:
    """The ``Need`` of consumer ``row`` as installed on ``machine``, or ``None`` (not installed, or no CUDA)."""

    def read() -> Optional[Need]:
        dist = machine.distribution(row.name)
        if dist is None:
            return None
        return _linked_need(machine, row, dist.version, needs_of(row, dist.version, dist.requires, machine.platform))

    return machine.memo(("need", row.name), read)


def _linked_need(machine: Machine, row: Consumer, version: str, need: Optional[Need]) -> Optional[Need]:
    """``need`` corrected by the CUDA and cuDNN majors the consumer's binaries link, when they name any (the
    header reader imported here, off the import of the driver path)."""
    from .binaries import installed_binaries, linked

    found, binaries = installed_binaries(machine, row)
    if found != version or not binaries:
        return need
    links = linked(binaries)
    if links.cuda_major is None:
        return need
    evidence = "; ".join(links.evidence) + " (its binary's dynamic section)"
    if need is None:
        return Need(consumer=row.name, version=version, cuda_major=links.cuda_major, libraries=row.libraries,
                    optional=row.optional, cudnn_major=links.cudnn_major, source=evidence)
    cudnn = links.cudnn_major if links.cudnn_major is not None else need.cudnn_major
    if links.cuda_major == need.cuda_major and cudnn == need.cudnn_major:
        return need
    return need._replace(cuda_major=links.cuda_major, cudnn_major=cudnn,
                         source=f"{evidence}, not what {need.source or 'its metadata'} says")
