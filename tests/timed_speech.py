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
    "A house divided against itself cannot stand.",
    "Government of the people, by the people, for the people, shall not perish from the earth.",
    "He has kept among us, in times of peace, standing armies without the consent of our legislatures.",
    "He has plundered our seas, ravaged our coasts, burnt our towns, and destroyed the lives of our people.",
    "Nor have we been wanting in attentions to our British brethren.",
    "We have warned them from time to time of attempts by their legislature to extend an unwarrantable "
    "jurisdiction over us.",
    "The care of human life and happiness is the first and only object of good government.",
    "Let us have faith that right makes might.",
    "Mr. Smith and Dr. Jones signed it on the fourth day of July.",
    "These are self-evident truths, and they cannot be denied.",
)
#: Long sentences (Declaration of Independence, 1776; Gettysburg Address, 1863; Second Inaugural, 1865), spoken
#: with 0.3 s pauses: the recording where a sentence start is a short pause, often after a comma.
LONG_SENTENCES = (
    "We hold these truths to be self-evident, that all men are created equal, that they are endowed by their "
    "Creator with certain unalienable rights, that among these are life, liberty and the pursuit of happiness.",
    "That to secure these rights, governments are instituted among men, deriving their just powers from the consent "
    "of the governed.",
    "Prudence, indeed, will dictate that governments long established should not be changed for light and "
    "transient causes, and accordingly all experience has shown that mankind are more disposed to suffer, while "
    "evils are sufferable, than to right themselves by abolishing the forms to which they are accustomed.",
    "When in the course of human events, it becomes necessary for one people to dissolve the political bands which "
    "have connected them with another, a decent respect to the opinions of mankind requires that they should "
    "declare the causes which impel them to the separation.",
    "It is for us the living, rather, to be dedicated here to the unfinished work which they who fought here have "
    "thus far so nobly advanced.",
    "It is rather for us to be here dedicated to the great task remaining before us, that from these honored dead "
    "we take increased devotion to that cause for which they gave the last full measure of devotion.",
    "With malice toward none, with charity for all, with firmness in the right as God gives us to see the right, "
    "let us strive on to finish the work we are in, to bind up the nation's wounds.",
    "Fondly do we hope, fervently do we pray, that this mighty scourge of war may speedily pass away.",
    "Both parties deprecated war, but one of them would make war rather than let the nation survive, and the other "
    "would accept war rather than let it perish, and the war came.",
    "He has erected a multitude of new offices, and sent hither swarms of officers to harass our people, and eat "
    "out their substance.",
    "He has combined with others to subject us to a jurisdiction foreign to our constitution, and unacknowledged "
    "by our laws, giving his assent to their acts of pretended legislation.",
    "In every stage of these oppressions we have petitioned for redress in the most humble terms, and our repeated "
    "petitions have been answered only by repeated injury.",
)
#: The recordings: sentences, and the pause after each (seconds, drawn from this range).
KINDS = {"separate": (SENTENCES, (0.7, 1.3)), "long": (LONG_SENTENCES, (0.3, 0.3)),
         # nine sentences with 0.8 s pauses (50 s, 119 words): what live clients stream in real time in tests
         "live": (SENTENCES[2:11], (0.8, 0.8))}
VOICE, WPM, SEED = "en-us", 150, 20261128


def _speak(text: str) -> bytes:
    wav = subprocess.run(["espeak-ng", "-v", VOICE, "-s", str(WPM), "--stdout", text], capture_output=True,
                         check=True).stdout
    return subprocess.run(["sox", "-t", "wav", "-", "-t", "raw", "-r", str(RATE), "-e", "signed", "-b", "16", "-c",
                           "1", "-"], input=wav, capture_output=True, check=True).stdout


def timed_recording(kind: str = "separate") -> Tuple[Path, List[Tuple[float, str]]]:
    """``(wav path, [(start seconds, sentence), ...])`` of recording ``kind`` (``KINDS``: ``"separate"``, 24
    sentences with pauses of 0.7-1.3 s; ``"long"``, 12 long sentences with 0.3 s pauses; ``"live"``, 9 of the
    24 with 0.8 s pauses)."""
    sentences, (low, high) = KINDS[kind]
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            require_real(f"{tool} (Debian: apt-get install espeak-ng sox)")
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip()
    key = hashlib.sha256(repr((sentences, low, high, VOICE, WPM, SEED, version)).encode()).hexdigest()[:12]
    cache = Path(os.environ.get("GPUBOOT_TIMED_CACHE", Path.home() / ".cache" / "gpuboot-tests" / "timed"))
    wav_path, times_path = cache / f"timed-{kind}-{key}.wav", cache / f"timed-{kind}-{key}.json"
    if wav_path.exists() and times_path.exists():
        return wav_path, [(float(t), s) for t, s in json.loads(times_path.read_text())]
    cache.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    pcm = bytearray(b"\x00\x00" * int(RATE * 0.5))
    times: List[Tuple[float, str]] = []
    for sentence in sentences:
        times.append((len(pcm) / 2 / RATE, sentence))
        pcm += _speak(sentence)
        pcm += b"\x00\x00" * int(RATE * rng.uniform(low, high))
    tmp = wav_path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(pcm))
    os.replace(tmp, wav_path)
    times_path.write_text(json.dumps(times))
    return wav_path, times
