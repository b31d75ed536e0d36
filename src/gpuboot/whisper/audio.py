"""Audio in: ``decode()`` (16 kHz mono float32 through PyAV) and ``verify_decoder()``, with truthful errors."""

from __future__ import annotations

import os
import stat
from typing import Any, List

from ..base import deps as _deps
from ..base.files import SPECIAL_FILES, special_kind
from ..errors import AudioError

__all__ = ["decode", "decode_bytes", "verify_decoder", "samples_of", "SAMPLE_RATE", "SPECIAL_FILES", "special_kind"]

#: Whisper's sample rate, Hz.
SAMPLE_RATE = 16000


_DECODER_OK: List[bool] = []


def _wav_bytes(seconds: float = 0.1, rate: int = 16000) -> bytes:
    """A valid 16-bit mono WAV of silence, built in memory."""
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return buf.getvalue()


def verify_decoder() -> None:
    """Decode 0.1 s of in-memory WAV through ``faster_whisper.decode_audio``
    (PyAV/FFmpeg), once per process.  The input is known good, so a failure is
    the installed libraries' fault, never the audio's.

    Raises:
        IncompatibleDependencyError: faster-whisper and av do not work together.
        MissingDependencyError, BrokenDependencyError: as for ``_deps.faster_whisper``.
    """
    if _DECODER_OK:
        return
    import io

    fw = _deps.faster_whisper()
    try:
        samples = fw.decode_audio(io.BytesIO(_wav_bytes()))
    except Exception as exc:
        raise _deps.decoder_conflict(exc) from None
    if len(samples) == 0:
        raise _deps.decoder_conflict(ValueError("decode_audio returned no samples for a valid WAV"))
    _DECODER_OK.append(True)


def decode(path: str) -> Any:
    """Decode ``path`` to 16 kHz mono float32 samples (a numpy array).

    Raises:
        AudioError: missing, a directory, a FIFO, device or socket (never opened), unreadable, a path the file
            system refuses (too long), or not audio FFmpeg can decode.
        IncompatibleDependencyError: decoding failed inside faster-whisper/av
            for a reason that is not the file (an API mismatch between versions).
        MissingDependencyError, BrokenDependencyError: faster-whisper (which
            decodes) cannot be imported.
    """
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise AudioError(f"audio file not found: {path}", "check the path") from None
    except OSError as exc:  # ENAMETOOLONG, ELOOP, EACCES on a parent directory
        raise AudioError(f"cannot use {_short(path)} as an audio path: {exc.strerror or exc}",
                         "pass a shorter path to an existing audio file") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(f"{path} is a directory, not an audio file", "pass an audio file (wav, mp3, flac, ...)")
    kind = special_kind(st.st_mode)
    if kind is not None:
        raise AudioError(f"{path} is {kind}, not an audio file",
                         "pass the recording itself (copy a stream to a file first)")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{path} is not readable (permission denied)",
                         "give this user read permission (chmod u+r) or copy the file")
    return _decoded(path, path)


def _decoded(source: Any, name: str) -> Any:
    """faster-whisper's ``decode_audio`` of ``source`` (a path or a binary file object), never empty."""
    fw = _deps.faster_whisper()
    try:
        samples = fw.decode_audio(source)
    except Exception as exc:
        raise _decode_failure(name, exc) from None
    if len(samples) == 0:
        raise AudioError(f"{name} holds no audio samples", "pass a non-empty recording")
    return samples


#: Integer sample formats and their full scale: PCM as WAV files and sound cards give it.
_FULL_SCALE = {"int16": 32768.0, "int32": 2147483648.0, "int8": 128.0}


def samples_of(audio: Any) -> Any:
    """What ``gpuboot.transcribe`` takes, as 16 kHz mono float32 samples: a path (``str`` or ``pathlib.Path``),
    a binary file object, or a 1-D array of samples at 16 kHz -- float32 as it is, float64 narrowed, int16 /
    int32 / int8 PCM scaled to -1..1, uint8 PCM centred first.

    Raises:
        AudioError: a path or file that cannot be decoded (``decode``); an array that is not one channel of
            samples (its shape named) or not a number type.
    """
    if isinstance(audio, (str, bytes, os.PathLike)):
        return decode(os.fsdecode(audio) if isinstance(audio, bytes) else os.fspath(audio))
    if hasattr(audio, "read"):
        return _decoded(audio, str(getattr(audio, "name", "the audio file object")))
    import numpy as np

    array = np.asarray(audio)
    if array.ndim != 1:
        raise AudioError(f"audio samples must be one channel (a 1-D array), not shape {tuple(array.shape)}",
                         "pass one channel: samples.mean(axis=1) for (frames, channels), or decode the file "
                         "with gpuboot (pass its path)")
    kind = array.dtype.name
    if kind == "float32":
        return array
    if kind in ("float64", "float16"):
        return array.astype(np.float32)
    if kind in _FULL_SCALE:
        return (array.astype(np.float32) / _FULL_SCALE[kind]).astype(np.float32)
    if kind == "uint8":
        return ((array.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    raise AudioError(f"audio samples of type {kind} are not sound samples",
                     "pass float32 samples at 16 kHz, int16 PCM, or a file path")


def decode_bytes(name: str, data: bytes) -> Any:
    """``decode`` for a file's bytes (sent to a Ray worker): ``name`` is only for the messages.

    Raises:
        AudioError: not audio FFmpeg can decode, or empty.
    """
    import io

    return _decoded(io.BytesIO(data), name)


def _short(path: str, limit: int = 80) -> str:
    return path if len(path) <= limit else f"{path[:limit // 2]}...{path[-limit // 2:]} ({len(path)} characters)"


def _decode_failure(path: str, exc: Exception) -> Exception:
    """AudioError when FFmpeg refused the file; IncompatibleDependencyError when
    the failure is a Python-level API mismatch between faster-whisper and av."""
    if isinstance(exc, (TypeError, AttributeError, NameError, ImportError)):
        return _deps.decoder_conflict(exc)
    if isinstance(exc, PermissionError):
        return AudioError(f"{path} is not readable ({exc.strerror or exc})",
                          "give this user read permission (chmod u+r) or copy the file")
    return AudioError(f"{path} could not be decoded as audio ({type(exc).__name__}: {exc})",
                      "pass an audio file FFmpeg can read (wav, mp3, flac, ogg, m4a)")
