"""Transcript files in the formats speech users expect: txt, srt, vtt and json (openai-whisper's conventions).

The cue formats are made of ``gpuboot.make_subtitles``' cues (``gpuboot/subtitles``), written by ``srt`` and
``webvtt-py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Sequence

__all__ = ["Format", "FORMATS", "needs_cues", "timestamp", "to_txt", "to_srt", "to_vtt", "to_json", "write_outputs",
           "segment_dict", "transcript_text", "render_outputs"]


def timestamp(seconds: float, *, decimal: str = ".", always_hours: bool = False) -> str:
    """``HH:MM:SS.mmm`` (``decimal=","`` for SRT); hours only when non-zero
    unless ``always_hours``.  Negative input is clamped to 0.

    >>> timestamp(3725.5, decimal=",", always_hours=True)
    '01:02:05,500'
    """
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    head = f"{hours:02d}:" if always_hours or hours else ""
    return f"{head}{minutes:02d}:{secs:02d}{decimal}{ms:03d}"


def _text(segment: Any) -> str:
    return " ".join(str(segment.text).split())


def transcript_text(segments: Iterable[Any]) -> str:
    """The whole transcript on one line: each segment's text as the model wrote it, spaces collapsed.  A text
    in a script without spaces (Chinese, Japanese, Thai...) is joined without adding any."""
    from ..subtitles.languages import language

    texts = [str(s.text).strip() for s in segments]
    joined = "".join(texts)
    sep = "" if not language(None, joined).spaced else " "
    return sep.join(" ".join(t.split()) for t in texts if t).strip()


def to_txt(segments: Iterable[Any]) -> str:
    """One segment per line: paragraphs, as decoded."""
    return "".join(f"{_text(s)}\n" for s in segments)


def to_srt(segments: Iterable[Any], info: Any = None, **rules: Any) -> str:
    """SubRip of ``segments``: the cues of ``gpuboot.make_subtitles(segments, info, **rules)``, written by
    ``srt``."""
    from ..subtitles import make_subtitles

    return make_subtitles(segments, info, **rules).srt


def to_vtt(segments: Iterable[Any], info: Any = None, **rules: Any) -> str:
    """WebVTT of ``segments``: the cues of ``gpuboot.make_subtitles``, written by ``webvtt-py`` (escaped)."""
    from ..subtitles import make_subtitles

    return make_subtitles(segments, info, **rules).vtt


def segment_dict(index: int, segment: Any) -> Dict[str, Any]:
    """One segment as JSON: id, start, end (seconds), text and, with word
    timestamps, its words."""
    row: Dict[str, Any] = {"id": index, "start": round(float(segment.start), 3), "end": round(float(segment.end), 3),
                           "text": _text(segment)}
    words = getattr(segment, "words", None)
    if words:
        row["words"] = [{"start": round(float(w.start), 3), "end": round(float(w.end), 3), "word": w.word,
                         "probability": round(float(w.probability), 4)} for w in words]
    return row


def to_json(segments: Sequence[Any], extra: Mapping[str, Any], subs: Any) -> str:
    """``{"text", "segments", **extra}``, as openai-whisper's json output plus gpuboot's device, timing and
    subtitle-report fields in ``extra``; ``segments`` are the subtitle cues (``subs``, a ``Subtitles``), each
    with its lines and words."""
    cues = subs.to_dicts() if subs is not None else [segment_dict(i, s) for i, s in enumerate(segments)]
    payload = {"text": transcript_text(segments), "segments": cues, **extra}
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


class Format(NamedTuple):
    """One row of ``FORMATS``: how a transcript format is rendered, and whether it is made of cues (so word
    timings are wanted: cues start and end on words)."""

    render: Callable[[Sequence[Any], Mapping[str, Any], Any], str]  # (segments, extra, subtitles)
    cues: bool


#: The formats ``gpuboot transcribe --output-format`` writes (``all`` is every one), in that order.  A new format
#: is one renderer and one row.
FORMATS: Dict[str, Format] = {
    "txt": Format(lambda segments, extra, subs: to_txt(segments), cues=False),
    "srt": Format(lambda segments, extra, subs: subs.srt, cues=True),
    "vtt": Format(lambda segments, extra, subs: subs.vtt, cues=True),
    "json": Format(lambda segments, extra, subs: to_json(segments, extra, subs), cues=True),
}


def needs_cues(formats: Iterable[str]) -> bool:
    """Any of ``formats`` is made of readable cues (``FORMATS[...].cues``)."""
    return any(FORMATS[f].cues for f in formats)


def render_outputs(segments: Sequence[Any], formats: Sequence[str], extra: Mapping[str, Any],
                   subs: Any = None) -> Dict[str, str]:
    """Each format's text for ``segments``; ``subs`` (``gpuboot.make_subtitles``'s ``Subtitles``) for the cue
    formats, made with the default rules when not given."""
    if subs is None and needs_cues(formats):
        from ..subtitles import make_subtitles

        subs = make_subtitles(segments)
    return {fmt: FORMATS[fmt].render(segments, extra, subs) for fmt in formats}


def write_outputs(audio: str, segments: Sequence[Any], formats: Sequence[str], output_dir: Path,
                  extra: Mapping[str, Any], subs: Any = None) -> List[Path]:
    """``render_outputs`` then ``outsets.write_set`` as ``<output_dir>/<audio stem>.<format>``: the formats
    renamed into place as one set (all new or all old).

    Raises:
        OSError: the directory cannot be created or a file cannot be written.
    """
    from .outsets import write_set

    return write_set(output_dir / (Path(audio).stem or "audio"), render_outputs(segments, formats, extra, subs))
