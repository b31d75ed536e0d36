"""Many files, full batches: each recording's speech packed into its own windows, the windows of many recordings
decoded in batches, and each word put back on its recording's timeline.

faster-whisper's ``BatchedInferencePipeline`` batches the 30 s windows of ONE recording, and pads every window
to 30 s: a folder of 3-10 s clips runs one mostly-padding window per clip and one window per batch
(faster-whisper #1330, PR #1359).  Here the speech of every file is found as in that pipeline -- Silero VAD
(``get_speech_timestamps``, ``min_silence_duration_ms=160``, ``max_speech_duration_s`` = the window) -- and a
file's pieces are packed into windows of at most 30 s as the pipeline's ``collect_chunks`` packs them; a window
is encoded at its own length (``encoder_frames``), and full batches of windows of one length, from any files, go
through the pipeline's own ``forward`` (encoder, beam search, word alignment) with word timings on.  A window
holds one file's speech and its length is its own, so a file's words and timings never depend on the other
files of the run, their order, the batch size or the worker that runs it.  Each file keeps the pipeline's clock
(window offsets, the last word's end) and times are rounded to 10 ms as its ``restore_speech_timestamps``
rounds them.  Measured: docs/benchmarks.md "Many short files".

Options and their defaults are the pipeline's (``BatchedInferencePipeline.transcribe``'s signature); as there,
windows are decoded without the previous window's text and without timestamp tokens.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple

from ..base import deps as _deps
from ..base.log import log
from .audio import SAMPLE_RATE
from .model_memory import is_out_of_memory
from .packing import File, Window, split

__all__ = ["transcribe_many", "steps", "Step"]

Progress = Callable[[Any, float], None]


class Step(NamedTuple):
    """One step of ``steps``: after a batch, for one file touched by it.

    Attributes:
        key: the file's key as given.
        seconds: audio seconds of that file done (every piece up to there decoded), s.
        segments: that file's segments newly final, in order (those of its earlier windows all given).
        info: faster-whisper ``TranscriptionInfo`` once the file is complete, else ``None``.
        whole: every segment of the file (ids from 1) once it is complete, else ``None``.
    """

    key: Any
    seconds: float
    segments: List[Any]
    info: Any
    whole: Optional[List[Any]] = None


def _defaults() -> Dict[str, Any]:
    fw = _deps.faster_whisper()
    sig = inspect.signature(fw.BatchedInferencePipeline.transcribe)
    return {name: p.default for name, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}


def _options(tokenizer: Any, args: Dict[str, Any], words: bool) -> Any:
    """faster-whisper's ``TranscriptionOptions`` as ``BatchedInferencePipeline.transcribe`` builds them."""
    from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens

    temperature = args["temperature"]
    return TranscriptionOptions(
        beam_size=args["beam_size"], best_of=args["best_of"], patience=args["patience"],
        length_penalty=args["length_penalty"], repetition_penalty=args["repetition_penalty"],
        no_repeat_ngram_size=args["no_repeat_ngram_size"], log_prob_threshold=args["log_prob_threshold"],
        no_speech_threshold=args["no_speech_threshold"],
        compression_ratio_threshold=args["compression_ratio_threshold"],
        temperatures=temperature[:1] if isinstance(temperature, (list, tuple)) else [temperature],
        initial_prompt=args["initial_prompt"], prefix=args["prefix"], suppress_blank=args["suppress_blank"],
        suppress_tokens=(get_suppressed_tokens(tokenizer, args["suppress_tokens"]) if args["suppress_tokens"]
                         else args["suppress_tokens"]),
        prepend_punctuations=args["prepend_punctuations"], append_punctuations=args["append_punctuations"],
        max_new_tokens=args["max_new_tokens"], hotwords=args["hotwords"], word_timestamps=words,
        hallucination_silence_threshold=None, condition_on_previous_text=False, clip_timestamps=[],
        prompt_reset_on_temperature=0.5, multilingual=args["multilingual"],
        without_timestamps=args["without_timestamps"], max_initial_timestamp=0.0)


#: A window's encoder input: its speech plus ``ENCODER_PAD_S`` of silence, rounded up to ``ENCODER_STEP_S``, at
#: most Whisper's 30 s (CTranslate2's Whisper encoder takes fewer than 3000 frames; its cost is about in proportion:
#: tiny.en int8, 2-core x86-64 CPU, 0.33 s at 3000 frames, 0.054 s at 1000).  The length depends on the window
#: alone, and a batch holds windows of one length, so a file's words never depend on the other files.  Measured
#: (docs/benchmarks.md "Many short files": 240 clips of 3-10 s, each in its own window): a padded 30 s window
#: 189.8 s and mean WER 0.329 (faster-whisper's own words for each clip); 10 s steps with 2 s of silence 84.7 s and
#: WER 0.293; 5 s steps with 2 s 84.3 s and 0.294; 10 s steps with 5 s 114.7 s and 0.299.
ENCODER_STEP_S = 10.0
ENCODER_PAD_S = 2.0


def encoder_frames(frames: int) -> int:
    """The encoder input, in 10 ms frames, of a window of ``frames`` frames of speech (``ENCODER_STEP_S``)."""
    step = round(ENCODER_STEP_S * 100)
    return min(3000, -(-(frames + round(ENCODER_PAD_S * 100)) // step) * step)


def transcribe_many(model: Any, audios: Iterable[Tuple[Any, Any]], *, batch_size: int = 8,
                    on_progress: Optional[Progress] = None, **options: Any
                    ) -> Iterator[Tuple[Any, List[Any], Any]]:
    """Transcribe several recordings, each one's speech packed into its own windows, decoded in batches.

    Args:
        model: a faster-whisper ``WhisperModel`` (``load_whisper``'s).
        audios: ``(key, samples)`` pairs, read as needed: 16 kHz mono float32 samples (``audio.samples_of``);
            keys are returned as given.
        batch_size: windows per batch (each up to 30 s of one file's speech).  An out-of-memory error
            halves it and retries the same windows (logged).
        on_progress: called ``(key, audio seconds of that file done)`` after each batch that touched it.
        options: ``BatchedInferencePipeline.transcribe``'s (``language``, ``beam_size``,
            ``word_timestamps``, ``vad_parameters``...).

    Yields:
        ``(key, segments, info)`` for each file once its last window is decoded (about input order):
        faster-whisper ``Segment`` s on the file's own timeline (seconds from its start) and its
        ``TranscriptionInfo``.  A file without speech gets no segments.

    Raises:
        ValueError: ``batch_size`` below 1, an option the batched pipeline does not take, or audio longer
            than a window with ``vad_filter=False``.
        RuntimeError: CTranslate2's own errors; out of memory at batch 1.
    """
    for step in steps(model, audios, batch_size=batch_size, **options):
        if on_progress is not None:
            on_progress(step.key, step.seconds)
        if step.info is not None:
            yield step.key, step.whole or [], step.info


def steps(model: Any, audios: Iterable[Tuple[Any, Any]], *, batch_size: int = 8, **options: Any) -> Iterator[Step]:
    """``transcribe_many``'s work as ``Step`` s: progress and newly final segments per file after each batch
    (the command's progress bar and live lines), ``info`` set when a file is complete.  Arguments and errors as
    for ``transcribe_many``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    from .audio import samples_of
    from .load import expect_model

    expect_model(model)
    packer = Packer(model, batch_size, options)
    for key, samples in audios:
        yield from packer.add(key, samples_of(samples))  # a path, a file object or PCM, as the docstring says
    yield from packer.finish()


class Packer:
    """The windows in flight, per language: open (filling), ready (closed, their features computed), and the
    per-language clock the pipeline keeps for one recording (the packed speech decoded so far -- each window's
    offset -- and the end of the last word, its word-timing fix-up after a pause), so that a single recording
    gets exactly the pipeline's own timings."""

    def __init__(self, model: Any, batch_size: int, options: Dict[str, Any], ramp: bool = False) -> None:
        """``ramp``: batches of 1, 2, 4, ... windows up to ``batch_size`` (the first words out early)."""
        from faster_whisper.vad import VadOptions

        args = _defaults()
        unknown = [k for k in options if k not in args]
        if unknown:
            raise ValueError(f"unknown transcription option(s) for batched decoding: {', '.join(sorted(unknown))}")
        args.update(options)
        self.model, self.args, self.size = model, args, batch_size
        self.grow = 1 if ramp else batch_size  # the next batch's size at most
        self.pipeline = _deps.faster_whisper().BatchedInferencePipeline(model)
        self.chunk_length = args["chunk_length"] or model.feature_extractor.chunk_length
        self.window_samples = int(self.chunk_length * SAMPLE_RATE)
        vad = args["vad_parameters"]
        if isinstance(vad, dict):
            vad = VadOptions(**{k: v for k, v in vad.items() if k != "max_speech_duration_s"},
                             max_speech_duration_s=self.chunk_length)
        elif vad is None:
            vad = VadOptions(max_speech_duration_s=self.chunk_length, min_silence_duration_ms=160)
        self.vad = vad
        self.per_language: Dict[str, Tuple[Any, Any, Any]] = {}
        self.open_windows: Dict[str, Window] = {}
        self.ready: Dict[Tuple[str, int], List[Window]] = {}  # (language, encoder frames) -> windows
        self.serial = 0

    def setup(self, language: str) -> Tuple[Any, Any, Any]:
        """(tokenizer, options decoded with -- word timings on --, options reported)."""
        from faster_whisper.tokenizer import Tokenizer

        if language not in self.per_language:
            args = self.args
            tok = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, task=args["task"],
                            language=language)
            self.per_language[language] = (tok, _options(tok, args, True), _options(tok, args, args["word_timestamps"]))
        return self.per_language[language]

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial - 1

    def prepare(self, key: Any, samples: Any) -> Tuple[File, List[Dict[str, int]]]:
        """One recording's ``File`` (its language, duration and speech) and its speech pieces (VAD)."""
        from faster_whisper.vad import get_speech_timestamps

        duration = len(samples) / SAMPLE_RATE
        if self.args["vad_filter"]:
            clips = get_speech_timestamps(samples, self.vad)
        elif len(samples) <= self.window_samples:
            clips = [{"start": 0, "end": len(samples)}]
        else:
            raise ValueError(f"{key}: batched decoding of audio over {self.chunk_length} s needs vad_filter=True")
        language, probability, all_probs = _language(self.model, self.args, samples, clips)
        file = File(key, duration, language, probability, all_probs)
        file.speech = sum(c["end"] - c["start"] for c in clips) / SAMPLE_RATE
        return file, clips

    def add(self, key: Any, samples: Any, prepared: Optional[Tuple[File, List[Dict[str, int]]]] = None
            ) -> Iterator[Step]:
        """One recording's speech (``prepared``: its ``prepare``) into its windows; full batches are decoded as
        they fill."""
        file, clips = prepared or self.prepare(key, samples)
        duration, language = file.duration, file.language
        for clip in clips:
            yield from self._pack(file, samples, int(clip["start"]), int(clip["end"]))
        file.complete_input = True
        if not clips:
            yield Step(key, duration, [], self.info(file, self.setup(language)[2]), [])
            return
        self.close(language)  # the file's last window is its own: the next file starts a new one
        yield from self.drain(language, False)

    def _pack(self, file: File, samples: Any, start: int, end: int) -> Iterator[Step]:
        """A piece of ``file``'s speech into its own open window (a window holds one file's pieces only, so a
        file's words never depend on the other files of the run)."""
        while start < end:  # a piece longer than a window (no VAD) is cut at the window
            language = file.language
            window = self.open_windows.get(language)
            if window is not None and window.samples + min(end - start, self.window_samples) > self.window_samples:
                self.close(language)
                window = None
                yield from self.drain(language, False)  # a long file is decoded while it is still being read
            if window is None:
                window = self.open_windows[language] = Window(self.next_serial())
            take = min(end - start, self.window_samples - window.samples)
            window.add(file, samples[start:start + take], start)
            start += take

    def finish(self) -> Iterator[Step]:
        for language in list(self.open_windows):
            self.close(language)
        for language in dict.fromkeys(k[0] for k in self.ready):
            yield from self.drain(language, True)

    def features(self, window: Window) -> None:
        """The window's log-mel features, zero-padded to ``encoder_frames`` of its own speech."""
        import numpy as np
        from faster_whisper.audio import pad_or_trim

        window.audio = np.concatenate(window.parts)
        features = self.model.feature_extractor(window.audio)[..., :-1]
        window.features = pad_or_trim(features, encoder_frames(features.shape[-1]))
        window.parts = []

    def close(self, language: str) -> None:
        window = self.open_windows.pop(language, None)
        if window is not None:
            self.features(window)
            self.ready.setdefault((language, window.features.shape[-1]), []).append(window)

    def drain(self, language: str, everything: bool) -> Iterator[Step]:
        """Full batches of ``language``'s windows (every window with ``everything``), a batch holding windows of
        one encoder length (each window's own: see ``encoder_frames``)."""
        for key in [k for k in self.ready if k[0] == language]:
            queue = self.ready[key]
            while len(queue) >= min(self.size, self.grow) or (everything and queue):
                take = min(self.size, self.grow)
                batch, queue[:] = queue[:take], queue[take:]
                self.grow *= 2
                yield from self.decode(language, batch)

    def decode(self, language: str, windows: List[Window]) -> Iterator[Step]:
        tok, opts, reported = self.setup(language)
        for window in windows:  # each file's own clock, as the pipeline keeps it for one recording
            clock = window.pieces[0].file.clock
            window.offset = clock[0]
            clock[0] += window.samples / SAMPLE_RATE
        size = [self.size]
        outputs = _forward(self.pipeline, windows, tok, opts, size)
        self.size = size[0]
        touched: List[File] = []
        for window, output in zip(windows, outputs):
            file = window.pieces[0].file
            file.results[window.serial] = split(window, output, reported, tok).get(file, [])
            window.audio = None
            if file not in touched:
                touched.append(file)
        for file in touched:
            new = file.newly_final()
            if file.done:
                yield Step(file.key, file.duration, new, self.info(file, reported), file.segments)
            else:
                yield Step(file.key, file.seconds_done(), new, None)

    def info(self, file: File, reported: Any) -> Any:
        from faster_whisper.transcribe import TranscriptionInfo

        return TranscriptionInfo(language=file.language, language_probability=file.probability,
                                 duration=file.duration, duration_after_vad=file.speech,
                                 transcription_options=reported, vad_options=self.vad,
                                 all_language_probs=file.all_probs)


def _forward(pipeline: Any, windows: List[Window], tok: Any, opts: Any, size: List[int]) -> List[Any]:
    """``pipeline.forward`` over ``windows``, halving the batch on out-of-memory errors (``size[0]`` keeps the
    smaller size for the batches after).  The pipeline's last word end (its word-timing fix-up after a pause) is
    set from the first window's file and carried by the pipeline through the batch; each file keeps its own."""
    import numpy as np

    outputs: List[Any] = []
    start = 0
    while start < len(windows):
        part = windows[start:start + size[0]]
        metadata = [{"offset": w.offset, "duration": w.samples / SAMPLE_RATE, "segments": []} for w in part]
        pipeline.last_speech_timestamp = part[0].pieces[0].file.clock[1]
        try:
            found = pipeline.forward(np.stack([w.features for w in part]), tok, metadata, opts)
        except Exception as exc:
            if not is_out_of_memory(exc) or size[0] == 1:
                raise
            log.warning("out of memory at batch %d (%s); retrying at batch %d", size[0], exc, size[0] // 2)
            size[0] //= 2
            continue
        for window, output in zip(part, found):
            clock = window.pieces[0].file.clock
            clock[1] = next((seg["end"] for seg in reversed(output) if seg.get("words")), clock[1])
        outputs.extend(found)
        start += len(part)
    return outputs


def _language(model: Any, args: Dict[str, Any], samples: Any, clips: List[Dict[str, Any]]
              ) -> Tuple[str, float, Any]:
    """The language: given, English for an English-only model, else detected on this file's speech."""
    import numpy as np

    if args["language"] is not None:
        return args["language"] if model.model.is_multilingual else "en", 1.0, None
    if not model.model.is_multilingual:
        return "en", 1.0, None
    if not clips:
        return "en", 0.0, None
    speech = np.concatenate([samples[int(c["start"]):int(c["end"])] for c in clips])
    features = model.feature_extractor(speech[: 30 * SAMPLE_RATE * max(1, args["language_detection_segments"])])
    return model.detect_language(features=features,  # type: ignore[no-any-return]
                                 language_detection_segments=args["language_detection_segments"],
                                 language_detection_threshold=args["language_detection_threshold"])
