"""The live-transcription section and budgets of docs/benchmarks.md (bench/measure_live.py's figures)."""

from __future__ import annotations

import statistics
from typing import Any, Dict, List, Optional, Sequence, Tuple

#: Issue 30's "Done when", per number of streams: (p50 at most, p95 at most, WER over offline at most,
#: share of words final at least); None: no limit on that figure.
LIVE_TARGETS: Dict[int, Tuple[Optional[float], float, float, float]] = {
    1: (1.5, 3.0, 0.03, 0.97), 2: (None, 5.0, 0.05, 0.97), 4: (None, 8.0, 0.05, 0.97)}


def _rows(arm: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [row for run in arm["runs"] for row in run["rows"]]


def _spread(values: Sequence[float], digits: int = 2) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    return f"{med:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def render_live(live: Optional[Dict[str, Any]]) -> List[str]:
    """The table of every arm: per stream, median (min-max over runs and streams)."""
    L = ["## Live transcription (CPU, tiny.en)\n"]
    if live is None:
        return [*L, "Not measured: `python bench/run.py --only live` (needs espeak-ng for the recording).\n"]
    offline = live.get("offline_wer")
    L.append(f"bench/live_recording.py's {live['audio_s']:.1f} s recording ({live['reference_words']} words: 24 "
             "sentences spoken by espeak-ng, 0.8 s pauses), streamed in 50 ms chunks paced by the wall clock into "
             "every stream at once, each stream its own copy (bench/live_harness.py). Word latency = when a word "
             "was emitted as final minus when the audio of its end had been sent (ufal whisper_streaming's "
             "asr_latency; words matched to the reference by jiwer's alignment). WER of the final words against "
             "the sentences; words final = reference words some final word stands for. Each arm a fresh process, "
             "arms interleaved round by round; median (min-max) over runs and streams. Offline "
             f"`gpuboot.transcribe()` on the same audio: WER {offline:.3f}.\n" if offline is not None else "\n")
    L.append("| system | streams | runs | served | word latency p50 (s) | p95 (s) | max (s) | WER | words final |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for arm in live["arms"].values():
        rows = _rows(arm)
        served = sorted({run["served"] for run in arm["runs"]})
        L.append(f"| {arm['system']} | {arm['streams']} | {len(arm['runs'])} | {'/'.join(map(str, served))} | "
                 f"{_spread([r['p50'] for r in rows if r['p50'] is not None])} | "
                 f"{_spread([r['p95'] for r in rows if r['p95'] is not None])} | "
                 f"{_spread([r['max'] for r in rows if r['max'] is not None])} | "
                 f"{_spread([r['wer'] for r in rows], 3)} | "
                 f"{_spread([r['covered'] * 100 for r in rows], 1)} % |")
    L.append("")
    refused = [x for arm in live["arms"].values() for run in arm["runs"] for x in run.get("refused", [])]
    if refused:
        L.append(f"- Refused at `open()`: {refused[0]}")
    systems = [arm.get("runs", [{}])[0].get("system", {}) for arm in live["arms"].values()]
    if systems and systems[0]:
        L.append(f"- gpuboot ran on {systems[0].get('device')}/{systems[0].get('compute_type')}, "
                 f"{systems[0].get('cpu_threads')} thread(s).")
    L.append("")
    return L


def live_budgets(live: Optional[Dict[str, Any]]) -> List[str]:
    """Issue 30's targets for gpuboot's arms: each stream's worst figure over the runs."""
    if live is None or live.get("offline_wer") is None:
        return []
    offline = float(live["offline_wer"])
    out: List[str] = []
    for arm in live["arms"].values():
        if arm["system"] != "gpuboot" or arm["streams"] not in LIVE_TARGETS:
            continue
        p50_max, p95_max, wer_over, share = LIVE_TARGETS[arm["streams"]]
        rows = _rows(arm)
        if not rows:
            continue
        worst = {"p50": max(r["p50"] or 1e9 for r in rows), "p95": max(r["p95"] or 1e9 for r in rows),
                 "wer": max(r["wer"] for r in rows), "covered": min(r["covered"] for r in rows)}
        ok = (worst["p95"] <= p95_max and worst["wer"] <= offline + wer_over and worst["covered"] >= share
              and (p50_max is None or worst["p50"] <= p50_max))
        head = f"p50 <= {p50_max:g} s, " if p50_max is not None else ""
        served = min(run["served"] for run in arm["runs"])
        n = arm["streams"]
        out.append(f"| live, {n} stream{'s' if n > 1 else ''} at once (each): {head}p95 <= {p95_max:g} s, WER <= "
                   f"offline + {wer_over:.2f}, >= {share * 100:.0f} % of words final | "
                   + (f"p50 {worst['p50']:.2f} s, " if p50_max is not None else "")
                   + f"p95 {worst['p95']:.2f} s, WER {worst['wer']:.3f} (offline {offline:.3f}), "
                   f"{worst['covered'] * 100:.1f} % final" + (f"; {served} of {n} served" if served < n else "")
                   + f" | {'met' if ok else '**missed**'} |")
    return out
