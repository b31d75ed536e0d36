"""One ``gpuboot transcribe`` job: its ``Settings``, and a model's ``Work``: its files transcribed and rendered
into events (``events.py``).

Shared by every runner (``runners.py``: this process, worker processes, Ray
actors); ``Settings`` is picklable, so a worker gets it whole.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from .events import Done, Event, Failed, Progress, Segment

__all__ = ["Settings", "Work", "plain_text"]


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

    def work(self, model: Any, more: Optional[Dict[str, Any]] = None) -> Work:
        """The ``Work`` of ``model`` over this run's files (``more``: facts every file's JSON gets)."""
        return Work(self, model, more)

    def load(self, **kwargs: Any) -> Any:
        from ..whisper.load import load_whisper
        from ..whisper.models import embedded_model

        return load_whisper(self.model or embedded_model() or "small", device=self.device,  # type: ignore[arg-type]
                            compute_type=self.compute_type, batched=self.batched,  # type: ignore[arg-type]
                            batch_size=self.batch_size, **kwargs)


class Work:
    """One model's share of a run: its files decoded packed (each file's speech in its own windows, batched
    together) or one by one, each finished into a ``Done`` event (its outputs rendered, its ``--json`` item).
    ``more`` joins the JSON's facts (a worker's rank and device)."""

    def __init__(self, settings: Settings, model: Any, more: Optional[Dict[str, Any]] = None) -> None:
        from ..whisper.load import load_info

        self.settings, self.model, self.more = settings, model, more or {}
        self.info = load_info(model)
        #: Batched decoding with VAD: each file's speech is packed into its own windows, batched together.
        self.packs = bool(self.info.batched) and settings.options.get("vad_filter", True) is not False

    def run(self, audios: Iterator[Tuple[str, Any]]) -> Iterator[Event]:
        """The events of ``audios`` (``(path, samples)``): packed or one by one."""
        return self._packed(audios) if self.packs else self._one_by_one(audios)

    def _packed(self, audios: Iterator[Tuple[str, Any]]) -> Iterator[Event]:
        from ..whisper.decoding import recheck_batch
        from ..whisper.multibatch import steps

        size = recheck_batch(self.info, self.info.batch_size) if self.info.device == "cuda" else self.info.batch_size
        options = {k: v for k, v in self.settings.options.items() if k != "vad_filter"}
        started = time.perf_counter()
        for step in steps(self.model, audios, batch_size=size, **options):
            for seg in step.segments:
                yield Segment(path=step.key, segment=seg)
            yield Progress(path=step.key, seconds=step.seconds)
            if step.info is not None:  # the elapsed time is shared by the files of a batch: the run's pace so far
                yield self.done(step.key, step.whole or [], step.info, time.perf_counter() - started)

    def _one_by_one(self, audios: Iterator[Tuple[str, Any]]) -> Iterator[Event]:
        """Sequential decoding (``--batch-size 1``, ``--no-vad-filter``): each file alone, a segment at a time; one
        bad file does not stop the others."""
        from ..whisper.decoding import transcribe

        for path, samples in audios:
            t0 = time.perf_counter()
            segments: List[Any] = []
            try:
                stream, tinfo = transcribe(self.model, samples, **self.settings.options)
                for seg in stream:
                    segments.append(seg)
                    yield Segment(path=path, segment=seg)
                    yield Progress(path=path, seconds=float(seg.end))
                done = self.done(path, segments, tinfo, time.perf_counter() - t0)
            except Exception as exc:
                yield Failed(path=path, error=f"{path}: {type(exc).__name__}: {exc}")
                continue
            yield done

    def done(self, path: str, segments: List[Any], tinfo: Any, elapsed: float) -> Done:
        """One file's ``Done``: the subtitles (``subtitles.make_subtitles``: the cues of every cue format, the JSON
        and the report) when cues are written, its rendered outputs, its ``--json`` item and its plain text;
        ``elapsed`` (s) is the decoding time the JSON reports."""
        from ..subtitles import make_subtitles
        from ..whisper.formats import render_outputs, segment_dict, transcript_text

        settings = self.settings
        extra = {**_extra(path, tinfo, self.info, elapsed), **self.more}
        subs = make_subtitles(segments, tinfo, style=settings.style) if settings.cues else None
        if subs is not None:
            extra["subtitles"] = subs.report.to_dict()
        rendered = render_outputs(segments, settings.formats, extra, subs)
        item = None
        if settings.json:
            cues = subs.to_dicts() if subs is not None else [segment_dict(i, s) for i, s in enumerate(segments)]
            item = {"text": transcript_text(segments), "segments": cues, **extra}
        words = sum(len(s.words) if s.words else len(s.text.split()) for s in segments)
        return Done(path=path, rendered=rendered, item=item, plain=plain_text(segments),
                    summary=subs.report.summary() if subs is not None else None, audio_s=extra["duration_s"],
                    words=words)


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
