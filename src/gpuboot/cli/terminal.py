"""What every command shares at the terminal: standard output that may fail, tty checks, error lines in the
command's wording, log records routed to stderr, and the progress bar."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from typing import Any, Dict, Iterator, Optional, TextIO

PROG = "gpuboot"

__all__ = ["PROG", "OutputError", "Output", "silence", "is_tty", "error_line", "for_the_command_line",
           "logging_to", "Progress", "Terminated", "terminate_as_interrupt", "utf8_stdout", "DeferredStop"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be: the same clean stop (workers ended, no partial file), exit 143."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While a command runs in the main thread: SIGTERM raises ``Terminated``."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


class DeferredStop:
    """While entered in the main thread: Ctrl-C and SIGTERM are noted, not raised where they land, and ``check()``
    raises them (``KeyboardInterrupt``, ``Terminated``) where the code can stop cleanly.  A loop that waits on
    futures or a queue with a timeout checks after each wait: a ``KeyboardInterrupt`` raised inside
    ``threading.Condition.wait`` itself can leave its lock released twice ("RuntimeError: release unlocked lock",
    seen in ``concurrent.futures.wait`` under CPython 3.11)."""

    def __init__(self) -> None:
        self.seen: Optional[int] = None
        self.old: Dict[int, Any] = {}

    def __enter__(self) -> DeferredStop:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.old[signum] = signal.signal(signum, self._note)
        return self

    def _note(self, signum: int, frame: Any) -> None:
        self.seen = self.seen or signum

    def check(self) -> None:
        import signal

        if self.seen is not None:
            raise Terminated() if self.seen == signal.SIGTERM else KeyboardInterrupt()

    def __exit__(self, *exc: Any) -> None:
        import signal

        for signum, old in self.old.items():
            signal.signal(signum, old)
        self.old = {}


def utf8_stdout(stream: Any) -> None:
    """Standard output in UTF-8 whatever the console's code page or ``PYTHONIOENCODING`` (a redirected stdout on
    Windows is cp1252: JSON with non-Latin text would fail), with ``\\xNN`` for what cannot be encoded."""
    encoding = str(getattr(stream, "encoding", "") or "").lower().replace("-", "").replace("_", "")
    if encoding != "utf8" and hasattr(stream, "reconfigure"):
        with contextlib.suppress(Exception):
            stream.reconfigure(encoding="utf-8", errors="backslashreplace")

#: The library's keyword wording in a fix -> the ``gpuboot`` command's flag, so that library errors speak
#: Python and the command speaks flags.
CLI_WORDING = (("model='/path/to/model'", "--model DIR"), ("device='auto'", "--device auto"))


def for_the_command_line(text: str) -> str:
    """``text`` (an error's message) with keyword arguments named as the command's flags (``CLI_WORDING``)."""
    for keyword, flag in CLI_WORDING:
        text = text.replace(keyword, flag)
    return text


def error_line(err: TextIO, exc: BaseException) -> None:
    """``gpuboot: error: <message> -- fix: <fix>``: one line on ``err``, in the command's wording (names that
    are not UTF-8 shown with ``\\xNN``)."""
    from .inputs import shown

    err.write(shown(for_the_command_line(f"{PROG}: error: {exc}".replace("\n  fix:", " -- fix:"))) + "\n")


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
    """tqdm on stderr, counting audio seconds done (never past the total), with the real-time factor and the ETA
    from the average pace so far (``smoothing=0``: a batch that ends many files at once does not swing it), the
    stage while nothing is counted yet ("loading model", "decoding"), and the elapsed time redrawn every
    ``TICK_S`` even while one batch decodes.  Lines for another stream (the live cues on stdout) are written with
    the bar taken off the screen first and redrawn after, so a terminal never shows a cue glued to a bar."""

    #: Seconds between redraws while nothing else moves the bar.
    TICK_S = 1.0

    def __init__(self, enabled: bool, stream: TextIO, total: float, label: str) -> None:
        self.bar: Any = None
        self.done = 0.0
        self.started = time.perf_counter()
        self.stage = "loading model"
        self.stop: Any = None
        if enabled:
            import threading

            from tqdm import tqdm

            self.bar = tqdm(total=round(total, 1), unit="s", unit_scale=False, desc=label, file=stream,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio "
                                       "[{elapsed}<{remaining}{postfix}]", dynamic_ncols=True, smoothing=0)
            self.bar.set_postfix_str(self.stage, refresh=True)
            self.stop = threading.Event()
            threading.Thread(target=self._tick, args=(self.bar, self.stop), daemon=True,
                             name="gpuboot-progress").start()

    @classmethod
    def _tick(cls, bar: Any, stop: Any) -> None:
        while not stop.wait(cls.TICK_S):
            with bar.get_lock():
                if not stop.is_set():
                    bar.refresh(nolock=True)

    def status(self, stage: str) -> None:
        """The stage shown until audio is counted (e.g. ``"decoding"`` once the model is loaded)."""
        self.stage = stage
        if self.bar is not None and self.done <= 0:
            self.bar.set_postfix_str(stage, refresh=True)

    def set_total(self, total: float) -> None:
        """The total grew (a file longer than its header said)."""
        if self.bar is not None and total > self.bar.total:
            self.bar.total = round(total, 1)
            self.bar.refresh()

    def update(self, done: float) -> None:
        """``done`` audio seconds in all: the bar moves there (set, not added: sums of rounded steps would
        creep past the total), RTF (elapsed / audio done) beside it."""
        if self.bar is None or done <= self.done:
            return
        self.done = min(done, self.bar.total)
        self.bar.n = round(self.done, 3)
        elapsed = time.perf_counter() - self.started
        if self.done > 0:
            self.bar.set_postfix_str(f"RTF {elapsed / self.done:.3f}", refresh=True)

    def clear(self) -> None:
        """Take the bar off the screen before another line (it is redrawn at the next update)."""
        if self.bar is not None:
            self.bar.clear()

    def write(self, line: str, stream: TextIO) -> None:
        """``line`` on ``stream`` above the bar: the bar is cleared, the line written and flushed, the bar
        redrawn (tqdm's own ``write`` clears a bar only when both streams are ``sys.stdout``/``sys.stderr``;
        the command's stdout is a UTF-8 wrapper)."""
        if self.bar is None:
            stream.write(line + "\n")
            return
        with self.bar.get_lock():
            self.bar.clear(nolock=True)
            stream.write(line + "\n")
            stream.flush()
            self.bar.refresh(nolock=True)

    def close(self, complete: bool = True) -> None:
        """End the bar: filled when the work is complete, left where it was when it was stopped."""
        if self.bar is not None:
            if self.stop is not None:
                self.stop.set()
            if complete:
                self.bar.n = self.bar.total
                self.bar.refresh()
            self.bar.close()
            self.bar = None
