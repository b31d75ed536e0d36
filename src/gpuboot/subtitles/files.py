"""Subtitle files through the libraries that know the formats: SubRip with ``srt``, WebVTT with ``webvtt-py``.

Writing: SubRip as ``srt.compose`` writes it; WebVTT through ``webvtt-py``,
with the cue text escaped as the WebVTT spec requires (``&`` as ``&amp;``,
``<`` as ``&lt;``, ``>`` as ``&gt;``: W3C WebVTT, "Cue text"), which the
library leaves to its caller.  Reading (``gpuboot subtitles check``): the same
libraries, text unescaped.  Both are imported on first use
(``pip install 'gpuboot[whisper]'`` or ``'gpuboot[subtitles]'``).
"""

from __future__ import annotations

import datetime
import html
import io
from pathlib import Path
from typing import Any, List, Sequence

from ..base import deps as _deps
from .timing import Cue

__all__ = ["to_srt", "to_vtt", "read_cues", "escape_vtt"]

_INSTALL = "pip install 'gpuboot[subtitles]'"


def escape_vtt(text: str) -> str:
    """WebVTT cue text with ``&``, ``<`` and ``>`` escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _td(seconds: float) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=max(0, round(seconds * 1000)))


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip text of ``cues`` (``srt.compose``: numbered from 1, ``HH:MM:SS,mmm``)."""
    srt = _deps.import_optional("srt", "srt", _INSTALL)
    subs = [srt.Subtitle(index=i, start=_td(c.start), end=_td(c.end), content="\n".join(c.lines))
            for i, c in enumerate(cues, start=1)]
    return str(srt.compose(subs, reindex=False))


def _vtt_time(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT text of ``cues`` (``webvtt-py``; text escaped)."""
    webvtt = _deps.import_optional("webvtt", "webvtt-py", _INSTALL)
    doc = webvtt.WebVTT()
    for c in cues:
        doc.captions.append(webvtt.Caption(_vtt_time(c.start), _vtt_time(c.end),
                                           "\n".join(escape_vtt(line) for line in c.lines)))
    return str(doc.content)


def _seconds(stamp: str) -> float:
    """``HH:MM:SS.mmm`` or ``MM:SS.mmm`` as seconds."""
    parts = [float(p) for p in stamp.replace(",", ".").split(":")]
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds


def read_cues(path: Path) -> List[Cue]:
    """The cues of an ``.srt`` or ``.vtt`` file (by its suffix), in file order.

    Raises:
        ValueError: another suffix, or a file the library cannot parse (its message).
        OSError: the file cannot be read.
    """
    suffix = path.suffix.lower()
    if suffix == ".srt":
        srt = _deps.import_optional("srt", "srt", _INSTALL)
        text = path.read_text(encoding="utf-8-sig")
        try:
            subs = list(srt.parse(text))
        except srt.SRTParseError as exc:
            raise ValueError(f"{path} is not a SubRip file srt can parse: {exc}") from None
        return [Cue(start=s.start.total_seconds(), end=s.end.total_seconds(), lines=tuple(s.content.splitlines()),
                    speech_start=s.start.total_seconds(), speech_end=s.end.total_seconds()) for s in subs]
    if suffix == ".vtt":
        webvtt = _deps.import_optional("webvtt", "webvtt-py", _INSTALL)
        try:
            doc: Any = webvtt.from_buffer(io.StringIO(path.read_text(encoding="utf-8-sig")))
        except Exception as exc:  # webvtt-py raises its own MalformedFileError and friends
            raise ValueError(f"{path} is not a WebVTT file webvtt-py can parse: {exc}") from None
        out = []
        for c in doc.captions:  # start_in_seconds is whole seconds in webvtt-py 0.5: read the timestamps
            start, end = _seconds(c.start), _seconds(c.end)
            out.append(Cue(start=start, end=end, lines=tuple(html.unescape(line) for line in c.lines),
                           speech_start=start, speech_end=end))
        return out
    raise ValueError(f"{path}: gpuboot checks .srt and .vtt files, not {suffix or 'a file without a suffix'}")
