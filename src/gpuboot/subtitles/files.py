"""Subtitle files through the libraries that know the formats: SubRip with ``srt``, WebVTT with ``webvtt-py``.

Writing: SubRip as ``srt.compose`` writes it; WebVTT through ``webvtt-py``,
with the cue text escaped as the WebVTT spec requires (``&`` as ``&amp;``,
``<`` as ``&lt;``, ``>`` as ``&gt;``: W3C WebVTT, "Cue text"), which the
library leaves to its caller, and the language as a ``Language:`` header line
(the header metadata YouTube and FFmpeg write; webvtt-py 0.6 reads and writes
it).  Reading (``gpuboot subtitles check``): the same libraries, text
unescaped, a file of at most ``MAX_BYTES`` that is an ordinary file (a FIFO,
``/dev/zero`` or a directory is refused before it is opened).  Both libraries
are imported on first use (``pip install 'gpuboot[whisper]'`` or
``'gpuboot[subtitles]'``).

SubRip has no header: its language is the one its name carries
(``talk.en.srt``, the convention media players read), else unknown.
"""

from __future__ import annotations

import datetime
import html
import io
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..base import deps as _deps
from ..base.record import Record
from .timing import Cue

__all__ = ["to_srt", "to_vtt", "read_cues", "read_file", "made_with", "SubtitleFile", "escape_vtt", "MAX_BYTES"]

_INSTALL = "pip install 'gpuboot[subtitles]'"
#: The largest subtitle file read, bytes: 16 MiB, about ten days of continuous speech as cues (a day is
#: 1.5 MB of WebVTT); webvtt-py parses 5 MiB in about 10 s on a 2-core x86-64 CPU.
MAX_BYTES = 16 * 2**20


class SubtitleFile(Record):
    """A subtitle file read back.

    Attributes:
        cues: its cues, in file order.
        language: the language it names (a WebVTT ``Language:`` header, or a ``NAME.LANG.srt`` name), ``""``
            when it names none.
    """

    cues: Tuple[Cue, ...]
    language: str = ""


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


def to_vtt(cues: Sequence[Cue], language: str = "") -> str:
    """WebVTT text of ``cues`` (``webvtt-py``; text escaped), with a ``Language:`` header when ``language`` (an
    ISO 639-1 code) is given."""
    webvtt = _deps.import_optional("webvtt", "webvtt-py", _INSTALL)
    doc = webvtt.WebVTT(metadata=[f"Language: {language}"] if language else [])
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
    """The cues of an ``.srt`` or ``.vtt`` file (``read_file``), in file order."""
    return list(read_file(path).cues)


def _name_language(path: Path) -> str:
    """``talk.en.srt`` -> ``"en"``: the language tag media players read from a subtitle file's name, when it is
    a language gpuboot has a row for."""
    from .languages import LANGUAGES

    tag = Path(path.stem).suffix[1:]
    return tag.lower() if tag and tag.lower().replace("_", "-").split("-")[0] in LANGUAGES else ""


def _header_language(metadata: Sequence[str]) -> str:
    """The value of a WebVTT ``Language:`` header line (webvtt-py's ``metadata``), ``""`` when none."""
    for line in metadata:
        key, sep, value = str(line).partition(":")
        if sep and key.strip().lower() == "language" and value.strip():
            return value.strip()[:35]  # BCP 47 tags are short; a long value is not one
    return ""


def read_file(path: Path) -> SubtitleFile:
    """An ``.srt`` or ``.vtt`` file (by its suffix): its cues and the language it names.

    Raises:
        ValueError: another suffix, not an ordinary file (a directory, FIFO, device, socket), over
            ``MAX_BYTES``, not UTF-8, or a file the library cannot parse (its message).
        OSError: the file cannot be read.
    """
    from ..base.files import read_bounded

    suffix = path.suffix.lower()
    if suffix not in (".srt", ".vtt"):
        raise ValueError(f"{path}: gpuboot checks .srt and .vtt files, not {suffix or 'a file without a suffix'}")
    try:
        text = read_bounded(str(path), MAX_BYTES, "a subtitle file").decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); SubRip and WebVTT files "
                         "are UTF-8 -- fix: convert it (iconv -f LATIN1 -t UTF-8)") from None
    if suffix == ".srt":
        srt = _deps.import_optional("srt", "srt", _INSTALL)
        try:
            subs = list(srt.parse(text))
        except srt.SRTParseError as exc:
            raise ValueError(f"{path} is not a SubRip file srt can parse: {exc}") from None
        cues = [Cue(start=s.start.total_seconds(), end=s.end.total_seconds(), lines=tuple(s.content.splitlines()),
                    speech_start=s.start.total_seconds(), speech_end=s.end.total_seconds()) for s in subs]
        return SubtitleFile(cues=tuple(cues), language=_name_language(path))
    webvtt = _deps.import_optional("webvtt", "webvtt-py", _INSTALL)
    try:
        doc: Any = webvtt.from_buffer(io.StringIO(text))
    except Exception as exc:  # webvtt-py raises its own MalformedFileError and friends
        raise ValueError(f"{path} is not a WebVTT file webvtt-py can parse: {exc}") from None
    out = []
    for c in doc.captions:  # start_in_seconds is whole seconds in webvtt-py 0.5: read the timestamps
        start, end = _seconds(c.start), _seconds(c.end)
        out.append(Cue(start=start, end=end, lines=tuple(html.unescape(line) for line in c.lines),
                       speech_start=start, speech_end=end))
    language = _header_language(getattr(doc, "metadata", None) or ()) or _name_language(path)
    return SubtitleFile(cues=tuple(out), language=language)


#: ``SubtitleStyle`` fields a gpuboot transcript's JSON records under ``subtitles.limits`` (the rules its cues
#: were made by), with the type each must have.
_LIMITS = (("max_lines", int), ("max_line", int), ("min_duration", float), ("max_duration", float),
           ("min_gap_frames", int), ("fps", float), ("chain_frames", int), ("max_cps", float))


def made_with(path: Path) -> Optional[Dict[str, Any]]:
    """The rules a subtitle file of gpuboot's own was made by: from the ``.json`` that ``gpuboot transcribe``
    wrote beside it in the same set (the same name, and the same modification time: a set is written with one
    stamp, ``whisper/outsets.py``), as ``{"style": {SubtitleStyle field: value}, "language": code,
    "audio_end": seconds or None}``; ``None`` when there is no such file, or it does not hold those values."""
    import json
    import math

    from ..base.files import read_bounded

    sibling = path.with_suffix(".json")
    try:
        if path.stat().st_mtime_ns != sibling.stat().st_mtime_ns:
            return None
        data = json.loads(read_bounded(str(sibling), MAX_BYTES, "a transcript's JSON").decode("utf-8"))
    except (OSError, ValueError):
        return None
    limits = data.get("subtitles", {}).get("limits") if isinstance(data, dict) and isinstance(
        data.get("subtitles"), dict) else None
    if not isinstance(limits, dict):
        return None
    style: Dict[str, Any] = {}
    for name, kind in _LIMITS:
        value = limits.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
            return None
        if not math.isfinite(value):
            return None
        style[name] = kind(value)
    from .style import SubtitleStyle

    try:
        SubtitleStyle(**style).check()
    except ValueError:
        return None
    language = data.get("language") if isinstance(data.get("language"), str) else limits.get("language")
    end = data.get("duration_s")
    audio_end = float(end) if isinstance(end, (int, float)) and not isinstance(end, bool) and math.isfinite(
        end) and end > 0 else None
    return {"style": style, "language": language if isinstance(language, str) else "", "audio_end": audio_end}
