"""``ServeSettings``: how ``gpuboot serve`` serves (read by the command's options without importing the server)."""

from __future__ import annotations

from ..base.record import Record

__all__ = ["ServeSettings"]


class ServeSettings(Record):
    """How ``gpuboot serve`` serves.

    Attributes:
        host, port: where it listens (port 0: any free port; the bound one is reported).
        max_clients: streams at once; the next client gets ``WAIT``.
        max_connection_time: s a session may last, then ``DISCONNECT``; 0: no limit (WhisperLive's: 600).
        keepalive: s a client may leave a ping or an update unread before it is closed.
        max_frame_bytes: the largest message accepted (1 MiB: 16 s of float32 audio).
    """

    host: str = "127.0.0.1"
    port: int = 9090
    max_clients: int = 4
    max_connection_time: float = 600.0
    keepalive: float = 20.0
    max_frame_bytes: int = 2 ** 20
