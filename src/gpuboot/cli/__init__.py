"""The ``gpuboot`` command: ``transcribe``, ``doctor``, ``env``, ``hook``, ``subtitles``, ``serve``, one module each
(``COMMANDS``).

Each command module has ``SUMMARY`` (its help line), ``add_arguments(parser)``
and ``run(args, out, err) -> exit code``; a new command is one module and one
row.  Exit codes: 0 success / healthy, 1 a runtime failure or problems
found, 2 a usage error, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM),
141 when the reader of stdout went away.  ``-v`` and ``-q`` go before or
after the command.  Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from typing import Any, List, NoReturn, Optional, Sequence, TextIO, Tuple, cast

from .terminal import (
    PROG,
    Output,
    OutputError,
    Terminated,
    error_line,
    logging_to,
    silence,
    terminate_as_interrupt,
    utf8_stdout,
)

__all__ = ["main", "COMMANDS", "PROG"]

#: Command name -> its module (as pip's ``commands_dict``).
COMMANDS = {
    "transcribe": "gpuboot.cli.transcribe",
    "doctor": "gpuboot.cli.doctor",
    "env": "gpuboot.cli.env",
    "hook": "gpuboot.cli.hook",
    "subtitles": "gpuboot.cli.subtitles",
    "serve": "gpuboot.cli.serve",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _command(name: str) -> Any:
    return importlib.import_module(COMMANDS[name])


def _parser() -> argparse.ArgumentParser:
    from ..base import __version__

    p = _Parser(prog=PROG, description="Make GPU ML apps start right: find, load and check NVIDIA libraries.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _common(p, None)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        module = _command(name)
        child = sub.add_parser(name, help=module.SUMMARY)
        _common(child, argparse.SUPPRESS)  # -v / -q before or after the command: one meaning
        module.add_arguments(child)
    return p


def _common(parser: argparse.ArgumentParser, default: Any) -> None:
    """``-v``/``-q``, taken before the command (``default`` None: the real defaults) or after it (``SUPPRESS``:
    not given there leaves what was given before)."""
    parser.add_argument("-v", "--verbose", action="count", default=0 if default is None else default,
                        help="say more: the device reasoning, what gpuboot does (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", default=False if default is None else default,
                        help="no progress bar, no live lines, no 'wrote' lines")


def _split_pip_args(words: List[str]) -> Tuple[List[str], List[str]]:
    """``gpuboot doctor --fix -- PIP OPTIONS``: what follows ``--`` is pip's, for ``doctor`` only; for every other
    command ``--`` keeps its usual meaning (the end of options: ``gpuboot transcribe -- -dash.wav``)."""
    command = next((w for w in words if not w.startswith("-")), None)
    if command != "doctor" or "--" not in words:
        return words, []
    cut = words.index("--")
    return words[:cut], words[cut + 1:]


def main(argv: Optional[Sequence[str]] = None, *, stdout: Optional[TextIO] = None,
         stderr: Optional[TextIO] = None) -> int:
    """Run the ``gpuboot`` command; returns the exit code (0, 1, 2, 130, or
    141 when the reader of stdout went away, as for a program killed by SIGPIPE).
    A closed or failing standard output (``>&-``, ``> /dev/full``) is one line
    on standard error and exit code 1."""
    # Resolved per call: a default of sys.stdout would freeze the stream at import.
    raw_out = sys.stdout if stdout is None else stdout
    if stdout is None and raw_out is not None:
        utf8_stdout(raw_out)
    err_stream = sys.stderr if stderr is None else stderr
    import io

    err = err_stream if err_stream is not None else io.StringIO()  # `2>&-`: errors have nowhere to go
    if raw_out is None:
        print(f"{PROG}: error: standard output is closed; run it with an open standard output "
              f"(`{PROG} ... > FILE`)", file=err)
        return 1
    out = cast(TextIO, Output(raw_out))
    parser = _parser()
    words, pip_args = _split_pip_args(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(words)
    args.pip_args = pip_args
    if pip_args and not (args.command == "doctor" and args.fix):
        parser.error("options after `--` are pip's, for `gpuboot doctor --fix` only")
    if args.command == "doctor" and (args.yes or args.dry_run) and not args.fix:
        parser.error("--yes and --dry-run go with --fix")
    try:
        with logging_to(err, args.verbose), terminate_as_interrupt():
            code = _run(args, out, err)
            out.flush()
        if argv is None:
            _settled()
            _leave_now_if_decoding(code, out, err)
        return code
    except BrokenPipeError:  # `gpuboot doctor --json | head`: the reader left
        silence(raw_out)
        return 141
    except OutputError as exc:
        print(f"{PROG}: error: cannot write to standard output: {exc.error}", file=err)
        silence(raw_out)
        return 1


def _settled() -> None:
    """The command has its exit code: a Ctrl-C while the interpreter shuts down changes nothing any more."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _leave_now_if_decoding(code: int, out: TextIO, err: TextIO) -> None:
    """The command's process after a stop: a decoding thread still inside CTranslate2 (it finishes its batch
    only in seconds, and an interpreter shutting down around it can crash) is left behind -- the streams are
    flushed and the process exits with ``code`` now.  Nothing is lost: transcripts are written whole by the
    main thread (``whisper.outsets.write_set``), never by that thread."""
    from .runners import decoding_threads

    for thread in decoding_threads():  # one that has just put its last event ends at once
        thread.join(0.5)
    if not decoding_threads():
        return
    for stream in (out, err):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ..errors import GpubootError

    try:
        return int(_command(args.command).run(args, out, err))
    except GpubootError as exc:
        error_line(err, exc)
        return 1
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=err)
        return 2
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        print(f"{PROG}: {'terminated' if terminated else 'interrupted'}", file=err)
        return 143 if terminated else 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
