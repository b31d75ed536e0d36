"""One ``gpuboot transcribe`` job: its settings, and one file transcribed and rendered.

Shared by every runner (``runners.py``: this process, worker processes, Ray
actors); ``Settings`` is picklable, so a worker gets it whole.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

__all__ = ["Settings", "FileRun", "file_result", "transcribe_one", "json_item", "plain_text", "finished"]


class Settings:
    """What every file of one ``gpuboot transcribe`` run shares (picklable: workers get it)."""

    def __init__(self, args: argparse.Namespace) -> None:
        from ..whisper.formats import FORMATS, needs_cues

        if args.beam_size < 1:
            raise ValueError(f"--beam-size must be at least 1, not {args.beam_size}")
        self.formats: List[str] = []
        if args.output_format or args.output_dir:
            self.formats = list(FORMATS) if args.output_format in (None, "all") else [args.output_format]
        self.out_dir: Path = args.output_dir or Path(".")
        cues_wanted = needs_cues(self.formats) or bool(args.json)
        words = cues_wanted if args.word_timestamps is None else bool(args.word_timestamps)
        self.options: Dict[str, Any] = {"beam_size": args.beam_size, "language": args.language,
                                        "word_timestamps": words}
        if args.vad_filter is not None:
            self.options["vad_filter"] = args.vad_filter
        from .style_args import style_of

        self.style = style_of(args)
        self.cues = cues_wanted
        self.model: Optional[str] = args.model
        self.device: str = args.device
        self.compute_type: str = args.compute_type
        self.batched: Any = "auto" if args.batch_size != 1 else False
        self.batch_size: Any = args.batch_size
        self.json: bool = bool(args.json)

    def load(self, **kwargs: Any) -> Any:
        from ..whisper.load import load_whisper
        from ..whisper.models import embedded_model

        return load_whisper(self.model or embedded_model() or "small", device=self.device,  # type: ignore[arg-type]
                            compute_type=self.compute_type, batched=self.batched,  # type: ignore[arg-type]
                            batch_size=self.batch_size, **kwargs)


class FileRun:
    """One file transcribed: iterate it for the segments as they are decoded, then ``result()``.

    ``more`` joins the JSON's facts (a worker's rank and device)."""

    def __init__(self, model: Any, path: str, samples: Any, settings: Settings,
                 more: Optional[Dict[str, Any]] = None) -> None:
        self.model, self.path, self.samples, self.settings, self.more = model, path, samples, settings, more
        self.segments: List[Any] = []
        self._tinfo: Any = None
        self._t0 = 0.0
        self._elapsed = 0.0

    def __iter__(self) -> Iterator[Any]:
        from ..whisper.decoding import transcribe

        self._t0 = time.perf_counter()
        stream, self._tinfo = transcribe(self.model, self.samples, **self.settings.options)
        for seg in stream:
            self.segments.append(seg)
            yield seg
        self._elapsed = time.perf_counter() - self._t0

    def result(self) -> Tuple[List[Any], Dict[str, Any], Dict[str, str], Any]:
        """``(segments, extra, rendered outputs, subtitles)`` once every segment was read (``file_result``)."""
        return file_result(self.model, self.path, self.segments, self._tinfo, self._elapsed, self.settings,
                           self.more)


def file_result(model: Any, path: str, segments: List[Any], tinfo: Any, elapsed: float, settings: Settings,
                more: Optional[Dict[str, Any]] = None) -> Tuple[List[Any], Dict[str, Any], Dict[str, str], Any]:
    """One file's ``(segments, extra, rendered outputs, subtitles)``: the subtitles
    (``subtitles.make_subtitles``: the cues of every cue format, the JSON and the report) when cues are
    written, else ``None``; ``elapsed`` (s) is the decoding time the JSON reports."""
    from ..subtitles import make_subtitles
    from ..whisper.formats import render_outputs
    from ..whisper.load import load_info

    extra = {**_extra(path, tinfo, load_info(model), elapsed), **(more or {})}
    subs = make_subtitles(segments, tinfo, style=settings.style) if settings.cues else None
    if subs is not None:
        extra["subtitles"] = subs.report.to_dict()
    rendered = render_outputs(segments, settings.formats, extra, subs)
    return segments, extra, rendered, subs


def transcribe_one(model: Any, path: str, samples: Any, settings: Settings,
                   more: Optional[Dict[str, Any]] = None) -> Tuple[List[Any], Dict[str, Any], Dict[str, str], Any]:
    """One file at once: ``FileRun`` read to the end."""
    run = FileRun(model, path, samples, settings, more)
    for _ in run:
        pass
    return run.result()


def json_item(segments: Sequence[Any], extra: Dict[str, Any], subs: Any) -> Dict[str, Any]:
    """``--json``'s item for one file: the text, the subtitle cues (with words; the segments when no cues were
    made), the run's facts and the subtitles' conformance report."""
    from ..whisper.formats import segment_dict, transcript_text

    cues = subs.to_dicts() if subs is not None else [segment_dict(i, s) for i, s in enumerate(segments)]
    return {"text": transcript_text(segments), "segments": cues, **extra}


def finished(path: str, segments: Sequence[Any], extra: Dict[str, Any], rendered: Dict[str, str], subs: Any,
             settings: Settings) -> Tuple[Any, ...]:
    """The ``done`` event of one file: its outputs, ``--json`` item, plain text and the subtitles' summary line."""
    item = json_item(segments, extra, subs) if settings.json else None
    summary = subs.report.summary() if subs is not None else None
    return ("done", path, rendered, item, plain_text(segments), summary)


def plain_text(segments: Sequence[Any]) -> str:
    """The transcript as plain lines, one per segment (stdout without ``--json`` or files)."""
    return "".join(" ".join(s.text.split()) + "\n" for s in segments)


def _extra(path: str, tinfo: Any, info: Any, elapsed: float) -> Dict[str, Any]:
    from .inputs import shown

    duration = float(tinfo.duration)
    return {
        "audio": shown(str(path)),
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
        "trail": [{"device": a.device, "cuda_ordinal": a.cuda_ordinal, "compute_type": a.compute_type,
                            "ok": a.ok, "error": a.error, "elapsed_ms": round(a.elapsed_ms, 1)} for a in info.trail],
        "timings_ms": {"load": round(info.load_ms, 1), "probe": round(info.probe_ms, 1),
                       "transcribe": round(elapsed * 1e3, 1)},
        "real_time_factor": round(elapsed / duration, 4) if duration else None,
    }
