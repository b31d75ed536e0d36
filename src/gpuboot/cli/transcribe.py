"""``gpuboot transcribe``: recordings in, transcripts out -- plan the inputs, run them, write the outputs.

Conventions follow openai-whisper's and faster-whisper's command lines:
``--output-format txt|srt|vtt|json|all`` and ``--output-dir`` write
``<dir>/<audio stem>.<format>``; inputs from several folders keep their
folders under ``--output-dir`` (``day1/talk.wav``, ``day2/talk.wav`` ->
``out/day1/talk.srt``, ``out/day2/talk.srt``), and a folder given is
transcribed whole.  Two inputs that would still write one transcript
(``talk.wav`` and ``talk.mp3``; ``Talk.wav`` and ``talk.wav`` where the file
system ignores case) are refused before any work.  A file's formats are
written as one set (``whisper.outsets``), and the output directory is tried
before any transcription.  A terminal sees the subtitle cues as they are
final, a "wrote" line per file and one progress bar over every file
(audio seconds, real-time factor, ETA; off with ``--quiet`` or when stderr is
not a terminal).  Unless ``--quiet``, stderr gets the device line and one
summary line per file (audio seconds, words, the run's real-time factor so
far -- the files of a batch share its time --, the files written), a
terminal or not; ``-v`` adds the plan.  A file that cannot be read gets one error line and the
others are still transcribed; the exit code is then 1.  The files run in this
process, in worker processes (``--workers``, ``pool.py``) or on Ray
(``--ray``, ``rayrun.py``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, TextIO

from .events import Done, Event, Failed, Loaded, Planned, Progress, Segment
from .inputs import Input, shown
from .terminal import Progress as ProgressBar
from .terminal import error_line, is_tty
from .transcribe_args import MAX_BATCH_ASKED, MAX_BEAM, add_arguments

__all__ = ["SUMMARY", "add_arguments", "run", "plan_inputs", "Outputs", "MAX_BEAM", "MAX_BATCH_ASKED"]

SUMMARY = "transcribe recordings with a verified faster-whisper model"

def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Transcribe every file in ``args.audio``: plan the inputs, run them, write the outputs; the exit code."""
    if args.live:
        from . import live
        return live.run(args, out, err)
    from .job import Settings

    settings = Settings(args)
    plan = plan_inputs(args, settings, err)
    paths = [item.path for item in plan.inputs]
    seconds = _seconds(paths) if (not args.quiet and is_tty(err)) or args.workers not in (None, 1) or args.ray \
        else {}
    if args.ray or args.ray_address:
        from .rayrun import RayActors

        runner: Any = RayActors(settings, args.workers, args.ray_address, seconds=seconds)
    elif args.workers not in (None, 1):
        from .pool import Workers

        runner = Workers(settings, args.workers, seconds=seconds)
    else:
        from .runners import InProcess

        runner = InProcess(settings)
    outputs = Outputs(args, settings, plan.inputs, out, err, seconds=seconds, failures=plan.refused)
    if not paths:
        return outputs.finish()
    try:
        for event in runner.run(paths):
            outputs.handle(event)
    except KeyboardInterrupt as exc:
        return outputs.interrupted(exc)
    return outputs.finish()


def _seconds(paths: Sequence[str]) -> Dict[str, float]:
    from .runners import audio_seconds

    return {p: audio_seconds(p) for p in paths}


class Plan:
    """The inputs to transcribe and how many were refused up front (each had its error line)."""

    def __init__(self, inputs: List[Input], refused: int) -> None:
        self.inputs, self.refused = inputs, refused


def plan_inputs(args: argparse.Namespace, settings: Any, err: TextIO) -> Plan:
    """The inputs: folders expanded, special files refused (one error line each), each one's transcript base
    (folders mirrored), clashes refused, ``--skip-existing`` applied, the output directories tried.

    Raises:
        ValueError: two inputs would write one transcript; ``--skip-existing`` without transcript files.
        OutputDirError: an output directory cannot take files (its real cause).
    """
    from .inputs import case_insensitive, check_output_dir, expand, first_clash, mirror

    if args.skip_existing and not settings.formats:
        raise ValueError("--skip-existing needs transcript files: add --output-dir or --output-format")
    files, refused = expand(args.audio)
    for r in refused:
        from ..errors import AudioError

        error_line(err, AudioError(r.message, r.fix))
    files = list(dict.fromkeys(files))  # one file named twice is transcribed once
    inputs = [Input(path=p, base=b) for p, b in zip(files, mirror(files, settings.out_dir))]
    if not settings.formats:
        return Plan(inputs, len(refused))
    check_output_dir([settings.out_dir, *(i.base.parent for i in inputs)])
    clash = first_clash(inputs, insensitive=case_insensitive(settings.out_dir))
    if clash:
        a, b = clash
        raise ValueError(f"{shown(a.path)} and {shown(b.path)} would both write {shown(str(a.base))}.* (file "
                         "names compared as this file system does): rename one, or transcribe them in separate runs "
                         "with different --output-dir")
    if not args.skip_existing:
        return Plan(inputs, len(refused))
    from ..whisper.outsets import set_complete

    todo = []
    for item in inputs:
        if set_complete(item.base, settings.formats):
            if not args.quiet:
                err.write(f"gpuboot: skipped {shown(item.path)}: its transcripts are complete in "
                          f"{shown(str(item.base.parent))}\n")
        else:
            todo.append(item)
    return Plan(todo, len(refused))


class Outputs:
    """What a run's events become: transcript sets (``write_set``), live lines, one progress bar, the
    ``--json`` document or plain text, error lines; results in input order."""

    def __init__(self, args: argparse.Namespace, settings: Any, inputs: Sequence[Input], out: TextIO, err: TextIO,
                 *, seconds: Optional[Dict[str, float]] = None, failures: int = 0) -> None:
        self.args, self.settings, self.out, self.err = args, settings, out, err
        self.inputs = {item.path: item for item in inputs}
        self.paths = [item.path for item in inputs]
        self.verbose = int(getattr(args, "verbose", 0) or 0)
        self.interactive = not args.quiet and is_tty(err)
        self.talk = not args.quiet  # the device line and each file's summary line, a terminal or not
        self.started = time.perf_counter()
        self.audio_done = 0.0  # s, of the files done: the run's RTF on each summary line
        self.live = not args.quiet and not args.json and is_tty(out)
        self.many = len(self.paths) > 1
        self.items: Dict[str, Any] = {}
        self.plain: Dict[str, str] = {}
        self.live_segments: Dict[str, List[Any]] = {}
        self.shown: Dict[str, int] = {}
        self.failures = failures
        self.known = {p: float((seconds or {}).get(p, 0.0)) for p in self.paths}
        self.done_s: Dict[str, float] = {}
        self.loaded_said = False
        self.ended: Set[str] = set()  # files done or failed
        self.printed = 0
        label = Path(self.paths[0]).name if len(self.paths) == 1 else f"{len(self.paths)} files"
        self.progress = ProgressBar(self.interactive and bool(self.paths), err, sum(self.known.values()) or 1.0,
                                 shown(label))

    def handle(self, event: Event) -> None:
        """One runner event (``events.py``), whatever the runner."""
        if isinstance(event, (Done, Failed)) and event.path in self.inputs:
            self.ended.add(event.path)
        if isinstance(event, Loaded):
            self._loaded(event.info, event.rank)
        elif isinstance(event, Planned):
            if self.interactive or (self.talk and self.verbose):
                self.progress.write(f"gpuboot: {event.line}", self.err)
        elif isinstance(event, Segment):
            if self.live:
                self._live(event.path, event.segment, final=False)
        elif isinstance(event, Progress):
            self._advance(event.path, float(event.seconds))
        elif isinstance(event, Failed):
            self._failed(event)
        elif isinstance(event, Done):
            self._done(event)

    def _failed(self, event: Failed) -> None:
        from ..errors import GpubootError

        self.failures += 1
        if event.path in self.known:
            self._advance(event.path, self.known[event.path])
        exc = event.error if isinstance(event.error, BaseException) else GpubootError(shown(str(event.error)))
        self.progress.clear()
        error_line(self.err, exc)
        self._print_plain()

    def _loaded(self, info: Any, rank: Optional[int]) -> None:
        self.progress.status("decoding")
        if not self.talk or (self.loaded_said and not self.verbose):
            return
        self.loaded_said = True
        mode = f"batch {info.batch_size}" if info.batched else "sequential"
        who = f"worker {rank}: " if rank is not None else ""
        line = f"gpuboot: {who}{info.device}/{info.compute_type}, {mode}, {info.cpu_threads} thread(s)"
        if self.verbose:
            line += f": {info.reason}"
        self.progress.write(line, self.err)

    def _advance(self, path: str, seconds: float) -> None:
        """One bar over every file: each file counts up to its length, never past it."""
        known = self.known.get(path, 0.0)
        if seconds > known:  # the header under-stated it (or had no length): the total grows with it
            self.known[path] = seconds
            self.progress.set_total(sum(self.known.values()))
        self.done_s[path] = max(self.done_s.get(path, 0.0), min(seconds, self.known[path]))
        self.progress.update(sum(self.done_s.values()))

    def _live(self, path: str, segment: Any, final: bool) -> None:
        """The live lines are the subtitle cues: each printed once it is final (the speech after it has begun);
        with several files each line names its file."""
        from ..subtitles import make_subtitles
        from ..whisper.formats import timestamp

        segments = self.live_segments.setdefault(path, [])
        if segment is not None:
            segments.append(segment)
        cues = make_subtitles(segments, style=self.settings.style).cues
        shown_count = self.shown.get(path, 0)
        ready = cues if final else [c for c in cues if segments and c.speech_end < segments[-1].start]
        head = f"{shown(Path(path).name)}: " if self.many else ""
        for c in ready[shown_count:]:
            self.progress.write(f"{head}[{timestamp(c.start)} --> {timestamp(c.end)}] {c.text}", self.out)
        self.shown[path] = max(shown_count, len(ready))

    def _done(self, event: Done) -> None:
        from ..whisper.outsets import write_set
        from .inputs import write_problem

        path, rendered, item, plain, summary = event.path, event.rendered, event.item, event.plain, event.summary
        if self.live and path in self.live_segments:
            self._live(path, None, final=True)
        self.live_segments.pop(path, None)
        written: List[Path] = []
        if self.settings.formats:
            base = self.inputs[path].base if path in self.inputs else self.settings.out_dir / Path(path).stem
            try:
                written = write_set(base, rendered)
            except OSError as exc:
                self.failures += 1
                self.progress.clear()
                error_line(self.err, write_problem(exc, base.parent))
                return
        if self.talk:
            self.audio_done += event.audio_s
            pace = (time.perf_counter() - self.started) / self.audio_done if self.audio_done else None
            rtf = f"run RTF {pace:.3f}" if pace is not None else "no audio"
            line = f"gpuboot: {shown(path)}: {event.audio_s:.1f} s audio, {event.words} words, {rtf}"
            if written:
                line += "; wrote " + ", ".join(shown(str(p)) for p in written)
            self.progress.write(line, self.err)
            if summary and (self.interactive or self.verbose):
                self.progress.write(f"gpuboot: {shown(path)}: {summary}", self.err)
        if item is not None:
            self.items[path] = item
        self.plain[path] = plain
        self._print_plain()

    def _print_plain(self) -> None:
        """Plain text on stdout (no files, no ``--json``, no live lines), in input order as files end."""
        if self.live or self.settings.formats or self.args.json:
            return
        while self.printed < len(self.paths) and self.paths[self.printed] in self.ended:
            self.out.write(self.plain.get(self.paths[self.printed], ""))
            self.printed += 1

    def finish(self) -> int:
        self.progress.close()
        if self.args.json:
            items = [self.items[p] for p in self.paths if p in self.items]
            doc: Any = items[0] if len(items) == 1 and len(self.paths) == 1 else items
            json.dump(doc, self.out, indent=2, ensure_ascii=False)
            self.out.write("\n")
        return 1 if self.failures else 0

    def interrupted(self, exc: BaseException) -> int:
        from .terminal import Terminated

        self.progress.close(complete=False)
        done = sum(1 for p in self.paths if p in self.plain)
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        self.err.write(f"gpuboot: {what}: {done} of {len(self.paths)} file(s) done; no partial file was left: "
                       "rerun with --skip-existing to finish the rest\n")
        return 143 if isinstance(exc, Terminated) else 130
