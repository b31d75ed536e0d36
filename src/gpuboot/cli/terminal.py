"""What every command shares at the terminal: standard output that may fail, tty checks, error lines in the
command's wording, log records routed to stderr, and the progress bar."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from typing import Any, Iterator, TextIO

PROG = "gpuboot"

__all__ = ["PROG", "OutputError", "Output", "silence", "is_tty", "error_line", "for_the_command_line",
           "logging_to", "Progress"]

#: The library's keyword wording in a fix -> the ``gpuboot`` command's flag, so that library errors speak
#: Python and the command speaks flags.
CLI_WORDING = (("model='/path/to/model'", "--model DIR"), ("device='auto'", "--device auto"))


def for_the_command_line(text: str) -> str:
    """``text`` (an error's message) with keyword arguments named as the command's flags (``CLI_WORDING``)."""
    for keyword, flag in CLI_WORDING:
        text = text.replace(keyword, flag)
    return text


def error_line(err: TextIO, exc: BaseException) -> None:
    """``gpuboot: error: <message> -- fix: <fix>``: one line on ``err``, in the command's wording."""
    err.write(for_the_command_line(f"{PROG}: error: {exc}".replace("\n  fix:", " -- fix:")) + "\n")


def is_tty(stream: Any) -> bool:
    """``stream`` is a terminal (a closed or odd stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class OutputError(Exception):
    """Writing to standard output failed (a full disk, a closed descriptor): not the command's own error."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class Output(io.TextIOBase):
    """Standard output whose write failures are told apart from every other ``OSError`` of a command."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as exc:  # ValueError: "I/O operation on closed file"
            raise OutputError(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as exc:
            raise OutputError(exc) from None

    def isatty(self) -> bool:
        return is_tty(self._stream)

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"


def silence(stream: Any) -> None:
    """Point ``stream``'s descriptor at devnull, so that the interpreter's final flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())


class _Formatter(logging.Formatter):
    """``gpuboot: warning: message`` -- log records read apart from the one error line."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.name.split('.')[0]}: {record.levelname.lower()}: {record.getMessage()}"


@contextlib.contextmanager
def logging_to(stream: TextIO, verbosity: int) -> Iterator[None]:
    """Route log records (gpuboot's and its dependencies') to ``stream`` for the duration of one command;
    the library itself only has a NullHandler.  ``verbosity``: 0 warnings, 1 info (``-v``), 2 debug."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_Formatter())
    root, ours = logging.getLogger(), logging.getLogger("gpuboot")
    level = logging.DEBUG if verbosity > 1 else logging.INFO if verbosity == 1 else logging.WARNING
    old_root, old_ours = root.level, ours.level
    handler.setLevel(level)
    root.addHandler(handler)
    ours.setLevel(level)
    if root.level > level:
        root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_root)
        ours.setLevel(old_ours)


class Progress:
    """tqdm on stderr, counting audio seconds; the real-time factor in the postfix."""

    def __init__(self, enabled: bool, stream: TextIO, total: float, label: str) -> None:
        self.bar: Any = None
        self.done = 0.0
        self.started = time.perf_counter()
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=round(total, 1), unit="s", unit_scale=False, desc=label, file=stream,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio "
                                       "[{elapsed}<{remaining}{postfix}]", dynamic_ncols=True)

    def update(self, end: float) -> None:
        if self.bar is None or end <= self.done:
            return
        self.bar.update(round(min(end, self.bar.total) - self.done, 3))
        self.done = min(end, self.bar.total)
        elapsed = time.perf_counter() - self.started
        if self.done > 0:
            self.bar.set_postfix_str(f"RTF {elapsed / self.done:.3f}", refresh=False)

    def write(self, line: str, stream: TextIO) -> None:
        if self.bar is not None:
            self.bar.write(line, file=stream)
        else:
            stream.write(line + "\n")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.update(max(0.0, self.bar.total - self.done))
            self.bar.close()
