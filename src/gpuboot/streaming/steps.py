"""How often a live stream is decoded, from what decoding measurably costs: ``StepClock``.

Each batched step's wall time is recorded per batch size as an exponentially weighted moving average (EWMA).
A stream is decoded again once it has gathered as much new audio as one round of the pool takes (the steps
that serve every active stream once): decoding more often cannot happen, and decoding less often only
adds latency.  The same figures decide admission: a stream is refused when one round with it would take
longer than the pool's latency budget allows.  Before anything is measured nothing is refused.
"""

from __future__ import annotations

import math
import threading
from typing import Dict, Optional

__all__ = ["StepClock", "ALPHA", "MIN_STEP", "MAX_STEP"]

#: EWMA weight of the newest measurement.
ALPHA = 0.3
#: Bounds of a step, seconds of new audio: under MIN_STEP a decode re-reads the buffer for a frame or two of
#: news; over MAX_STEP the buffer would be read too rarely for words to be confirmed before it is trimmed.
MIN_STEP, MAX_STEP = 0.15, 4.0


class StepClock:
    """Measured step costs, per batch size (thread-safe)."""

    def __init__(self) -> None:
        self._cost: Dict[int, float] = {}
        self._lock = threading.Lock()

    def record(self, batch: int, seconds: float) -> None:
        """One step of ``batch`` streams took ``seconds`` (wall time of the decode)."""
        with self._lock:
            old = self._cost.get(batch)
            self._cost[batch] = seconds if old is None else (1 - ALPHA) * old + ALPHA * seconds

    def cost(self, batch: int) -> Optional[float]:
        """Expected seconds of one step of ``batch`` streams: measured, else a straight line through the sizes
        measured (one size: proportional to it, the pessimistic guess), else ``None``."""
        with self._lock:
            known = dict(self._cost)
        if batch in known:
            return known[batch]
        if not known:
            return None
        if len(known) == 1:
            (size, seconds), = known.items()
            return seconds * max(batch, 1) / size
        n = len(known)
        mx = sum(known) / n
        my = sum(known.values()) / n
        var = sum((k - mx) ** 2 for k in known)
        slope = max(0.0, sum((k - mx) * (v - my) for k, v in known.items()) / var)
        return max(1e-3, my + slope * (batch - mx))

    def round_time(self, streams: int, cap: int) -> Optional[float]:
        """Seconds one round takes to decode ``streams`` streams in batches of at most ``cap``."""
        if streams <= 0:
            return 0.0
        size = min(streams, max(1, cap))
        cost = self.cost(size)
        return None if cost is None else math.ceil(streams / size) * cost

    def step(self, streams: int, cap: int) -> float:
        """Seconds of new audio a stream gathers before its next decode (``MIN_STEP`` before any measurement)."""
        time = self.round_time(streams, cap)
        return MIN_STEP if time is None else min(MAX_STEP, max(MIN_STEP, time))
