"""Subtitles a broadcaster would accept, in every script: ``make_subtitles()`` and ``check_subtitles()``.

>>> import gpuboot
>>> model = gpuboot.load_whisper("small")
>>> segments, info = gpuboot.transcribe(model, "talk.wav", word_timestamps=True)
>>> subs = gpuboot.make_subtitles(segments, info)          # Netflix's rules by default (SubtitleStyle)
>>> open("talk.srt", "w").write(subs.srt)
>>> print(subs.report.summary())                          # how many cues break which rule

``gpuboot transcribe`` writes its srt, vtt and json from the same call, and
``gpuboot subtitles check FILE`` runs the report on any ``.srt``/``.vtt``.

Modules: ``languages`` (limits and script per language), ``breaks`` (where a
line may end), ``units`` (words as the model wrote them), ``layout`` (cues and
lines), ``timing`` (frames, durations, gaps, chaining), ``conformance`` (the
report), ``files`` (SubRip and WebVTT through ``srt`` and ``webvtt-py``),
``style`` (the rules as values).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from ..base.record import Record
from .conformance import RULES, Conformance, conformance
from .languages import LANGUAGES, Language
from .style import SubtitleStyle
from .timing import Cue

__all__ = ["Subtitles", "SubtitleStyle", "Cue", "Conformance", "make_subtitles", "check_subtitles", "RULES",
           "LANGUAGES",
           "cue_dict"]


class Subtitles(Record):
    """Cues made from a transcription, and how they meet the rules.

    Attributes:
        cues: the cues, in order.
        style: the rules they were made for.
        language: the ISO 639-1 code used (``""`` when unknown).
        timed: every word had a timing (``word_timestamps=True``); else times were estimated from segments.
        report: the conformance report.
        audio_end: the end of the audio, seconds, when known (no cue goes past it).
    """

    cues: Tuple[Cue, ...]
    style: SubtitleStyle
    language: str
    timed: bool
    report: Conformance
    audio_end: Optional[float] = None

    @property
    def srt(self) -> str:
        """SubRip text (written by ``srt``)."""
        from .files import to_srt

        return to_srt(self.cues)

    @property
    def vtt(self) -> str:
        """WebVTT text (written by ``webvtt-py``, escaped), with a ``Language:`` header when the language is
        known."""
        from .files import to_vtt

        return to_vtt(self.cues, self.language)

    def to_dicts(self) -> List[Dict[str, Any]]:
        """Each cue as JSON (``cue_dict``)."""
        return [cue_dict(i, c) for i, c in enumerate(self.cues)]


def cue_dict(index: int, cue: Cue) -> Dict[str, Any]:
    """One cue as JSON: id, start, end (seconds), text, lines and its words."""
    row: Dict[str, Any] = {"id": index, "start": round(cue.start, 3), "end": round(cue.end, 3), "text": cue.text,
                           "lines": list(cue.lines)}
    if cue.words:
        row["words"] = [{"start": round(a, 3), "end": round(b, 3), "word": w} for a, b, w in cue.words]
    return row


def make_subtitles(segments: Iterable[Any], info: Any = None, *, style: Optional[SubtitleStyle] = None,
                   language: Optional[str] = None, duration: Optional[float] = None, **rules: Any) -> Subtitles:
    """Subtitle cues from a transcription, by the rules of ``style`` (Netflix's by default).

    Args:
        segments: faster-whisper ``Segment`` s (decode with ``word_timestamps=True`` for cues that start and end
            on words; without, times are shared out by characters).
        info: faster-whisper's ``TranscriptionInfo`` (its ``language`` and ``duration``), optional.
        style: the rules (``SubtitleStyle``); ``rules`` change single values of it (``max_cps=17``, ``fps=25``).
        language: ISO 639-1 code, over ``info``'s (default: ``info``'s, else the text's script).
        duration: the audio's length, seconds (default ``info.duration``): no cue ends after it.

    Returns:
        ``Subtitles``: ``cues``, ``srt``, ``vtt``, ``report``.

    Raises:
        ValueError: a rule value out of range or not finite (``SubtitleStyle.check``), or an unknown rule name.
        TypeError: ``segments`` holds something that is not a segment (``start``, ``end``, ``text``).
    """
    from .layout import sentences, split_sentence, wrap_units
    from .timing import time_cues
    from .units import units_of

    base = style or SubtitleStyle()
    unknown = [k for k in rules if k not in SubtitleStyle._fields]  # type: ignore[attr-defined]
    if unknown:
        raise ValueError(f"unknown subtitle rule(s): {', '.join(unknown)} (known: {', '.join(SubtitleStyle._fields)})")  # type: ignore[attr-defined]
    code = language or base.language or (getattr(info, "language", None) if info is not None else None)
    style = base._replace(**rules, language=code).check() if rules or code != base.language else base.check()
    segs = list(segments)
    for seg in segs:
        if not all(hasattr(seg, field) for field in ("start", "end", "text")):
            raise TypeError(f"make_subtitles() takes faster-whisper segments (start, end, text, words), not "
                            f"{type(seg).__name__}")
    lang = style.lang(" ".join(str(getattr(s, "text", "")) for s in segs[:20]))
    end = duration if duration is not None else getattr(info, "duration", None) if info is not None else None
    units, timed = units_of(segs, lang)
    cues: List[Cue] = []
    parts = sentences(units, style, lang)
    for i, sentence in enumerate(parts):
        after = parts[i + 1][0].start if i + 1 < len(parts) else end
        for piece in split_sentence(sentence, after, style, lang):
            lines = wrap_units(piece, style.line_limit(lang), style.max_lines, lang) or [
                "".join((" " if u.space and j else "") + u.text for j, u in enumerate(piece))]
            cues.append(Cue(start=piece[0].start, end=piece[-1].end, lines=tuple(lines),
                            words=tuple((u.start, u.end, u.text) for u in piece) if timed else (),
                            speech_start=piece[0].start, speech_end=piece[-1].end))
    timed_cues = time_cues(cues, style, style.cps_limit(lang), float(end) if end is not None else None)
    report = conformance(timed_cues, style, lang, float(end) if end is not None else None, timed=True)
    return Subtitles(cues=tuple(timed_cues), style=style, language=lang.code, timed=timed, report=report,
                     audio_end=float(end) if end is not None else None)


def check_subtitles(path: Union[str, Path], *, style: Optional[SubtitleStyle] = None, audio_end: Optional[float] = None,
                    **rules: Any) -> Conformance:
    """The conformance report of a subtitle file (``.srt`` or ``.vtt``), made by any tool, judged by the rules
    it was made with where it says them.

    The rules, first found first: ``rules`` (single values: ``language="en"``, ``max_cps=17``); ``style``;
    for a file of gpuboot's own (the ``.json`` of its transcript set beside it, ``files.made_with``) the rules
    recorded there, its language and the audio's end, and -- as ``gpuboot transcribe`` judged it -- a cue the
    speech leaves no room to lengthen is counted apart (``speech_bound``); the language the file names (a
    WebVTT ``Language:`` header, a ``NAME.LANG.srt`` name); else Netflix's rules (``SubtitleStyle()``) and the
    text's script, as ``make_subtitles`` takes them when no language is known.

    Args:
        path: the file.
        style: the rules (``SubtitleStyle``), over what the file records.
        audio_end: the audio's length, seconds, when known (default: what gpuboot's JSON records).

    Raises:
        ValueError: not an .srt/.vtt file, not an ordinary file (a directory, FIFO, device), over
            ``files.MAX_BYTES``, not UTF-8, a file its library cannot parse, or a rule value out of range.
        OSError: the file cannot be read.
    """
    from .files import made_with, read_file

    unknown = [k for k in rules if k not in SubtitleStyle._fields]  # type: ignore[attr-defined]
    if unknown:
        raise ValueError(f"unknown subtitle rule(s): {', '.join(unknown)} (known: {', '.join(SubtitleStyle._fields)})")  # type: ignore[attr-defined]
    path = Path(path)
    if style is not None:
        style.check()
    SubtitleStyle(**rules).check()  # the caller's values, named as the caller gave them
    read = read_file(path)
    own = made_with(path)
    base = style or SubtitleStyle()
    if own is not None and style is None:
        base = base._replace(**own["style"])
    language = (rules.get("language") or base.language or (own["language"] if own is not None else "")
                or read.language or None)
    judged = base._replace(**{**rules, "language": language}).check()
    end = audio_end if audio_end is not None else own["audio_end"] if own is not None else None
    cues = read.cues
    lang: Language = judged.lang(" ".join(" ".join(c.lines) for c in cues[:50]))
    return conformance(cues, judged, lang, end, timed=own is not None)
