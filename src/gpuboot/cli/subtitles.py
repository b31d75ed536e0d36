"""``gpuboot subtitles check FILE...``: the conformance report of any subtitle file, by the rules it was made with
where it says them (``subtitles.check_subtitles``), else gpuboot's defaults."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, List, TextIO

from .style_args import add_style_arguments

__all__ = ["SUMMARY", "add_arguments", "run"]

SUMMARY = "check subtitle files (.srt, .vtt) against broadcast rules: durations, gaps, reading speed, line breaks"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("check",), help="check: count the cues that break each rule")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help=".srt or .vtt files, from any tool")
    parser.add_argument("--language", default=None,
                        help="ISO 639-1 code of the subtitles' language: its line length and reading speed "
                             "(default: the file's: a WebVTT Language: header, gpuboot's own .json beside it, a "
                             "NAME.LANG.srt name; else the text's script, else 42 characters and 17 per second)")
    parser.add_argument("--audio-duration", type=float, default=None, metavar="SECONDS",
                        help="the audio's length: a cue that ends after it is reported")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    add_style_arguments(parser, from_file=True)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Check each file; exit 0 when every cue meets every rule, 1 when some break one (or a file cannot be read)."""
    import math

    from ..subtitles import RULES, check_subtitles
    from .inputs import shown
    from .style_args import given_rules

    rules = given_rules(args)
    if args.audio_duration is not None and not (math.isfinite(args.audio_duration) and args.audio_duration > 0):
        raise ValueError(f"--audio-duration must be a positive number of seconds, not {args.audio_duration:g}")
    reports: List[Any] = []
    failed = False
    for path in args.files:
        try:
            report = check_subtitles(path, audio_end=args.audio_duration, **rules)
        except (ValueError, OSError) as exc:
            failed = True
            text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            where = shown(str(path))
            line = text if text.startswith(where) else f"{where}: {text}"
            err.write(f"gpuboot: error: {shown(' '.join(line.split()))}\n")
            continue
        reports.append((path, report))
        if not args.json:
            out.write(f"{shown(str(path))}: {report.summary()}\n")
            for number, rule, measured in report.examples:
                out.write(f"  cue {number}: {RULES[rule]} ({measured})\n")
    if args.json:
        items = [{"file": shown(str(p)), **r.to_dict(), "ok": r.ok} for p, r in reports]
        json.dump(items[0] if len(items) == 1 else items, out, indent=2, ensure_ascii=False)
        out.write("\n")
    return 1 if failed or not all(r.ok for _p, r in reports) else 0
