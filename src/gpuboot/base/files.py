"""A path read as one ordinary file: FIFOs, devices and sockets refused before they are opened, a size bound,
never a wait.

Shared by every input gpuboot reads whole (``gpuboot transcribe``'s recordings are checked with
``special_kind``; ``gpuboot subtitles check`` reads its files with ``read_bounded``): reading a FIFO waits for a
writer for ever, and ``/dev/zero`` never ends.
"""

from __future__ import annotations

import os
import stat
from typing import Callable, Optional, Tuple

__all__ = ["SPECIAL_FILES", "special_kind", "read_bounded", "FileRefused"]

#: File kinds that are not ordinary files, refused before they are opened: the ``stat`` test and how the
#: message names it.
SPECIAL_FILES: Tuple[Tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def special_kind(mode: int) -> Optional[str]:
    """How ``SPECIAL_FILES`` names a file of this ``st_mode``, or ``None`` for a regular file or directory."""
    for test, name in SPECIAL_FILES:
        if test(mode):
            return name
    return None


class FileRefused(ValueError):
    """A path that is not an ordinary file of at most the size allowed; ``fix`` says what to pass instead."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(f"{message} -- fix: {fix}")
        self.fix = fix


def _judge(path: str, st: os.stat_result, what: str, limit: int) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise FileRefused(f"{path} is a directory, not {what}", f"pass {what} itself")
    kind = special_kind(st.st_mode)
    if kind is not None:
        raise FileRefused(f"{path} is {kind}, not {what}", "pass an ordinary file (copy a stream to a file first)")
    if st.st_size > limit:
        raise FileRefused(f"{path} is {st.st_size / 2**20:.0f} MiB, over the {limit / 2**20:.0f} MiB gpuboot reads "
                          f"as {what}", f"pass {what}, or split the file")


def read_bounded(path: str, limit: int, what: str) -> bytes:
    """The bytes of ``path``, an ordinary file of at most ``limit`` bytes (``what`` names it in messages: "a
    subtitle file").  Judged by ``stat`` before it is opened, opened without blocking (``O_NONBLOCK``: a FIFO
    put in its place meanwhile does not wait for a writer) and judged again on the open descriptor; never more
    than ``limit`` + 1 bytes are read.

    Raises:
        FileRefused: a directory, FIFO, device or socket, or over ``limit`` (a ``ValueError``).
        OSError: missing, unreadable, a symbolic-link loop, a name too long.
    """
    _judge(path, os.stat(path), what, limit)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        _judge(path, os.fstat(fd), what, limit)
        chunks = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:  # it grew after the stat (a file still being written)
        raise FileRefused(f"{path} is over the {limit / 2**20:.0f} MiB gpuboot reads as {what}",
                          f"pass {what}, or split the file")
    return data
