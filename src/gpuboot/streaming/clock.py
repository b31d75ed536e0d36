"""When each stretch of a stream's audio arrived, and the latency of its final words: ``ArrivalClock``.

A word's latency is the time it was emitted as final minus the time the audio holding its end was fed
(ufal whisper_streaming's ``asr_latency``, on the wall clock: ``time.monotonic()``).  The clock keeps one
``(sample reached, time)`` pair per ``feed()`` call, and forgets the pairs before the last final word.
"""

from __future__ import annotations

import bisect
from typing import List

from .records import LiveLatency

__all__ = ["ArrivalClock", "percentile"]


def percentile(values: List[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, linearly interpolated (numpy's default); 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    at = q * (len(ordered) - 1)
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


class ArrivalClock:
    """Arrival times of one stream's samples, and the latencies of its final words."""

    def __init__(self) -> None:
        self._samples: List[int] = []
        self._times: List[float] = []
        self.latencies: List[float] = []
        self.decode_s = 0.0
        self.decodes = 0
        self.fed = 0

    def fed_until(self, sample: int, when: float) -> None:
        """Samples up to ``sample`` (16 kHz, the stream's timeline) had arrived at ``when``."""
        self.fed = max(self.fed, sample)
        if self._samples and self._samples[-1] >= sample:
            return
        self._samples.append(sample)
        self._times.append(when)

    def arrival(self, seconds: float) -> float:
        """When the audio at ``seconds`` of the stream arrived (the last arrival for a time past it)."""
        i = bisect.bisect_left(self._samples, int(seconds * 16000))
        return self._times[min(i, len(self._times) - 1)] if self._times else 0.0

    def finals(self, ends: List[float], emitted: float) -> None:
        """Final words ending at ``ends`` (s) were emitted at ``emitted``; older arrivals are forgotten."""
        for end in ends:
            self.latencies.append(max(0.0, emitted - self.arrival(end)))
        if ends:
            keep = max(0, bisect.bisect_left(self._samples, int(max(ends) * 16000)) - 1)
            del self._samples[:keep], self._times[:keep]

    def charge(self, seconds: float) -> None:
        """This stream's share of one decoding step, s."""
        self.decode_s += seconds
        self.decodes += 1

    def report(self) -> LiveLatency:
        audio = self.fed / 16000
        lat = self.latencies
        return LiveLatency(words=len(lat), p50=percentile(lat, 0.5), p95=percentile(lat, 0.95),
                           max=max(lat, default=0.0), rtf=self.decode_s / audio if audio else 0.0, audio_s=audio,
                           decode_s=self.decode_s, decodes=self.decodes)
