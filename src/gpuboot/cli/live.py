"""``gpuboot transcribe --live FILE|-``: one recording, or raw PCM on standard input, transcribed as it arrives.

``-`` reads raw PCM s16le, 16 kHz, mono from standard input (``arecord -f S16_LE -r 16000 -c 1 | gpuboot
transcribe --live -``, or ffmpeg's ``-f s16le -ar 16000 -ac 1 -``) until end of file.  A file is decoded
(PyAV) and fed as fast as the stream takes it, or at the pace of its own clock with ``--realtime``.  Each
subtitle cue is printed once it is final (``LiveStream.cues``); at the end the chosen formats are written
(``whisper.formats``, one set: ``whisper.outsets``) and one summary line gives the word latency p50/p95 and
the real-time factor.  Ctrl-C or SIGTERM stops reading, decodes what was read, writes the files and exits
130 or 143.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List, NamedTuple, Optional, TextIO

__all__ = ["add_arguments", "run", "CHUNK_S", "BACKLOG_S"]

#: Seconds of audio read or fed at a time.
CHUNK_S = 0.1
#: Seconds of audio a file run keeps queued ahead of the decoder (as fast as it decodes, bounded memory).
BACKLOG_S = 2.0
#: Seconds ``finish`` may take once the input ended (the stream decodes at most a few seconds then).
FINISH_S = 600.0


def add_arguments(t: argparse.ArgumentParser) -> None:
    """``--live`` and ``--realtime`` (``transcribe``'s other options apply: model, device, language, formats)."""
    t.add_argument("--live", action="store_true",
                   help="transcribe one input as a live stream: a file, or - for raw PCM s16le 16 kHz mono on "
                        "stdin; cues printed as they become final, latency and RTF in the summary")
    t.add_argument("--realtime", action="store_true",
                   help="with --live and a file: feed it at the pace of its own clock (default: as fast as it "
                        "decodes)")


class _Segment(NamedTuple):
    """A cue as the formats read a segment (``start``, ``end``, ``text``, ``words``)."""

    start: float
    end: float
    text: str
    words: Any = None


def _chunks_of_stdin(fd: int) -> Iterator[bytes]:
    """Standard input's bytes as they come, by ``os.read`` on its descriptor: no buffered reader's lock, so a
    read still blocked when the command ends cannot stall the interpreter's shutdown."""
    import os

    size = int(16000 * 2 * CHUNK_S)
    while True:
        data = os.read(fd, size)
        if not data:
            return
        yield data


def _chunks_of_samples(samples: Any, realtime: bool) -> Iterator[Any]:
    step = int(16000 * CHUNK_S)
    t0 = time.monotonic()
    for i, start in enumerate(range(0, len(samples), step)):
        if realtime:
            wait = t0 + (i + 1) * CHUNK_S - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        yield samples[start:start + step]


class _Feeder:
    """Feeds ``chunks`` into ``stream`` on a thread of its own (a read of stdin blocks); a file not ``paced``
    is kept at most ``BACKLOG_S`` ahead of the decoder."""

    def __init__(self, stream: Any, chunks: Iterator[Any], paced: bool) -> None:
        self.stream, self.chunks, self.paced = stream, chunks, paced
        self.ended, self.stopping = threading.Event(), threading.Event()
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, name="gpuboot-live-feed", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for chunk in self.chunks:
                if self.stopping.is_set():
                    return
                self.stream.feed(chunk)
                while not self.paced and self.stream.backlog > BACKLOG_S and not self.stopping.is_set():
                    self.stopping.wait(0.05)
        except Exception as exc:  # AudioError, a worker failure: the main thread raises it
            if not self.stopping.is_set():
                self.error = exc
        finally:
            self.ended.set()

    def stop(self) -> None:
        """No more feeding; waits for a file's feeder (a blocked read of stdin is left to end with the process)."""
        self.stopping.set()
        if self.paced:
            return
        self.thread.join(timeout=FINISH_S)


class _Printer:
    """Each settled cue once, as ``[start --> end] text`` on ``out``."""

    def __init__(self, out: TextIO) -> None:
        self.out, self.shown = out, 0

    def show(self, cues: Any) -> None:
        from ..whisper.formats import timestamp

        for cue in cues[self.shown:]:
            self.out.write(f"[{timestamp(cue.start)} --> {timestamp(cue.end)}] {cue.text}\n")
            self.out.flush()
        self.shown = max(self.shown, len(cues))


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run one live stream over ``args.audio[0]``; the exit code (0, or 130/143 when interrupted)."""
    from ..streaming import LivePool
    from .job import Settings
    from .terminal import Terminated

    if len(args.audio) != 1:
        raise ValueError("--live takes one input: a recording, or - for raw PCM s16le 16 kHz mono on stdin")
    source = args.audio[0]
    settings = Settings(args)
    samples = None
    if source != "-":  # a file that cannot be read is one error line before the model loads
        from ..whisper.audio import decode

        samples = decode(source)
    model = settings.load()
    changed = threading.Event()
    stream = LivePool(model, max_streams=1).open(language=args.language, style=settings.style,
                                                 on_events=lambda _s, _e: changed.set())
    printer = _Printer(out)
    chunks: Iterator[Any] = (_chunks_of_stdin(sys.stdin.fileno()) if samples is None
                             else _chunks_of_samples(samples, args.realtime))
    feeder = _Feeder(stream, chunks, paced=samples is None or args.realtime)
    code = 0
    try:
        while not feeder.ended.is_set():
            changed.wait(0.25)  # a decoded step, or a quarter second: SIGINT/SIGTERM land here at once
            changed.clear()
            printer.show(stream.cues)
    except KeyboardInterrupt as exc:
        code = 143 if isinstance(exc, Terminated) else 130
        err.write(f"gpuboot: {'terminated' if code == 143 else 'interrupted'}: decoding what was read\n")
    feeder.stop()
    if feeder.error is not None:
        raise feeder.error
    stream.finish(timeout=FINISH_S)
    printer.show(stream.cues)
    _write(args, settings, stream, source, err)
    lat = stream.latency
    err.write(f"gpuboot: live: {lat.words} final words, {lat.audio_s:.1f} s of audio, word latency p50 "
              f"{lat.p50:.2f} s / p95 {lat.p95:.2f} s (max {lat.max:.2f} s), RTF {lat.rtf:.3f}\n")
    stream.close()
    return code


def _write(args: argparse.Namespace, settings: Any, stream: Any, source: str, err: TextIO) -> Optional[List[Path]]:
    """The chosen formats of the whole set, written as one set (``outsets.write_set``)."""
    if not settings.formats:
        return None
    from ..whisper.formats import render_outputs
    from ..whisper.outsets import write_set
    from .inputs import shown

    subs = stream.subtitles
    segments = [_Segment(start=c.start, end=c.end, text=c.text) for c in subs.cues]
    lat = stream.latency
    extra = {"audio": "-" if source == "-" else shown(source), "language": stream.language,
             "duration_s": round(lat.audio_s, 3), "live": {"p50_s": round(lat.p50, 3), "p95_s": round(lat.p95, 3),
                                                         "max_s": round(lat.max, 3), "rtf": round(lat.rtf, 4),
                                                         "words": lat.words},
             "subtitles": subs.report.to_dict()}
    base = settings.out_dir / ("stdin" if source == "-" else (Path(source).stem or "audio"))
    written = write_set(base, render_outputs(segments, settings.formats, extra, subs))
    if not args.quiet:
        err.write("gpuboot: wrote " + ", ".join(shown(str(p)) for p in written) + "\n")
    return written
