"""What a system under test in the live bench is (bench/live_harness.py drives it): an ``Arm`` that opens one
``Client`` per stream.  Its own module so that the peers' arms (bench/live_peers.py) and the harness both build on
it without importing each other."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple


class Client:
    """One stream of a system under test; subclasses fill ``finals`` with ``(word, time.monotonic())``."""

    def __init__(self) -> None:
        self.finals: List[Tuple[str, float]] = []

    def send(self, chunk: Any) -> None:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError

    def wait(self, timeout: float) -> None:
        raise NotImplementedError

    def extra(self) -> Dict[str, Any]:
        """Anything else the system reports about the stream (gpuboot: its own latency record)."""
        return {}


class Arm:
    """A system under test."""

    name = "arm"

    def start(self, streams: int) -> None:
        pass

    def open(self, index: int) -> Client:
        raise NotImplementedError

    def stop(self) -> None:
        pass

    def describe(self) -> Dict[str, Any]:
        return {}
