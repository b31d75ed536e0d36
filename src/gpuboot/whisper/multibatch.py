"""Many files, full batches: the speech of several recordings packed into 30 s windows, decoded in batches, and
each word put back in its own file.

faster-whisper's ``BatchedInferencePipeline`` batches the 30 s windows of ONE
recording, and the Whisper encoder always reads a whole 30 s window: a folder
of 3-10 s clips (voice notes, call-centre snippets) runs one mostly-padding
window per clip and one window per batch (faster-whisper #1330, PR #1359).
Here the speech of every file is found as in that pipeline -- Silero VAD
(``get_speech_timestamps``, the pipeline's ``min_silence_duration_ms=160``
and ``max_speech_duration_s`` = the window) -- and the speech pieces, in
input order, are packed into windows of at most 30 s whatever file they come
from, as the pipeline's ``collect_chunks`` packs the pieces of one file
(VAD pads each piece with ``speech_pad_ms`` of its own silence, so files
never touch).  Batches of ``batch_size`` windows go through the pipeline's
own ``forward`` (encoder, beam search, word alignment) with word timings on;
each word goes back to the piece its midpoint falls in, onto that file's
timeline, and a file's segments are the runs of its words in each window.
Measured (docs/benchmarks.md "Many short files"): 240 clips of 3-10 s, CPU,
tiny.en, each arm a whole process -- 2.27x the files/hour of a loop over the
files with ``BatchedInferencePipeline(batch_size=16)`` in int8, mean WER
0.222 vs 0.333.  One recording alone gets the pipeline's own words and
timings: window offsets and the last word's end are carried per language as
the pipeline carries them, and times are rounded to 10 ms as its
``restore_speech_timestamps`` rounds them.

Options and their defaults are the pipeline's
(``BatchedInferencePipeline.transcribe``'s signature); as there, windows are
decoded without the previous window's text and without timestamp tokens.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple

from ..base import deps as _deps
from ..base.log import log
from .audio import SAMPLE_RATE
from .decoding import is_out_of_memory
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


#: A piece of speech at least this long (VAD's 2 x 0.4 s padding included) that got no word in a window shared by
#: several files is decoded again with only its file's missed pieces: a window packed full of speech can end its
#: text early (tiny.en, five 6 s clips in one window: the fourth lost a sentence, the fifth everything).  A window
#: of one file is left as the pipeline leaves it, so one recording gets ``gpuboot.transcribe``'s words.
RETRY_MIN_S = 1.0

def transcribe_many(model: Any, audios: Iterable[Tuple[Any, Any]], *, batch_size: int = 8,
                    on_progress: Optional[Progress] = None, **options: Any
                    ) -> Iterator[Tuple[Any, List[Any], Any]]:
    """Transcribe several recordings with their speech packed into shared 30 s windows, decoded in batches.

    Args:
        model: a faster-whisper ``WhisperModel`` (``load_whisper``'s).
        audios: ``(key, samples)`` pairs, read as needed: 16 kHz mono float32 samples (``audio.samples_of``);
            keys are returned as given.
        batch_size: windows per batch (each up to 30 s of speech from any files).  An out-of-memory error
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
    packer = _Packer(model, batch_size, options)
    for key, samples in audios:
        yield from packer.add(key, samples_of(samples))  # a path, a file object or PCM, as the docstring says
    yield from packer.finish()


class _Packer:
    """The windows in flight, per language: open (filling), ready (closed, their features computed), and the
    per-language clock the pipeline keeps for one recording (the packed speech decoded so far -- each window's
    offset -- and the end of the last word, its word-timing fix-up after a pause), so that a single recording
    gets exactly the pipeline's own timings."""

    def __init__(self, model: Any, batch_size: int, options: Dict[str, Any]) -> None:
        from faster_whisper.vad import VadOptions

        args = _defaults()
        unknown = [k for k in options if k not in args]
        if unknown:
            raise ValueError(f"unknown transcription option(s) for batched decoding: {', '.join(sorted(unknown))}")
        args.update(options)
        self.model, self.args, self.size = model, args, batch_size
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
        self.ready: Dict[str, List[Window]] = {}
        self.clocks: Dict[str, List[float]] = {}
        self.serial = 0
        self.pending: Dict[Tuple[int, File], List[Any]] = {}  # (window, file) -> its segments there, awaiting a retry

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

    def add(self, key: Any, samples: Any) -> Iterator[Step]:
        """One recording's speech into the windows of its language; full windows are decoded as they fill."""
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
        for clip in clips:
            yield from self._pack(file, samples, int(clip["start"]), int(clip["end"]))
        file.complete_input = True
        if not clips:
            yield Step(key, duration, [], self.info(file, self.setup(language)[2]), [])
            return
        yield from self.drain(language, False)

    def _pack(self, file: File, samples: Any, start: int, end: int) -> Iterator[Step]:
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
        for language in list(self.ready):
            yield from self.drain(language, True)

    def features(self, window: Window) -> None:
        import numpy as np
        from faster_whisper.audio import pad_or_trim

        window.audio = np.concatenate(window.parts)
        window.features = pad_or_trim(self.model.feature_extractor(window.audio)[..., :-1])
        window.parts = []

    def close(self, language: str) -> None:
        window = self.open_windows.pop(language, None)
        if window is not None:
            self.features(window)
            self.ready.setdefault(language, []).append(window)

    def drain(self, language: str, everything: bool) -> Iterator[Step]:
        queue = self.ready.get(language, [])
        while len(queue) >= self.size or (everything and queue):
            batch, queue[:] = queue[:self.size], queue[self.size:]
            yield from self.decode(language, batch)

    def decode(self, language: str, windows: List[Window]) -> Iterator[Step]:
        tok, opts, reported = self.setup(language)
        clock = self.clocks.setdefault(language, [0.0, 0.0])
        for window in windows:
            window.offset = clock[0]
            clock[0] += window.samples / SAMPLE_RATE
        size = [self.size]
        outputs = _forward(self.pipeline, windows, tok, opts, size, clock)
        self.size = size[0]
        touched: List[File] = []
        for window, output in zip(windows, outputs):
            self.settle(language, window, split(window, output, reported, tok))
            window.audio = None
            touched += [file for file in dict.fromkeys(piece.file for piece in window.pieces) if file not in touched]
        for file in touched:
            new = file.newly_final()
            if file.done:
                yield Step(file.key, file.duration, new, self.info(file, reported), file.segments)
            else:
                yield Step(file.key, file.seconds_done(), new, None)

    def settle(self, language: str, window: Window, found: Dict[File, List[Any]]) -> None:
        """A decoded window's segments to its files; a file's pieces that got no word go to a second try."""
        if window.retry_of is not None:
            file = window.pieces[0].file
            again = self.pending.pop((window.retry_of, file), []) + found.get(file, [])
            file.results[window.retry_of] = sorted(again, key=lambda seg: seg.start)
            return
        missed: Dict[File, List[Any]] = {}
        shared = len({piece.file for piece in window.pieces}) > 1  # one file's own window: as the pipeline has it
        for i, piece in enumerate(window.pieces):
            if shared and i not in window.heard and piece.end - piece.at >= RETRY_MIN_S:
                missed.setdefault(piece.file, []).append(piece)
        for piece in window.pieces:
            file = piece.file
            if file in missed and (window.serial, file) not in self.pending:
                self.pending[(window.serial, file)] = found.get(file, [])
                retry = window.again(self.next_serial(), missed[file])
                self.features(retry)
                self.ready.setdefault(language, []).insert(0, retry)  # decoded in the next batch
                log.debug("%s: %d piece(s) got no words in a shared window; decoding them again alone",
                          file.key, len(missed[file]))
            elif file not in missed:
                file.results[window.serial] = found.get(file, [])

    def info(self, file: File, reported: Any) -> Any:
        from faster_whisper.transcribe import TranscriptionInfo

        return TranscriptionInfo(language=file.language, language_probability=file.probability,
                                 duration=file.duration, duration_after_vad=file.speech,
                                 transcription_options=reported, vad_options=self.vad,
                                 all_language_probs=file.all_probs)


def _forward(pipeline: Any, windows: List[Window], tok: Any, opts: Any, size: List[int],
             clock: List[float]) -> List[Any]:
    """``pipeline.forward`` over ``windows``, halving the batch on out-of-memory errors (``size[0]`` keeps the
    smaller size for the batches after); ``clock[1]`` carries the pipeline's last word end."""
    import numpy as np

    outputs: List[Any] = []
    start = 0
    while start < len(windows):
        part = windows[start:start + size[0]]
        metadata = [{"offset": w.offset, "duration": w.samples / SAMPLE_RATE, "segments": []} for w in part]
        pipeline.last_speech_timestamp = clock[1]
        try:
            outputs.extend(pipeline.forward(np.stack([w.features for w in part]), tok, metadata, opts))
        except Exception as exc:
            if not is_out_of_memory(exc) or size[0] == 1:
                raise
            log.warning("out of memory at batch %d (%s); retrying at batch %d", size[0], exc, size[0] // 2)
            size[0] //= 2
            continue
        clock[1] = pipeline.last_speech_timestamp
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
