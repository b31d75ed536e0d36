"""What a runner's ``run(paths)`` yields, one record type per event; ``transcribe.Outputs`` turns them into files,
lines and one progress bar whatever the runner.  Records pickle, so worker processes and Ray actors send them as
they are."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Union

from ..base.record import Record

__all__ = ["Loaded", "Planned", "Segment", "Progress", "Done", "Failed", "Event"]


class Loaded(Record):
    """A model is loaded: its ``WhisperLoad``, and the rank of the worker that loaded it (``None``: this
    process)."""

    info: Any
    rank: Optional[int] = None


class Planned(Record):
    """How the work was shared out: the worker count and why."""

    line: str


class Segment(Record):
    """A segment of ``path``, decoded and final, in order (the live lines)."""

    #: faster-whisper's ``Segment`` is a mutable dataclass: the event is not hashable either.
    __hash__ = None  # type: ignore[assignment]
    path: str
    segment: Any


class Progress(Record):
    """Audio seconds of ``path`` done (after each batch), s."""

    path: str
    seconds: float


class Done(Record):
    """``path`` is transcribed: its rendered outputs (format -> text), its ``--json`` item (``None`` without
    ``--json``), its plain text, the subtitles' summary line (``None`` without cues), its audio (s) and its
    words."""

    path: str
    rendered: Mapping[str, str]
    item: Optional[Dict[str, Any]]
    plain: str
    summary: Optional[str] = None
    audio_s: float = 0.0
    words: int = 0


class Failed(Record):
    """``path`` failed (the others go on): the message, or the ``GpubootError`` with its fix."""

    path: str
    error: Union[str, BaseException]


#: One event of a runner.
Event = Union[Loaded, Planned, Segment, Progress, Done, Failed]
