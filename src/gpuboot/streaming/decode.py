"""Many live buffers decoded in one batched call through the model: ``Decoder``.

One step is one encode of a ``[N, 80, frames]`` batch (each buffer's log-mel features, zero-padded to the
longest, as faster-whisper pads a window), one ``generate`` with one prompt per buffer (its stream's
confirmed text before the buffer, empty after a pause, then the start-of-transcript tokens and no-timestamps), and one
alignment for the word timings (faster-whisper's ``add_word_timestamps``: CTranslate2's ``align`` over the
cross-attention).  CTranslate2's Whisper encoder takes fewer than 3000 frames, so a step costs in
proportion to the buffer rather than to a padded 30 s window (tiny.en int8 on a 2-core x86-64 CPU: encode
0.33 s at 3000 frames, 0.054 s at 1000, 0.031 s at 600; the committed recording's words unchanged).
An out-of-memory error halves the batch and decodes the same buffers again: nothing is lost.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

from ..base.log import log
from ..whisper.model_memory import is_out_of_memory
from .records import LiveWord

__all__ = ["Request", "Hypothesis", "Decoder", "MAX_FRAMES", "PROMPT_TOKENS"]

#: The encoder's longest input: 30 s of 10 ms frames.
MAX_FRAMES = 3000
#: Confirmed-text tokens given as the prompt (Whisper's own limit is max_length // 2 - 1 = 223).
PROMPT_TOKENS = 128
#: Tokens allowed per second of buffer, and on top: a bound on a hypothesis that loops ("the the the ...").
TOKENS_PER_SECOND, TOKENS_EXTRA = 8, 16
#: Whisper's no-speech rule (openai-whisper ``transcribe``: both conditions).
NO_SPEECH_PROB, LOGPROB_THRESHOLD = 0.6, -1.0
#: A hypothesis whose text compresses better than this repeats itself (Whisper's compression_ratio_threshold).
COMPRESSION_LIMIT = 2.4
#: faster-whisper's ``transcribe`` defaults for punctuation attached to words.
PREPEND, APPEND = "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、"


class Request(NamedTuple):
    """One stream's buffer to decode: ``audio`` (16 kHz float32), ``prompt`` (the confirmed text before the
    buffer), ``language`` (``None``: detect, for a multilingual model)."""

    audio: Any
    prompt: str
    language: Optional[str]


class Hypothesis(NamedTuple):
    """A decoded buffer: ``words`` with times in seconds from the buffer's start, the ``language`` decoded in,
    and whether the text is usable (``False``: no speech by Whisper's rule, or a repeating loop)."""

    words: List[LiveWord]
    language: str
    usable: bool


def _previous(tok: Any, texts: Sequence[str]) -> List[List[int]]:
    """The prompt tokens of each text, all of one length: CTranslate2's batched ``generate`` needs the
    start-of-transcript token at one position in every prompt.  Each keeps its last tokens (at most
    ``PROMPT_TOKENS``, the shortest one's length); ``decode`` never batches a text with an empty one."""
    encoded = [tok.encode(" " + t.strip())[-PROMPT_TOKENS:] if t.strip() else [] for t in texts]
    size = min(len(e) for e in encoded)
    return [e[len(e) - size:] for e in encoded]


def _unlooped(tokens: List[int], shortest: int = 3) -> List[int]:
    """``tokens`` cut where a run of at least ``shortest`` tokens repeats right after itself: a decoder that
    reached the end of its audio and started over ("The quick fox. The quick fox. The quick ...")."""
    for i in range(2 * shortest, len(tokens) + 1):
        for p in range(shortest, i // 2 + 1):
            if tokens[i - p:i] == tokens[i - 2 * p:i - p]:
                return tokens[:i - p]
    return tokens


class Decoder:
    """Decodes batches of ``Request`` s through one faster-whisper ``WhisperModel``.

    Args:
        model: the ``WhisperModel`` (``load_whisper``'s).
        beam_size: beam search width (1: greedy).
        pad_s: seconds of silence after the longest buffer of a batch (the audio is padded with zeros before its
            features are computed, as openai-whisper pads a window).
        window_s: the shortest input the encoder is given, seconds (30: Whisper's trained window).
        cap: largest batch; halved for good on an out-of-memory error.
    """

    def __init__(self, model: Any, *, beam_size: int = 1, pad_s: float = 2.0, window_s: float = 30.0,
                 cap: int = 8) -> None:
        self.model, self.beam_size, self.cap = model, beam_size, max(1, cap)
        self.pad_samples = round(pad_s * 16000)
        self.window_samples = round(min(30.0, window_s) * 16000)
        self._tokenizers: Dict[Optional[str], Any] = {}
        self._suppress: Optional[List[int]] = None
        self.multilingual = bool(model.model.is_multilingual)

    def tokenizer(self, language: Optional[str]) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        key = language if self.multilingual else "en"
        if key not in self._tokenizers:
            self._tokenizers[key] = Tokenizer(self.model.hf_tokenizer, self.multilingual, task="transcribe",
                                              language=key)
        return self._tokenizers[key]

    def language(self, audio: Any) -> str:
        """The language of ``audio`` (a multilingual model's detection; ``"en"`` for an English-only one)."""
        if not self.multilingual:
            return "en"
        found = self.model.detect_language(audio=audio)
        return str(found[0])

    def decode(self, requests: Sequence[Request], window_s: Optional[float] = None) -> List[Hypothesis]:
        """Every request decoded (those without a language get theirs detected first), one language per batch
        and at most ``cap`` buffers in one; an out-of-memory error halves ``cap`` and the same requests are
        decoded again (logged).  Buffers with a prompt and without one go in separate batches (``_previous``).
        ``window_s`` overrides the shortest encoder input for this call.

        Raises:
            RuntimeError: CTranslate2's own errors; out of memory at batch 1.
        """
        todo = [r if r.language or not self.multilingual else r._replace(language=self.language(r.audio))
                for r in requests]
        if not self.multilingual:
            todo = [r._replace(language="en") for r in todo]
        found: Dict[int, Hypothesis] = {}
        for key in dict.fromkeys((r.language, bool(r.prompt.strip())) for r in todo):
            index = [i for i, r in enumerate(todo) if (r.language, bool(r.prompt.strip())) == key]
            window = self.window_samples if window_s is None else round(min(30.0, window_s) * 16000)
            for i, hyp in zip(index, self._capped([todo[i] for i in index], window)):
                found[i] = hyp
        return [found[i] for i in range(len(todo))]

    def _capped(self, requests: Sequence[Request], window: int) -> List[Hypothesis]:
        out: List[Hypothesis] = []
        start = 0
        while start < len(requests):
            part = requests[start:start + self.cap]
            try:
                out.extend(self._batch(part, window))
            except Exception as exc:
                if not is_out_of_memory(exc) or self.cap == 1:
                    raise
                log.warning("live: out of memory at batch %d (%s); decoding at batch %d", len(part), exc,
                            max(1, len(part) // 2))
                self.cap = max(1, len(part) // 2)
                continue
            start += len(part)
        return out

    def _batch(self, requests: Sequence[Request], window: int) -> List[Hypothesis]:
        import numpy as np

        longest = max(len(r.audio) for r in requests)
        size = min(MAX_FRAMES * 160, max(longest + self.pad_samples, window))
        audio = np.zeros((len(requests), size), dtype=np.float32)
        for i, r in enumerate(requests):
            audio[i, :min(len(r.audio), size)] = r.audio[:size]
        batch = np.stack([self.model.feature_extractor(row)[..., :-1] for row in audio])
        frames = [min(MAX_FRAMES, len(r.audio) // 160) for r in requests]
        t0 = time.perf_counter()
        encoded = self.model.encode(batch.astype(np.float32, copy=False))
        lang = str(requests[0].language)
        tok = self.tokenizer(lang)
        prompts, limits = [], []
        for r, previous in zip(requests, _previous(tok, [r.prompt for r in requests])):
            prompt = self.model.get_prompt(tok, previous, without_timestamps=True)
            prompts.append(prompt)
            limits.append(len(prompt) + int(len(r.audio) / 16000 * TOKENS_PER_SECOND) + TOKENS_EXTRA)
        results = self.model.model.generate(
            encoded, prompts, beam_size=self.beam_size, max_length=min(self.model.max_length, max(limits)),
            suppress_blank=True, suppress_tokens=self._suppressed(tok), return_scores=True,
            return_no_speech_prob=True)
        hyps = self._words(requests, tok, results, encoded, frames, limits, prompts)
        log.debug("live: batch of %d, %d frames, %.3f s", len(requests), batch.shape[-1], time.perf_counter() - t0)
        return hyps

    def _suppressed(self, tok: Any) -> List[int]:
        if self._suppress is None:
            from faster_whisper.transcribe import get_suppressed_tokens

            self._suppress = list(get_suppressed_tokens(tok, [-1]))
        return self._suppress

    def _words(self, requests: Sequence[Request], tok: Any, results: Any, encoded: Any,
               frames: List[int], limits: List[int], prompts: List[List[int]]) -> List[Hypothesis]:
        """Each result's words timed by one alignment over the batch (faster-whisper's ``add_word_timestamps``;
        a buffer without usable text is aligned as empty and gets no words)."""
        from faster_whisper.transcribe import get_compression_ratio

        usable: List[bool] = []
        segments: List[List[Dict[str, Any]]] = []
        for r, result, limit, prompt in zip(requests, results, limits, prompts):
            tokens = _unlooped([t for t in result.sequences_ids[0] if t < tok.eot])
            text = tok.decode(tokens)
            logprob = result.scores[0] * len(tokens) / (len(tokens) + 1) if tokens else -10.0
            silent = result.no_speech_prob > NO_SPEECH_PROB and logprob < LOGPROB_THRESHOLD
            looping = get_compression_ratio(text) > COMPRESSION_LIMIT or len(prompt) + len(tokens) >= limit
            usable.append(bool(tokens) and not silent and not looping)
            segments.append([{"tokens": tokens if usable[-1] else [], "seek": 0, "start": 0.0,
                              "end": len(r.audio) / 16000}])
        if any(usable):
            self.model.add_word_timestamps(segments, tok, encoded, frames, PREPEND, APPEND, 0.0)
        out = []
        for i, seg in enumerate(segments):
            words = [LiveWord(start=float(w["start"]), end=float(w["end"]), word=str(w["word"]),
                              probability=float(w["probability"])) for w in seg[0].get("words") or []]
            out.append(Hypothesis(words=words, language=str(requests[i].language), usable=usable[i] and bool(words)))
        return out
