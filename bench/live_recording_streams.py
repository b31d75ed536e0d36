"""tests/test_serve.py's 50 s recording (tests/timed_speech "live": 9 sentences, 0.8 s pauses) streamed into N
streams of one ``LivePool`` at once, 50 ms chunks paced by the wall clock, in this process (no server, no
client): each stream's WER (tests/speech.py's ``wer``, as the test measures it) against the sentences, its word latency
(``stream.latency``) and the offline ``gpuboot.transcribe()`` WER of the same audio, as JSON lines.

    python bench/live_recording_streams.py [--streams 2] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import wave
from pathlib import Path
from typing import Any, List

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests")]

CHUNK = 800  # samples: 50 ms at 16 kHz


def _feed(stream: Any, audio: Any, finals: List[str]) -> None:
    t0 = time.monotonic()
    for k in range(0, len(audio), CHUNK):
        time.sleep(max(0.0, t0 + k / 16000 - time.monotonic()))
        finals.extend(w.word for e in stream.feed(audio[k:k + CHUNK]) if e.final for w in e.words)
    finals.extend(w.word for e in stream.finish() if e.final for w in e.words)


def main() -> int:
    import numpy as np
    from speech import wer
    from timed_speech import timed_recording

    import gpuboot
    from gpuboot.whisper.models import embedded_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=2)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    wav, times = timed_recording("live")
    reference = " ".join(s for _, s in times)
    with wave.open(str(wav)) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    model = gpuboot.load_whisper(str(embedded_model()), device="cpu")
    segments, _ = gpuboot.transcribe(model, str(wav), language="en")
    print(json.dumps({"offline_wer": round(wer(" ".join(s.text for s in segments), reference), 3)}), flush=True)
    for run in range(args.runs):
        pool = gpuboot.LivePool(model)
        streams = [pool.open(language="en") for _ in range(args.streams)]
        finals: List[List[str]] = [[] for _ in streams]
        threads = [threading.Thread(target=_feed, args=(s, audio, f)) for s, f in zip(streams, finals)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, (s, f) in enumerate(zip(streams, finals)):
            lat = s.latency
            print(json.dumps({"run": run, "stream": i, "wer": round(wer("".join(f), reference), 3),
                              "p50": round(lat.p50, 2), "p95": round(lat.p95, 2), "text": "".join(f).strip()}),
                  flush=True)
        pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
