"""Build a folder of short real-speech clips reproducibly: voice notes / call-centre snippets of 3-10 s.

    python bench/short_clips.py [--count 240] [--out DIR]     # prints the folder; each clip's text beside it

Each clip is one sentence or clause of the public-domain texts of
``long_recording.py`` read by one of its six espeak-ng English voices at that
voice's rate, with 0.1-0.4 s of silence before and after (a fixed random
seed); clips outside 3-10 s are skipped, and the texts are used again, by the
next voice, until ``count`` clips exist.  Cached (not committed), keyed by a
hash of the texts, voices, count and espeak-ng version.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import shutil
import sys
import wave
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parent))

from long_recording import RATE, RATES, VOICES, _espeak, _version, default_dir, paragraphs, sentences

SEED = 20261130
MIN_S, MAX_S = 3.0, 10.0


def texts() -> List[str]:
    """Sentences of 4-24 words, and the clauses of longer ones."""
    out: List[str] = []
    for para in paragraphs():
        for sentence in sentences(para):
            words = sentence.split()
            if 4 <= len(words) <= 24:
                out.append(sentence)
            else:
                out.extend(c.strip() for c in re.split(r"(?<=[,;:])\s+", sentence) if 4 <= len(c.split()) <= 24)
    return out


def build(count: int, out_dir: Path) -> Path:
    """``out_dir/clips-<hash>/clipNNN.wav`` and ``.txt`` (the reference); reused when complete."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed: apt-get install espeak-ng sox")
    pool = texts()
    key = hashlib.sha256(repr((pool, VOICES, RATES, SEED, count, _version())).encode()).hexdigest()[:12]
    folder = out_dir / f"clips-{key}"
    if (folder / "complete").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    made, i = 0, 0
    while made < count:
        text = pool[i % len(pool)]
        voice, rate = VOICES[(i // len(pool) + i) % len(VOICES)], RATES[(i // len(pool) + i) % len(RATES)]
        i += 1
        if i > 20 * count:
            raise SystemExit("too few texts of 3-10 s for the clips asked for")
        pcm = _espeak(text, voice, rate)
        seconds = len(pcm) / 2 / RATE
        if not MIN_S <= seconds <= MAX_S:
            continue
        pcm = (b"\x00\x00" * int(RATE * rng.uniform(0.1, 0.4)) + pcm +
               b"\x00\x00" * int(RATE * rng.uniform(0.1, 0.4)))
        path = folder / f"clip{made:03d}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(pcm)
        path.with_suffix(".txt").write_text(text + "\n")
        made += 1
    (folder / "complete").write_text(str(count))
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=240)
    ap.add_argument("--out", type=Path, default=default_dir())
    args = ap.parse_args()
    print(build(args.count, args.out))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
