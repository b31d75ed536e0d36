"""One stream's transcript state (``streaming.transcript.Transcript``) with the model's answers given as values:
what a step asks the model for: its audio's prompt.  The model itself is met in
tests/test_live.py; here a ``Hypothesis`` stands for its answer, in the shape ``decode.Decoder`` returns."""

from __future__ import annotations

from typing import List

import pytest

np = pytest.importorskip("numpy")

from gpuboot.streaming.decode import Hypothesis  # noqa: E402
from gpuboot.streaming.records import LiveWord  # noqa: E402
from gpuboot.streaming.transcript import RATE, Transcript  # noqa: E402

SENTENCE = " We are met on a great battlefield of that war. We have come to dedicate a portion of that field."


def words_over(seconds: float) -> List[LiveWord]:
    """SENTENCE's words spread evenly over ``seconds`` from the buffer's start."""
    tokens = [" " + t for t in SENTENCE.split()]
    each = seconds / len(tokens)
    return [LiveWord(start=i * each, end=(i + 1) * each - 0.02, word=t, probability=0.9) for i, t in enumerate(tokens)]


def step(transcript: Transcript, seconds: float, hyp_seconds: float) -> tuple:
    transcript.take(np.zeros(int(seconds * RATE), dtype=np.float32))
    got = transcript.request(0.5, finishing=False)
    assert got is not None
    final, request = got
    return request, transcript.apply(final, request, Hypothesis(words_over(hyp_seconds), "en", True))


def test_a_buffer_after_a_pause_has_no_prompt_and_one_cut_inside_speech_has_the_words_before_it() -> None:
    t = Transcript(language="en", min_silence=0.5, max_buffer=5.0, vad=False)
    request, _ = step(t, 4.0, 4.0)
    assert request.prompt == ""  # the stream's first utterance
    request, (confirmed, _) = step(t, 2.0, 6.0)  # 6 s > max_buffer: cut after the last confirmed sentence end
    assert confirmed and request.prompt == ""
    assert t.offset > 0, "the buffer was not cut"
    request, _ = step(t, 1.0, 2.0)
    assert "war." in request.prompt and request.prompt.strip().startswith("We")  # goes on from the cut
    final, request = t.request(0.5, finishing=True) or (None, None)
    assert final is True
    t.apply(final, request, Hypothesis([], "en", True))  # the utterance ends: committed whole
    request, _ = step(t, 1.0, 1.0)
    assert request.prompt == ""  # a new utterance after it starts without the earlier sentences
