"""WhisperLive's websocket protocol, as its 0.10.0 client and server speak it (``whisper_live/client.py``,
``server.py``, ``backend/base.py``): the options message, the audio frames, and every message the server sends.

A session, client first::

    -> {"uid": "5c1e...", "language": "en", "task": "transcribe", "model": "small", "use_vad": true, ...}
    <- {"uid": "5c1e...", "message": "SERVER_READY", "backend": "faster_whisper"}
    -> <binary: float32 little-endian samples, 16 kHz mono>   (any length; WhisperLive's client sends 4096)
    <- {"uid": "5c1e...", "segments": [{"start": "0.000", "end": "2.180", "text": "...", "completed": true},
                                        {"start": "2.900", "end": "3.400", "text": "...", "completed": false}]}
    -> END_OF_AUDIO                                           (binary, as WhisperLive's client sends it, or text)
    <- {"uid": "5c1e...", "segments": [... every segment completed ...]}   then the server closes (1000)

Refusals and notices: ``{"uid", "status": "WAIT", "message": minutes}`` (the server is full; then it closes),
``{"uid", "status": "ERROR", "message": text}`` (then it closes), ``{"uid", "status": "WARNING", "message":
text}``, ``{"uid", "message": "DISCONNECT"}`` (the server ends the session: shutdown, connection time), and
``{"uid", "language": code, "language_prob": p}``.  WhisperLive's client ignores any message without its
``uid`` and keeps a completed segment only when the backend is ``"faster_whisper"`` and the segment starts at
or after the end of the last one it kept (``Client.process_segments``).

Everything here is pure: options are validated into a ``ClientOptions`` value or a ``ProtocolError`` whose
message is the one line the client is sent; frames become float32 samples or a ``ProtocolError``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ..base.record import Record

__all__ = ["ProtocolError", "ClientOptions", "OPTIONS", "parse_options", "decode_frame", "is_end_of_audio",
           "ready", "wait", "error", "warning", "disconnect", "language", "segments", "BACKEND",
           "END_OF_AUDIO", "SAMPLE_RATE"]

#: What ``SERVER_READY`` names: gpuboot decodes with faster-whisper's ``WhisperModel``, and WhisperLive's
#: client keeps completed segments only from a ``"faster_whisper"`` backend (``Client.process_segments``).
BACKEND = "faster_whisper"
END_OF_AUDIO = "END_OF_AUDIO"
#: The protocol's one sample rate (WhisperLive ``ServeClientBase.RATE``), Hz.
SAMPLE_RATE = 16000
#: Float samples past this magnitude are not float PCM (int16 bytes read as float32 give 1e+04..1e+38).
MAX_FLOAT_SAMPLE = 4.0
MAX_UID = 256
MAX_TEXT_OPTION = 4096


class ProtocolError(ValueError):
    """What a client sent breaks the protocol; ``str(exc)`` is the one line it is sent (status ``ERROR``),
    ``uid`` the client's id where the options message named one."""

    def __init__(self, message: str, uid: Optional[str] = None) -> None:
        super().__init__(message)
        self.uid = uid


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ProtocolError(f"option {name!r} must be true or false, not {json.dumps(value)}")
    return value


def _whole(low: int, high: int) -> Callable[[str, Any], int]:
    def parse(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ProtocolError(f"option {name!r} must be a whole number from {low} to {high}, "
                                f"not {json.dumps(value)}")
        return value
    return parse


def _fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ProtocolError(f"option {name!r} must be a number from 0 to 1, not {json.dumps(value)}")
    return float(value)


def _text(name: str, value: Any) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT_OPTION:
        raise ProtocolError(f"option {name!r} must be a string of at most {MAX_TEXT_OPTION} characters or null")
    return value


def _choice(*allowed: str) -> Callable[[str, Any], str]:
    def parse(name: str, value: Any) -> str:
        if value not in allowed:
            raise ProtocolError(f"option {name!r} must be one of {', '.join(map(json.dumps, allowed))}, "
                                f"not {json.dumps(value)}")
        return str(value)
    return parse


_LANGUAGE = re.compile(r"^[a-z]{2,3}$|^yue$|^haw$")


def _language_code(name: str, value: Any) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not _LANGUAGE.match(value):
        raise ProtocolError(f"option {name!r} must be a language code such as \"en\" or null (detect), "
                            f"not {json.dumps(value)}")
    return value


def _anything(name: str, value: Any) -> Any:
    return value


class Option(Record):
    """One field of the options message: its parser, its default (WhisperLive ``Client.__init__``) and what
    gpuboot does with it."""

    name: str
    parse: Callable[[str, Any], Any]
    default: Any
    served: str


#: Every options field WhisperLive 0.10.0's client sends (``Client.on_open``) and ``audio_format``, which its
#: server reads; unknown fields are ignored, as WhisperLive's server ignores them.
OPTIONS: Tuple[Option, ...] = (
    Option(name="language", parse=_language_code, default=None, served="the stream's language; null: detected"),
    Option(name="task", parse=_choice("transcribe", "translate"), default="transcribe",
           served="transcribe; translate gets a WARNING and is transcribed"),
    Option(name="model", parse=_text, default=None, served="not used: every client shares the server's model"),
    Option(name="use_vad", parse=_bool, default=True,
           served="not used: the live stream always skips silence with its VAD"),
    Option(name="send_last_n_segments", parse=_whole(1, 1000), default=10,
           served="how many completed segments each update repeats"),
    Option(name="no_speech_thresh", parse=_fraction, default=0.45,
           served="not used: words are final by agreement of consecutive hypotheses"),
    Option(name="clip_audio", parse=_bool, default=False, served="not used: the stream bounds its own buffer"),
    Option(name="same_output_threshold", parse=_whole(0, 10_000), default=10,
           served="not used: words are final by agreement of consecutive hypotheses"),
    Option(name="audio_format", parse=_choice("float32", "int16", "uint8"), default="float32",
           served="how binary frames are read"),
    Option(name="word_timestamps", parse=_bool, default=False, served="segments carry their words"),
    Option(name="initial_prompt", parse=_text, default=None,
           served="not used: the stream's own confirmed text is the prompt"),
    Option(name="hotwords", parse=_text, default=None, served="not used"),
    Option(name="vad_parameters", parse=_anything, default=None, served="not used"),
    Option(name="enable_translation", parse=_bool, default=False, served="refused with a WARNING"),
    Option(name="target_language", parse=_anything, default="fr", served="not used"),
    Option(name="enable_diarization", parse=_bool, default=False, served="refused with a WARNING"),
    Option(name="max_speakers", parse=_anything, default=10, served="not used"),
    Option(name="known_speakers", parse=_anything, default=None, served="not used"),
)


class ClientOptions(Record):
    """A client's validated options message (WhisperLive's field names and defaults).

    Attributes:
        uid: the client's id, echoed in every message (WhisperLive's client drops messages without it).
        language: an ISO 639 code, or ``None`` to detect.
        send_last_n_segments: completed segments repeated in each update (1-1000).
        audio_format: how binary frames are read: ``"float32"`` (WhisperLive's client), ``"int16"``, ``"uint8"``.
        word_timestamps: segments carry ``words`` (``word``, ``start``, ``end`` in s, ``probability``).
        warnings: one line per option asked for that gpuboot does not serve (sent as ``WARNING``).
    """

    uid: str
    language: Optional[str] = None
    task: str = "transcribe"
    send_last_n_segments: int = 10
    audio_format: str = "float32"
    word_timestamps: bool = False
    warnings: Tuple[str, ...] = ()


def parse_options(text: Any) -> ClientOptions:
    """The first message of a session (a JSON object, sent as text) as ``ClientOptions``.

    Raises:
        ProtocolError: not text, not a JSON object, no ``uid`` string, or a field of the wrong type.
    """
    if not isinstance(text, str):
        raise ProtocolError("the first message must be the JSON options object (text), not audio: send "
                            "{\"uid\": ..., \"language\": ...} first")
    try:
        raw = json.loads(text)
    except ValueError:
        raise ProtocolError("the first message is not JSON: send the options object "
                            "{\"uid\": ..., \"language\": ...} first") from None
    if not isinstance(raw, dict):
        raise ProtocolError(f"the options message must be a JSON object, not {type(raw).__name__}")
    uid = raw.get("uid")
    if not isinstance(uid, str) or not 0 < len(uid) <= MAX_UID:
        raise ProtocolError(f"the options message needs \"uid\": a string of 1 to {MAX_UID} characters")
    values: Dict[str, Any] = {}
    for option in OPTIONS:
        value = raw.get(option.name, option.default)
        try:
            values[option.name] = option.default if value is None and option.default is not None \
                else option.parse(option.name, value)
        except ProtocolError as exc:
            raise ProtocolError(str(exc), uid) from None
    warnings: List[str] = []
    if values["task"] == "translate":
        warnings.append("task \"translate\" is not served by gpuboot; transcribing")
    for name, what in (("enable_translation", "translation"), ("enable_diarization", "diarization")):
        if values[name]:
            warnings.append(f"{what} is not served by gpuboot; transcribing only")
    return ClientOptions(uid=uid, language=values["language"], task="transcribe",
                         send_last_n_segments=values["send_last_n_segments"], audio_format=values["audio_format"],
                         word_timestamps=values["word_timestamps"], warnings=tuple(warnings))


def is_end_of_audio(frame: Any) -> bool:
    """``END_OF_AUDIO``, as bytes (WhisperLive's client sends it as a binary frame) or as text."""
    return bool(frame == END_OF_AUDIO or frame == END_OF_AUDIO.encode())


_WIDTH = {"float32": 4, "int16": 2, "uint8": 1}


def decode_frame(frame: Any, audio_format: str) -> Any:
    """A binary audio frame as a 1-D float32 numpy array of 16 kHz samples in [-1, 1] (WhisperLive
    ``TranscriptionServer.get_audio_from_websocket``: int16 / 32768, (uint8 - 128) / 128).

    Raises:
        ProtocolError: a text frame, a length that is not a whole number of samples, or float32 samples that
            are not audio (NaN, infinite, or past +-``MAX_FLOAT_SAMPLE``: int16 PCM sent as float32 looks so).
    """
    import numpy as np

    if isinstance(frame, str):
        raise ProtocolError(f"unexpected text message {frame[:40]!r}: after the options, send binary audio "
                            f"frames and then END_OF_AUDIO")
    width = _WIDTH[audio_format]
    if len(frame) % width:
        raise ProtocolError(f"an audio frame of {len(frame)} bytes is not a whole number of {audio_format} "
                            f"samples ({width} bytes each)")
    if audio_format == "int16":
        return np.frombuffer(frame, dtype="<i2").astype(np.float32) / np.float32(32768.0)
    if audio_format == "uint8":
        return (np.frombuffer(frame, dtype=np.uint8).astype(np.float32) - np.float32(128.0)) / np.float32(128.0)
    samples = np.frombuffer(frame, dtype="<f4")
    if samples.size:
        with np.errstate(invalid="ignore"):
            peak = float(np.max(np.abs(samples)))
        if not np.isfinite(peak) or peak > MAX_FLOAT_SAMPLE:
            raise ProtocolError(f"an audio frame is not float32 PCM in [-1, 1] (peak {peak:.3g}): send 16 kHz "
                                f"mono float32 samples, or set \"audio_format\": \"int16\" in the options")
    return samples.astype(np.float32, copy=True)


def _message(uid: Optional[str], **fields: Any) -> str:
    return json.dumps({"uid": uid, **fields}, ensure_ascii=False)


def ready(uid: str) -> str:
    """``SERVER_READY``: the client may send audio."""
    return _message(uid, message="SERVER_READY", backend=BACKEND)


def wait(uid: str, minutes: float) -> str:
    """``WAIT``: the server is full; ``minutes`` until a slot is expected (WhisperLive's unit)."""
    return _message(uid, status="WAIT", message=round(max(0.0, minutes), 2))


def error(uid: Optional[str], text: str) -> str:
    """``ERROR``: the one line a client that broke the protocol gets before the server closes."""
    return _message(uid, status="ERROR", message=text)


def warning(uid: str, text: str) -> str:
    return _message(uid, status="WARNING", message=text)


def disconnect(uid: str) -> str:
    """``DISCONNECT``: the server ends the session (WhisperLive's client stops sending)."""
    return _message(uid, message="DISCONNECT")


def language(uid: str, code: str, probability: Optional[float]) -> str:
    """The language detected (``probability`` ``None`` where the decoder gives none)."""
    return _message(uid, language=code, language_prob=None if probability is None else round(probability, 4))


def segments(uid: str, items: Sequence[Mapping[str, Any]]) -> str:
    """A transcript update: the last completed segments, then the open one (``completed: false``)."""
    return _message(uid, segments=list(items))
