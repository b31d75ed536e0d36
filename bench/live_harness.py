"""The live-transcription bench harness: a recording streamed in 50 ms chunks paced by the wall clock into N
concurrent streams of one system, and what came back measured the same way for every system.

    python bench/live_harness.py --arm gpuboot --streams 1 [--runs 2] [--out FILE.json]

A system is an ``Arm`` (an adapter): ``start(streams)`` prepares it (loads the model, starts a server)
outside the clock, ``open(i)`` gives one ``Client`` per stream, ``stop()`` ends it.  A client takes
``send(chunk)`` (16 kHz float32, 50 ms; it must return at once), ``end()`` at the end of the audio and
``wait(timeout)`` until its last words are in; it records each word the system gave as final with the
``time.monotonic()`` it arrived (``self.finals.append((word, when))``).  Adding a system is one ``Arm``
class in ``ARMS`` (``Arm`` and ``Client`` in bench/live_arm.py); ``GpubootArm`` is the model.

Measures, per stream (``measure``): word latency as ufal whisper_streaming's ``asr_latency`` (the time a
word was emitted as final minus the wall time at which the audio of its end had been sent; each emitted
word is matched to the reference word it stands for by jiwer's alignment, and words the alignment
inserts are not timed), WER (jiwer, case and punctuation ignored) of the final words against the
sentences, and the share of reference words that some final word stands for.  Every stream gets its own
copy of the audio; all start together.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

CHUNK_S = 0.05
RATE = 16000

from live_arm import Arm, Client  # noqa: E402  (bench/ is on sys.path: above)


class GpubootClient(Client):
    def __init__(self, stream: Any) -> None:
        super().__init__()
        self.stream = stream
        self.refused: Optional[str] = None

    def _take(self, events: Sequence[Any]) -> None:
        when = time.monotonic()
        for event in events:
            if event.final:
                self.finals.extend((w.word, when) for w in event.words)

    def send(self, chunk: Any) -> None:
        self.stream.feed(chunk)

    def end(self) -> None:
        pass

    def wait(self, timeout: float) -> None:
        self.stream.finish(timeout=timeout)

    def extra(self) -> Dict[str, Any]:
        lat = self.stream.latency
        return {"own_latency": {"p50": lat.p50, "p95": lat.p95, "max": lat.max, "rtf": lat.rtf,
                                "decodes": lat.decodes}}


class GpubootArm(Arm):
    """gpuboot.LivePool on the embedded tiny.en (``load_whisper``'s choice of device and precision)."""

    name = "gpuboot"

    def __init__(self, **pool: Any) -> None:
        self.options = pool
        self.pool: Any = None
        self.refused: List[str] = []

    def start(self, streams: int) -> None:
        import gpuboot
        from gpuboot.whisper.models import embedded_model

        self.model = gpuboot.load_whisper(embedded_model() or "small")
        self.pool = gpuboot.LivePool(self.model, **self.options)

    def open(self, index: int) -> Client:
        holder: List[GpubootClient] = []
        stream = self.pool.open(language="en", on_events=lambda s, ev: holder[0]._take(ev))
        holder.append(GpubootClient(stream))
        return holder[0]

    def stop(self) -> None:
        self.pool.close()

    def describe(self) -> Dict[str, Any]:
        import gpuboot

        info = gpuboot.load_info(self.model)
        return {"device": info.device, "compute_type": info.compute_type, "cpu_threads": info.cpu_threads,
                "options": {k: v for k, v in self.options.items()}}


#: Systems by name; the serve side adds its peers here.
ARMS: Dict[str, Callable[[], Arm]] = {"gpuboot": GpubootArm}


def _normalise() -> Any:
    import jiwer

    return jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                          jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])


def measure(finals: Sequence[Tuple[str, float]], reference: Sequence[Tuple[float, str]], sent_at: Sequence[float]
            ) -> Dict[str, Any]:
    """One stream's figures: ``finals`` ``(word, emitted)``; ``reference`` ``(end s, word)`` in order;
    ``sent_at[i]``: when chunk ``i`` (``CHUNK_S`` each) was sent."""
    import jiwer

    norm = _normalise()
    ref_text = " ".join(w for _e, w in reference)
    hyp_words = [w for w, _t in finals if any(ch.isalnum() for ch in w)]
    emitted = [t for w, t in finals if any(ch.isalnum() for ch in w)]
    if not hyp_words:
        return {"wer": 1.0, "words_final": 0, "reference_words": len(reference), "covered": 0.0,
                "p50": None, "p95": None, "max": None, "latencies": 0}
    out = jiwer.process_words(ref_text, " ".join(hyp_words), reference_transform=norm, hypothesis_transform=norm)
    # The normalised hypothesis has one token per kept word here (punctuation-only words were dropped above).
    latencies: List[float] = []
    covered = 0
    for chunk in out.alignments[0]:
        if chunk.type in ("equal", "substitute"):
            for k in range(chunk.ref_end_idx - chunk.ref_start_idx):
                ref_i, hyp_i = chunk.ref_start_idx + k, chunk.hyp_start_idx + k
                end = reference[ref_i][0]
                arrived = sent_at[min(len(sent_at) - 1, int(end / CHUNK_S))]
                if hyp_i < len(emitted):
                    latencies.append(emitted[hyp_i] - arrived)
                covered += 1
    lat = sorted(latencies)

    def q(p: float) -> Optional[float]:
        return None if not lat else lat[min(len(lat) - 1, round(p * (len(lat) - 1)))]

    return {"wer": float(out.wer), "words_final": len(hyp_words), "reference_words": len(reference),
            "covered": covered / len(reference), "p50": q(0.5), "p95": q(0.95), "max": lat[-1] if lat else None,
            "latencies": len(lat)}


def drive(arm: Arm, streams: int, audio: Any, reference: Sequence[Tuple[float, str]], *,
          tail_s: float = 120.0) -> Dict[str, Any]:
    """Stream ``audio`` into ``streams`` clients of ``arm`` at once, each chunk sent when the wall clock reaches
    its end; the figures of each stream (``measure``) and of the run."""
    arm.start(streams)
    clients: List[Optional[Client]] = []
    refusals: List[str] = []
    for i in range(streams):
        try:
            clients.append(arm.open(i))
        except Exception as exc:  # a system may refuse a stream (gpuboot: LiveCapacityError, one line)
            refusals.append(f"{type(exc).__name__}: {exc}")
            clients.append(None)
    live = [c for c in clients if c is not None]
    sent_at: List[List[float]] = [[] for _ in live]
    step = int(CHUNK_S * RATE)
    t0 = time.monotonic() + 0.2

    def feeder(k: int, client: Client) -> None:
        for i, start in enumerate(range(0, len(audio), step)):
            wait = t0 + (i + 1) * CHUNK_S - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            client.send(audio[start:start + step])
            sent_at[k].append(time.monotonic())
        client.end()

    threads = [threading.Thread(target=feeder, args=(k, c)) for k, c in enumerate(live)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fed = time.monotonic()
    for c in live:
        c.wait(tail_s)
    done = time.monotonic()
    rows = [{**measure(c.finals, reference, sent_at[k]), **c.extra()} for k, c in enumerate(live)]
    arm.stop()
    return {"streams": streams, "served": len(live), "refused": refusals, "rows": rows,
            "audio_s": len(audio) / RATE, "tail_s": done - fed, "system": arm.describe()}


def recording() -> Tuple[Any, List[Tuple[float, str]], str]:
    """The bench recording (``live_recording.build``): samples, ``(end, word)`` per word, reference text."""
    import numpy as np
    from live_recording import build
    from long_recording import default_dir

    wav, meta = build(default_dir())
    import wave

    with wave.open(str(wav)) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    return audio, [(float(e), str(word)) for _s, e, word in meta["words"]], " ".join(meta["sentences"])


def offline_wer(audio: Any, reference: str) -> float:
    """``gpuboot.transcribe()``'s WER on the same audio and model (its defaults)."""
    import jiwer

    import gpuboot
    from gpuboot.whisper.models import embedded_model

    model = gpuboot.load_whisper(embedded_model() or "small")
    segments, _ = gpuboot.transcribe(model, audio, language="en")
    text = " ".join(s.text.strip() for s in segments)
    norm = _normalise()
    return float(jiwer.wer(reference, text, reference_transform=norm, hypothesis_transform=norm))


def summary(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Across runs and streams: median, min and max of each figure."""
    out: Dict[str, Any] = {}
    for key in ("p50", "p95", "max", "wer", "covered", "words_final"):
        values = [r[key] for run in runs for r in run["rows"] if r.get(key) is not None]
        if values:
            out[key] = [statistics.median(values), min(values), max(values)]
    out["served"] = [run["served"] for run in runs]
    out["refused"] = [x for run in runs for x in run["refused"]][:3]
    return out


def main() -> int:
    from live_peers import PEER_ARMS  # the peers' arms (bench/live_peers.py; they import live_arm, not this)

    ARMS.update(PEER_ARMS)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arm", default="gpuboot", choices=sorted(ARMS))
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--offline", action="store_true", help="also the offline gpuboot.transcribe() WER")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--seconds", type=float, default=None, help="only the first N seconds (a quick check)")
    args = ap.parse_args()
    audio, reference, text = recording()
    if args.seconds:
        audio = audio[: int(args.seconds * RATE)]
        reference = [(e, w) for e, w in reference if e <= args.seconds - 1.0]
    result: Dict[str, Any] = {"arm": args.arm, "streams": args.streams, "runs": []}
    for _ in range(args.runs):
        result["runs"].append(drive(ARMS[args.arm](), args.streams, audio, reference))
        print(json.dumps(summary(result["runs"][-1:])), flush=True)
    result["summary"] = summary(result["runs"])
    if args.offline:
        result["offline_wer"] = offline_wer(audio, text)
    print(json.dumps(result["summary"]))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
