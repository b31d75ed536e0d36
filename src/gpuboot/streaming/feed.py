"""Audio in, as a live stream takes it: chunks of any shape users have, made 16 kHz mono float32.

A chunk is a 1-D numpy array (float32, float64 or float16 samples in -1..1; int16, int32 or int8 PCM; uint8
PCM centred on 128) or ``bytes``/``bytearray``/``memoryview`` of raw PCM s16le mono.  Bytes need not come
in whole samples: an odd byte is kept for the next chunk (a socket read splits where it likes).  Other rates
than 16 kHz are resampled by soxr (libsoxr, the SoX resampler; ``soxr.ResampleStream``, "HQ" quality) as a
stream, so chunk edges leave no click and the output timeline stays exact.
"""

from __future__ import annotations

from typing import Any, Optional

from ..base import deps as _deps
from ..errors import AudioError
from ..whisper.audio import SAMPLE_RATE

__all__ = ["Feeder", "MAX_RATE", "MIN_RATE"]

#: Sample rates accepted, Hz (telephone 8 kHz to studio 384 kHz).
MIN_RATE, MAX_RATE = 4000, 384000

#: numpy dtype name -> full scale of its PCM integers.
_FULL_SCALE = {"int16": 32768.0, "int32": 2147483648.0, "int8": 128.0}
_FIX = "feed 1-D float32 samples in -1..1, int16 PCM, or raw s16le bytes (mono)"


def _rate(sample_rate: Any) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)) or sample_rate != int(sample_rate):
        raise AudioError(f"sample_rate must be a whole number of Hz, not {sample_rate!r}", "pass e.g. 16000")
    rate = int(sample_rate)
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"sample_rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz",
                         "pass the rate the audio was recorded at (16000, 44100, 48000, ...)")
    return rate


def _samples(chunk: Any, carry: bytes) -> Any:
    """``chunk`` as float32 samples at its own rate; returns ``(samples, bytes carried to the next chunk)``."""
    import numpy as np

    if isinstance(chunk, (bytes, bytearray, memoryview)):
        data = carry + bytes(chunk)
        whole = len(data) - len(data) % 2
        pcm = np.frombuffer(data[:whole], dtype="<i2")
        return (pcm.astype(np.float32) / 32768.0), data[whole:]
    if isinstance(chunk, str):
        raise AudioError("a live stream takes samples, not a path or text", _FIX)
    try:
        array = np.asarray(chunk)
    except Exception as exc:  # ragged lists and objects numpy cannot make an array of
        raise AudioError(f"audio is not an array of samples ({type(exc).__name__}: {exc})", _FIX) from None
    if array.ndim != 1:
        raise AudioError(f"audio chunks must be one channel (a 1-D array), not shape {tuple(array.shape)}",
                         "pass one channel: samples.mean(axis=1) for (frames, channels)")
    kind = array.dtype.name
    if kind in ("float32", "float64", "float16"):
        out = array.astype(np.float32, copy=False)
        if not np.isfinite(out).all():
            raise AudioError("audio samples must be finite numbers: the chunk holds NaN or infinity",
                             "check the capture or decoder that made it")
    elif kind in _FULL_SCALE:
        out = array.astype(np.float32) / np.float32(_FULL_SCALE[kind])
    elif kind == "uint8":
        out = (array.astype(np.float32) - 128.0) / 128.0
    else:
        raise AudioError(f"audio samples of type {kind} are not sound samples", _FIX)
    return out, carry


class Feeder:
    """One stream's audio converter: ``push(chunk, rate)`` -> 16 kHz float32 samples, ``flush()`` at the end.

    Not thread-safe: a stream calls it under its own lock.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        self.rate = _rate(sample_rate)
        self._carry = b""
        self._resampler: Any = None
        self._resampler_rate = 0

    def push(self, chunk: Any, sample_rate: Optional[int] = None) -> Any:
        """The next chunk as 16 kHz mono float32 samples (possibly fewer than given: soxr holds a few back).

        Raises:
            AudioError: not a 1-D array of sound samples nor PCM bytes, NaN or infinite samples, a bad rate.
            MissingDependencyError: another rate than 16 kHz without soxr installed (``pip install soxr``).
        """
        import numpy as np

        rate = self.rate if sample_rate is None else _rate(sample_rate)
        samples, self._carry = _samples(chunk, self._carry)
        if rate == SAMPLE_RATE and self._resampler is None:
            return samples
        tail = self._switch(rate)
        if self._resampler is None:
            return np.concatenate([tail, samples]) if len(tail) else samples
        out = self._resampler.resample_chunk(samples)
        return np.concatenate([tail, out]).astype(np.float32, copy=False) if len(tail) else out

    def flush(self) -> Any:
        """What the resampler still holds (the end of the stream), 16 kHz float32."""
        import numpy as np

        tail = self._switch(SAMPLE_RATE)
        return tail if len(tail) else np.zeros(0, dtype=np.float32)

    def _switch(self, rate: int) -> Any:
        """Make the resampler fit ``rate``; returns what the previous one still held."""
        import numpy as np

        tail = np.zeros(0, dtype=np.float32)
        if self._resampler is not None and self._resampler_rate != rate:
            tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            self._resampler, self._resampler_rate = None, 0
        if rate != SAMPLE_RATE and self._resampler is None:
            soxr = _deps.import_optional("soxr", "soxr", "pip install 'gpuboot[live]'")
            self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
            self._resampler_rate = rate
        return tail
