"""The subtitle options ``gpuboot transcribe`` and ``gpuboot subtitles check`` share, and the ``SubtitleStyle``
they make."""

from __future__ import annotations

import argparse
from typing import Any, Dict

__all__ = ["add_style_arguments", "style_of", "given_rules"]


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {value!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {value}")
    return n


def _number(value: str) -> float:
    """A finite number (``nan`` and ``inf`` are refused: they would turn a limit off)."""
    import math

    try:
        n = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {value!r}") from None
    if not math.isfinite(n):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {value!r}")
    return n


#: Each option: (flag, SubtitleStyle field, type, default, help).  ``None`` as a default takes the language's.
_OPTIONS = (
    ("--max-line-width", "max_line", _positive_int, None,
     "subtitle characters per line (default: the language's: 42 for English and most others, 16 for Chinese)"),
    ("--max-line-count", "max_lines", _positive_int, 2, "subtitle lines per cue (2)"),
    ("--min-cue-duration", "min_duration", _number, 5 / 6,
     "seconds a cue stays on screen at least (5/6: 20 frames at 24 fps)"),
    ("--max-cue-duration", "max_duration", _number, 7.0, "seconds a cue stays on screen at most (7)"),
    ("--max-cps", "max_cps", _number, None,
     "reading speed, characters per second (default: the language's: 20 for English, 17 for most others and "
     "for a language not known)"),
    ("--fps", "fps", _number, 24.0, "frame rate the gaps and extensions are counted in (24; the video's when known)"),
    ("--min-gap-frames", "min_gap_frames", int, 2,
     "frames between two cues at least (2); gaps under 12 frames are closed to it"),
    ("--extend-frames", "extend_frames", int, 12,
     "frames a cue may stay after its speech when the end of the audio leaves no next cue (12)"),
)
_FLAGS = {field: flag for flag, field, _t, _d, _h in _OPTIONS}


def add_style_arguments(t: argparse.ArgumentParser, *, from_file: bool = False) -> None:
    """The subtitle rules as options (defaults: Netflix's Timed Text Style Guide; ``subtitles.SubtitleStyle``).
    ``from_file`` (``gpuboot subtitles check``): an option not given leaves the rule to the file (what it was
    made with), so every default is ``None`` and the help says so."""
    for flag, field, kind, default, text in _OPTIONS:
        if from_file:
            text += "; default: what the file was made with, where it says (gpuboot's own .json beside it)"
        t.add_argument(flag, dest=field, type=kind, default=None if from_file else default, help=text)


def given_rules(args: argparse.Namespace) -> Dict[str, Any]:
    """The rules given on the command line (``SubtitleStyle`` field -> value), each checked.

    Raises:
        ValueError: a value out of range or not finite, naming the option.
    """
    from ..subtitles import SubtitleStyle

    given = {field: getattr(args, field) for field in _FLAGS if getattr(args, field, None) is not None}
    if getattr(args, "language", None):
        given["language"] = args.language
    try:
        SubtitleStyle(**given).check()
    except ValueError as exc:
        raise ValueError(_flag_wording(str(exc))) from None
    return given


def _flag_wording(text: str) -> str:
    for field, flag in sorted(_FLAGS.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(field, flag)
    return text


def style_of(args: argparse.Namespace) -> Any:
    """The subtitle rules of a run (``subtitles.SubtitleStyle``), checked.

    Raises:
        ValueError: a value out of range or not finite, naming the option.
    """
    from ..subtitles import SubtitleStyle

    style = SubtitleStyle(language=args.language, **{field: getattr(args, field) for field in _FLAGS})
    try:
        return style.check()
    except ValueError as exc:
        raise ValueError(_flag_wording(str(exc))) from None
