"""The live-transcription recording: 24 sentences spoken by espeak-ng with 0.8 s pauses, and when each word ends.

    python bench/live_recording.py [--out DIR]     # prints the WAV path, its length and word count

The sentences are the first 24 whole sentences of 12-32 words (a capital first, a full stop last) of
``long_recording.py``'s public-domain texts.  Each is spoken by libespeak-ng (the engine of the ``espeak-ng``
command, called through ``ctypes`` so that its word events come with the audio: ``espeakEVENT_WORD`` gives
each word's start in ms, speak_lib.h), voice en-us at 175 words per minute, and resampled from espeak's
22050 Hz to 16 kHz by soxr.  A word ends where its audio ends: the last sample above -50 dBFS before the
next word starts (or before the sentence's end).  The sentences follow one another with 0.8 s of silence
(0.5 s before the first).  Cached (not committed), keyed by a hash of the texts, voice, rate and espeak-ng
version: ``<cache>/live-<hash>.wav`` and ``.json`` (``{"sentences": [...], "words": [[start, end, word], ...]}``).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import hashlib
import json
import os
import re
import sys
import wave
from pathlib import Path
from typing import Any, Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from long_recording import _version, default_dir, paragraphs, sentences

RATE = 16000
VOICE, WPM = "en-us", 175
PAUSE_S, LEAD_S = 0.8, 0.5
COUNT = 24
#: A sample above this (-50 dBFS) is sound, for a word's end.
QUIET = 10 ** (-50 / 20)


def texts(count: int = COUNT) -> List[str]:
    """The first ``count`` whole sentences of 12-32 words of the public-domain texts."""
    out = [s for p in paragraphs() for s in sentences(p)
           if 12 <= len(s.split()) <= 32 and s[:1].isupper() and s.endswith(".")]
    return out[:count]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` (speak_lib.h, espeak-ng 1.51)."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_WORD, _SYNCHRONOUS, _CHARS_UTF8 = 1, 2, 1


class Speaker:
    """libespeak-ng in synchronous mode: ``speak(text) -> (22050 Hz int16 samples, word start ms)``."""

    def __init__(self, voice: str = VOICE, wpm: int = WPM) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        self.lib = ctypes.CDLL(name)
        self.rate = self.lib.espeak_Initialize(_SYNCHRONOUS, 0, None, 0)
        if self.rate <= 0:
            raise SystemExit("libespeak-ng failed to initialise: apt-get install espeak-ng")
        self.lib.espeak_SetVoiceByName(voice.encode())
        self.lib.espeak_SetParameter(1, wpm, 0)  # espeakRATE
        self._chunks: List[bytes] = []
        self._words: List[Tuple[int, int]] = []
        self._callback = _CALLBACK(self._collect)
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: Any, count: int, events: Any) -> int:
        if count > 0:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        i = 0
        while events[i].type != 0:
            if events[i].type == _WORD:
                self._words.append((events[i].audio_position, events[i].text_position))
            i += 1
        return 0

    def speak(self, text: str) -> Tuple[bytes, List[Tuple[int, int]]]:
        """22050 Hz int16 samples and, per word event, ``(audio position ms, text position from 1)``."""
        self._chunks, self._words = [], []
        data = text.encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, _CHARS_UTF8, None, None)
        return b"".join(self._chunks), list(self._words)


def _resampled(pcm: bytes, rate: int) -> Any:
    import numpy as np
    import soxr

    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    return soxr.resample(samples, rate, RATE, quality="HQ").astype(np.float32)


def _ends(audio: Any, starts: List[float]) -> List[float]:
    """Each word's end (s from the sentence's start): the last loud sample before the next word's start."""
    import numpy as np

    loud = np.flatnonzero(np.abs(audio) > QUIET)
    out = []
    for i, start in enumerate(starts):
        limit = round((starts[i + 1] if i + 1 < len(starts) else len(audio) / RATE) * RATE)
        before = loud[(loud < limit) & (loud >= round(start * RATE))]
        out.append(float(before[-1] + 1) / RATE if len(before) else start)
    return out


def _timed_words(sentence: str, events: List[Tuple[int, int]], audio: Any) -> List[Tuple[float, float, str]]:
    """Each word of ``sentence`` with its start and end (s).  espeak-ng sends one event per word it speaks
    as a unit; a word without its own event ("of the" said as one) shares its group's time, split by letters."""
    spans = [(m.start() + 1, m.group()) for m in re.finditer(r"\S+", sentence)]  # text positions count from 1
    kept: List[Tuple[int, int]] = []
    for ms, pos in events:  # espeak-ng 1.51 repeats an earlier position at a clause end: not a word
        if not kept or pos > kept[-1][1]:
            kept.append((ms, pos))
    events = kept
    starts = [ms / 1000 for ms, _ in events]
    ends = _ends(audio, starts)
    out: List[Tuple[float, float, str]] = []
    for k, (_ms, pos) in enumerate(events):
        upto = events[k + 1][1] if k + 1 < len(events) else len(sentence) + 2
        group = [w for p, w in spans if pos <= p < upto] or [w for p, w in spans if p <= pos][-1:]
        total = sum(len(w) for w in group)
        t, span = starts[k], ends[k] - starts[k]
        for w in group:
            out.append((t, t + span * len(w) / total, w))
            t += span * len(w) / total
    missing = [w for _p, w in spans][: len(out)] != [w for _s, _e, w in out]
    if missing or len(out) != len(spans):
        raise SystemExit(f"espeak-ng's word events do not cover {sentence!r} word for word")
    return out


def build(out_dir: Path) -> Tuple[Path, Dict[str, Any]]:
    """``(wav path, {"sentences", "words": [[start, end, word], ...]})``, built once and cached."""
    import numpy as np

    chosen = texts()
    key = hashlib.sha256(repr((chosen, VOICE, WPM, PAUSE_S, LEAD_S, _version())).encode()).hexdigest()[:12]
    wav_path, meta_path = out_dir / f"live-{key}.wav", out_dir / f"live-{key}.json"
    if wav_path.exists() and meta_path.exists():
        return wav_path, json.loads(meta_path.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    speaker = Speaker()
    parts = [np.zeros(round(LEAD_S * RATE), dtype=np.float32)]
    at = LEAD_S
    words: List[List[Any]] = []
    for sentence in chosen:
        pcm, events = speaker.speak(sentence)
        audio = _resampled(pcm, speaker.rate)
        for start, end, word in _timed_words(sentence, events, audio):
            words.append([round(at + start, 3), round(at + end, 3), re.sub(r"[^\w'-]", "", word)])
        parts += [audio, np.zeros(round(PAUSE_S * RATE), dtype=np.float32)]
        at += (len(audio) + round(PAUSE_S * RATE)) / RATE
    pcm16 = (np.clip(np.concatenate(parts), -1, 1) * 32767).astype("<i2").tobytes()
    tmp = wav_path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm16)
    os.replace(tmp, wav_path)
    meta = {"sentences": chosen, "words": words}
    meta_path.write_text(json.dumps(meta))
    return wav_path, meta


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=default_dir())
    args = ap.parse_args()
    wav_path, meta = build(args.out)
    with wave.open(str(wav_path)) as w:
        seconds = w.getnframes() / w.getframerate()
    print(f"{wav_path} ({seconds:.1f} s, {len(meta['sentences'])} sentences, {len(meta['words'])} words)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
