"""One ``gpuboot transcribe`` job: its settings, one file transcribed and rendered, progress and error lines.

Shared by the single-process command (``_cli_transcribe.py``) and its workers
(``_cli_parallel.py``); ``Settings`` is picklable, so a worker gets it whole.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

from .errors import GpubootError, for_the_command_line
from .whisper.formats import FORMATS, outputs_complete

__all__ = ["Settings", "transcribe_one", "json_item", "pending", "error_line", "is_tty", "Progress"]


def is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
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


def error_line(err: TextIO, exc: GpubootError) -> None:
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
