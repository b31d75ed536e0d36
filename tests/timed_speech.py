"""A recording whose sentence start times are known: espeak-ng speaks each sentence alone, and the sentences are
joined with pauses, so every start is exact (the subtitle measurements of tests/test_cues.py).

Cached under ``~/.cache/gpuboot-tests/timed`` by a hash of the sentences, voice and espeak-ng's version.
espeak-ng and sox are Debian packages (``scripts/test`` installs them when it runs as root).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import wave
from pathlib import Path
from typing import List, Tuple

from helpers import require_real

RATE = 16000
#: Public-domain sentences (the Gettysburg Address, 1863; the US Declaration of Independence, 1776): short ones,
#: and long ones that no single cue of 7 s and 2 x 42 characters can hold.
SENTENCES = (
    "Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived in "
    "liberty, and dedicated to the proposition that all men are created equal.",
    "Now we are engaged in a great civil war, testing whether that nation, or any nation so conceived and so "
    "dedicated, can long endure.",
    "We are met on a great battlefield of that war.",
    "We have come to dedicate a portion of that field, as a final resting place for those who here gave their "
    "lives that that nation might live.",
    "It is altogether fitting and proper that we should do this.",
    "The world will little note, nor long remember what we say here, but it can never forget what they did here.",
    "He has refused his assent to laws, the most wholesome and necessary for the public good.",
    "He has dissolved representative houses repeatedly.",
    "For quartering large bodies of armed troops among us.",
    "For cutting off our trade with all parts of the world.",
    "For imposing taxes on us without our consent.",
    "A prince whose character is thus marked by every act which may define a tyrant, is unfit to be the ruler of "
    "a free people.",
    "They too have been deaf to the voice of justice and of consanguinity.",
    "We must, therefore, acquiesce in the necessity, which denounces our separation.",
)
VOICE, WPM, SEED = "en-us", 150, 20261128


def _speak(text: str) -> bytes:
    wav = subprocess.run(["espeak-ng", "-v", VOICE, "-s", str(WPM), "--stdout", text], capture_output=True,
                         check=True).stdout
    return subprocess.run(["sox", "-t", "wav", "-", "-t", "raw", "-r", str(RATE), "-e", "signed", "-b", "16", "-c",
                           "1", "-"], input=wav, capture_output=True, check=True).stdout


def timed_recording() -> Tuple[Path, List[Tuple[float, str]]]:
    """``(wav path, [(start seconds, sentence), ...])``."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            require_real(f"{tool} (Debian: apt-get install espeak-ng sox)")
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip()
    key = hashlib.sha256(repr((SENTENCES, VOICE, WPM, SEED, version)).encode()).hexdigest()[:12]
    cache = Path(os.environ.get("GPUBOOT_TIMED_CACHE", Path.home() / ".cache" / "gpuboot-tests" / "timed"))
    wav_path, times_path = cache / f"timed-{key}.wav", cache / f"timed-{key}.json"
    if wav_path.exists() and times_path.exists():
        return wav_path, [(float(t), s) for t, s in json.loads(times_path.read_text())]
    cache.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    pcm = bytearray(b"\x00\x00" * int(RATE * 0.5))
    times: List[Tuple[float, str]] = []
    for sentence in SENTENCES:
        times.append((len(pcm) / 2 / RATE, sentence))
        pcm += _speak(sentence)
        pcm += b"\x00\x00" * int(RATE * rng.uniform(0.7, 1.3))
    tmp = wav_path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(pcm))
    os.replace(tmp, wav_path)
    times_path.write_text(json.dumps(times))
    return wav_path, times
