"""Transcript files in the formats speech users expect: txt, srt, vtt and json (openai-whisper's conventions)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from .cues import Cue, make_cues

__all__ = ["Format", "FORMATS", "needs_cues", "timestamp", "to_txt", "to_srt", "to_vtt", "to_json", "write_outputs",
           "segment_dict", "cue_dict", "output_stem", "colliding_inputs", "outputs_complete", "render_outputs",
           "write_rendered"]


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


def to_txt(segments: Iterable[Any]) -> str:
    """One segment per line: paragraphs, as decoded."""
    return "".join(f"{_text(s)}\n" for s in segments)


def to_srt(segments: Iterable[Any], **limits: Any) -> str:
    """SubRip: numbered readable cues (``cues.make_cues``; ``limits`` are its
    ``max_line_width``, ``max_line_count``, ``max_cue_duration``),
    ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, blank line after each."""
    out: List[str] = []
    for i, c in enumerate(make_cues(segments, **limits), start=1):
        start = timestamp(c.start, decimal=",", always_hours=True)
        end = timestamp(c.end, decimal=",", always_hours=True)
        out.append(f"{i}\n{start} --> {end}\n" + "\n".join(c.lines) + "\n")
    return "\n".join(out)


def to_vtt(segments: Iterable[Any], **limits: Any) -> str:
    """WebVTT: the ``WEBVTT`` header, then readable cues (as ``to_srt``),
    ``HH:MM:SS.mmm --> HH:MM:SS.mmm``."""
    out = ["WEBVTT\n"]
    for c in make_cues(segments, **limits):
        start = timestamp(c.start, always_hours=True)
        end = timestamp(c.end, always_hours=True)
        out.append(f"{start} --> {end}\n" + "\n".join(c.lines) + "\n")
    return "\n".join(out)


def cue_dict(index: int, cue: Cue) -> Dict[str, Any]:
    """One cue as JSON: id, start, end (seconds), text, lines and its words."""
    row: Dict[str, Any] = {"id": index, "start": round(cue.start, 3), "end": round(cue.end, 3), "text": cue.text,
                           "lines": list(cue.lines)}
    if cue.words:
        row["words"] = [{"start": round(a, 3), "end": round(b, 3), "word": w} for a, b, w in cue.words]
    return row


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


def to_json(segments: Sequence[Any], extra: Mapping[str, Any], **limits: Any) -> str:
    """``{"text", "segments", **extra}``, as openai-whisper's json output plus
    gpuboot's device and timing fields in ``extra``; ``segments`` are the
    readable cues (``to_srt``'s), each with its lines and words."""
    payload = {"text": " ".join(_text(s) for s in segments).strip(),
               "segments": [cue_dict(i, c) for i, c in enumerate(make_cues(segments, **limits))], **extra}
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


class Format(NamedTuple):
    """One row of ``FORMATS``: how a transcript format is rendered, and whether it is made of cues (so word
    timings are wanted: cues start and end on words)."""

    render: Callable[[Sequence[Any], Mapping[str, Any], Mapping[str, Any]], str]  # (segments, extra, cue limits)
    cues: bool


#: The formats ``gpuboot transcribe --output-format`` writes (``all`` is every one), in that order.  A new format
#: is one renderer and one row.
FORMATS: Dict[str, Format] = {
    "txt": Format(lambda segments, extra, limits: to_txt(segments), cues=False),
    "srt": Format(lambda segments, extra, limits: to_srt(segments, **limits), cues=True),
    "vtt": Format(lambda segments, extra, limits: to_vtt(segments, **limits), cues=True),
    "json": Format(lambda segments, extra, limits: to_json(segments, extra, **limits), cues=True),
}


def needs_cues(formats: Iterable[str]) -> bool:
    """Any of ``formats`` is made of readable cues (``FORMATS[...].cues``)."""
    return any(FORMATS[f].cues for f in formats)


def output_stem(audio: str) -> str:
    """The file name, without suffix, of ``audio``'s transcripts: its stem."""
    return Path(audio).stem or "audio"


def outputs_complete(audio: str, formats: Sequence[str], output_dir: Path) -> bool:
    """Every output of ``audio`` is there (``--skip-existing``): files are
    renamed into place whole, so one that exists is complete."""
    stem = output_stem(audio)
    return bool(formats) and all((output_dir / f"{stem}.{fmt}").is_file() for fmt in formats)


def colliding_inputs(audio: Sequence[str]) -> Optional[Tuple[str, str, str]]:
    """Two inputs whose transcripts would overwrite each other in one output
    directory (``a/x.wav`` and ``b/x.mp3`` both write ``x.*``), as
    ``(first, second, stem)``, or ``None``."""
    seen: Dict[str, str] = {}
    for path in audio:
        stem = output_stem(path)
        if stem in seen:
            return seen[stem], path, stem
        seen[stem] = path
    return None


def render_outputs(segments: Sequence[Any], formats: Sequence[str], extra: Mapping[str, Any],
                   **limits: Any) -> Dict[str, str]:
    """Each format's text for ``segments`` (``limits``: the cue limits; ``FORMATS`` renders)."""
    return {fmt: FORMATS[fmt].render(segments, extra, limits) for fmt in formats}


def write_rendered(audio: str, rendered: Mapping[str, str], output_dir: Path) -> List[Path]:
    """Write ``<output_dir>/<audio stem>.<format>`` for each rendered format; returns the paths.

    Each file is written under a temporary name in the same directory and
    renamed into place, so a reader (or an interrupted run) never sees half a
    transcript.

    Raises:
        OSError: the directory cannot be created or a file cannot be written.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    stem = output_stem(audio)
    written = []
    for fmt, text in rendered.items():
        path = output_dir / f"{stem}.{fmt}"
        tmp = output_dir / f".{stem}.{fmt}.{os.getpid()}.tmp"
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        written.append(path)
    return written


def write_outputs(audio: str, segments: Sequence[Any], formats: Sequence[str], output_dir: Path,
                  extra: Mapping[str, Any], **limits: Any) -> List[Path]:
    """``render_outputs`` then ``write_rendered``: each file renamed into place whole.

    Raises:
        OSError: the directory cannot be created or a file cannot be written.
    """
    return write_rendered(audio, render_outputs(segments, formats, extra, **limits), output_dir)
