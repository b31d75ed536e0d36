"""``gather()``: the machine doctor checks, as a ``Context`` (a ``Machine`` snapshot and the consumers asked
about)."""

from __future__ import annotations

from typing import Optional, Sequence

from ..machine.snapshot import current
from .report import Context

__all__ = ["gather"]


def gather(*, consumers: Optional[Sequence[str]] = None) -> Context:
    """The current machine (``machine.snapshot.current()``) as doctor reads it: a snapshot that never imports a
    consumer (``ask_consumers=False``); its facts are read as the checks ask for them, each once (the driver
    probe is a child process, ~60 ms).

    Args:
        consumers: the distribution names checked (default: every consumer gpuboot knows).
    """
    from ..consumers.table import CONSUMERS

    machine = current()
    if machine.ask_consumers:
        machine = machine.replace(ask_consumers=False)
    return Context(machine=machine, consumers=tuple(CONSUMERS if consumers is None else consumers))
