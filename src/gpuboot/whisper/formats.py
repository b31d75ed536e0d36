"""Transcript files in the formats speech users expect: txt, srt, vtt and json (openai-whisper's conventions).

The cue formats are made of ``gpuboot.make_subtitles``' cues (``gpuboot/subtitles``), written by ``srt`` and
``webvtt-py``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

__all__ = ["Format", "FORMATS", "needs_cues", "timestamp", "to_txt", "to_srt", "to_vtt", "to_json", "write_outputs",
           "segment_dict", "transcript_text", "output_stem", "colliding_inputs", "outputs_complete", "render_outputs",
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
                   subs: Any = None) -> Dict[str, str]:
    """Each format's text for ``segments``; ``subs`` (``gpuboot.make_subtitles``'s ``Subtitles``) for the cue
    formats, made with the default rules when not given."""
    if subs is None and needs_cues(formats):
        from ..subtitles import make_subtitles

        subs = make_subtitles(segments)
    return {fmt: FORMATS[fmt].render(segments, extra, subs) for fmt in formats}


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
                  extra: Mapping[str, Any], subs: Any = None) -> List[Path]:
    """``render_outputs`` then ``write_rendered``: each file renamed into place whole.

    Raises:
        OSError: the directory cannot be created or a file cannot be written.
    """
    return write_rendered(audio, render_outputs(segments, formats, extra, subs), output_dir)
