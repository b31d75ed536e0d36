"""VAD gating for a live stream: Silero VAD (the ONNX model faster-whisper ships, ``faster_whisper.vad``) run on
each 512-sample frame as audio arrives, and a small state machine that says where speech starts and ends.

faster-whisper's ``SileroVADModel`` scores each 512-sample frame with the 64 samples before it as context;
here every new frame is scored with its own context (the frame before it goes in first and its score is
dropped), so a frame scores as it would in ``get_speech_timestamps`` over the whole recording.  Speech starts
at the first frame at or over ``threshold`` and ends where the score stayed under ``neg_threshold`` (threshold
- 0.15, as faster-whisper's ``VadOptions``) for ``min_silence`` seconds: the pause that lets the stream commit
the utterance without waiting for agreement.
"""

from __future__ import annotations

from typing import Any, List, NamedTuple, Optional

__all__ = ["SpeechGate", "Change", "FRAME", "THRESHOLD"]

#: Samples per Silero frame at 16 kHz (32 ms).
FRAME = 512
#: Silero's speech threshold (faster-whisper's ``VadOptions.threshold``).
THRESHOLD = 0.5
_CONTEXT = 64


class Change(NamedTuple):
    """Speech started (``speech=True``) or ended at ``sample`` (on the stream's 16 kHz timeline)."""

    speech: bool
    sample: int


class SpeechGate:
    """Streaming speech/silence decisions over one stream's 16 kHz samples.

    Args:
        min_silence: seconds under ``neg_threshold`` that end speech.
        threshold: score that starts speech.
    """

    def __init__(self, min_silence: float = 0.5, threshold: float = THRESHOLD) -> None:
        self.min_silence_frames = max(1, round(min_silence * 16000 / FRAME))
        self.threshold, self.neg_threshold = threshold, max(threshold - 0.15, 0.01)
        self.speaking = False
        self.frames = 0  # frames scored
        self._pending: Any = None  # samples not yet a whole frame
        self._last_frame: Any = None
        self._quiet = 0  # frames under neg_threshold since the last speech frame
        self._quiet_from = 0
        self._model: Any = None

    def push(self, samples: Any) -> List[Change]:
        """Score the whole frames ``samples`` completes; the speech starts and ends they hold, in order."""
        import numpy as np

        data = samples if self._pending is None else np.concatenate([self._pending, samples])
        whole = len(data) - len(data) % FRAME
        self._pending = data[whole:]
        if not whole:
            return []
        scores = self._score(data[:whole])
        changes: List[Change] = []
        for score in scores:
            change = self._step(float(score))
            if change is not None:
                changes.append(change)
            self.frames += 1
        return changes

    def _score(self, frames: Any) -> Any:
        import numpy as np

        if self._model is None:
            from faster_whisper.vad import get_vad_model

            self._model = get_vad_model()
        lead = self._last_frame if self._last_frame is not None else np.zeros(FRAME, dtype=np.float32)
        self._last_frame = frames[-FRAME:]
        scores = self._model(np.concatenate([lead, frames]).astype(np.float32, copy=False),
                             num_samples=FRAME, context_size_samples=_CONTEXT)
        return np.asarray(scores).reshape(-1)[1:]

    def _step(self, score: float) -> Optional[Change]:
        at = self.frames * FRAME
        if not self.speaking:
            if score >= self.threshold:
                self.speaking, self._quiet = True, 0
                return Change(True, at)
            return None
        if score >= self.threshold:
            self._quiet = 0
            return None
        if score < self.neg_threshold or self._quiet:
            if not self._quiet:
                self._quiet_from = at
            self._quiet += 1
            if self._quiet >= self.min_silence_frames:
                self.speaking, self._quiet = False, 0
                return Change(False, self._quiet_from)
        return None
