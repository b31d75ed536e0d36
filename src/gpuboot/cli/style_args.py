"""The subtitle options ``gpuboot transcribe`` and ``gpuboot subtitles check`` share, and the ``SubtitleStyle``
they make."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_style_arguments", "style_of"]


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


def add_style_arguments(t: argparse.ArgumentParser) -> None:
    """The subtitle rules as options (defaults: Netflix's Timed Text Style Guide; ``subtitles.SubtitleStyle``)."""
    t.add_argument("--max-line-width", type=_positive_int, default=None,
                   help="subtitle characters per line (default: the language's: 42 for English, 16 for Chinese)")
    t.add_argument("--max-line-count", type=_positive_int, default=2, help="subtitle lines per cue (2)")
    t.add_argument("--min-cue-duration", type=_number, default=5 / 6,
                   help="seconds a cue stays on screen at least (5/6: 20 frames at 24 fps)")
    t.add_argument("--max-cue-duration", type=_number, default=7.0, help="seconds a cue stays on screen at most (7)")
    t.add_argument("--max-cps", type=_number, default=None,
                   help="reading speed, characters per second (default: the language's: 20 for English)")
    t.add_argument("--fps", type=_number, default=24.0,
                   help="frame rate the gaps and extensions are counted in (24; the video's when known)")
    t.add_argument("--min-gap-frames", type=int, default=2,
                   help="frames between two cues at least (2); gaps under 12 frames are closed to it")
    t.add_argument("--extend-frames", type=int, default=12,
                   help="frames a cue may stay after its speech when the end of the audio leaves no next cue (12)")


def style_of(args: argparse.Namespace) -> Any:
    """The subtitle rules of a run (``subtitles.SubtitleStyle``), checked.

    Raises:
        ValueError: a value out of range or not finite, naming the option.
    """
    from ..subtitles import SubtitleStyle

    style = SubtitleStyle(language=args.language, max_line=args.max_line_width, max_lines=args.max_line_count,
                          max_cps=args.max_cps, min_duration=args.min_cue_duration,
                          max_duration=args.max_cue_duration, fps=args.fps, min_gap_frames=args.min_gap_frames,
                          extend_frames=args.extend_frames)
    try:
        return style.check()
    except ValueError as exc:
        names = {"max_line": "--max-line-width", "max_lines": "--max-line-count", "max_cps": "--max-cps",
                 "min_duration": "--min-cue-duration", "max_duration": "--max-cue-duration", "fps": "--fps",
                 "min_gap_frames": "--min-gap-frames", "extend_frames": "--extend-frames"}
        text = str(exc)
        for field, flag in sorted(names.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(field, flag)
        raise ValueError(text) from None
