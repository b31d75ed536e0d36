"""``gpuboot`` command line: ``transcribe``, ``doctor``, ``env``.

Exit codes: 0 success / healthy, 1 a runtime failure or problems found,
2 a usage error.  Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
from typing import Any, Iterator, List, NoReturn, Optional, Sequence, TextIO, cast

from .errors import GpubootError, for_the_command_line

PROG = "gpuboot"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    from ._cli_transcribe import add_arguments as add_transcribe_arguments
    from .doctor import CONSUMER_ALIASES
    from .shellenv import SHELLS
    from .whisper.load import COMPUTE_TYPES, DEVICES

    p = _Parser(prog=PROG, description="Make GPU ML apps start right: find, load and check NVIDIA libraries.")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log what gpuboot does (-vv: debug)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    t = sub.add_parser("transcribe", help="transcribe recordings with a verified faster-whisper model")
    add_transcribe_arguments(t, DEVICES, COMPUTE_TYPES)

    d = sub.add_parser("doctor", help="diagnose GPU start-up problems and print the fix for each")
    d.add_argument("--json", action="store_true",
                   help="JSON following gpuboot/doctor/doctor-schema.json, shipped in the package")
    d.add_argument("--for", dest="consumer", choices=tuple(CONSUMER_ALIASES), default=None,
                   help="check for one consumer only")
    d.add_argument("--fix", action="store_true",
                   help="apply the fixes that change this environment (pip, run by this interpreter), after one "
                        "confirmation, then check again; host-level fixes are explained, never run. pip options "
                        "go after `--` (e.g. -- --find-links DIR --no-index)")
    d.add_argument("--yes", action="store_true", help="with --fix: apply without asking (scripts)")
    d.add_argument("--dry-run", action="store_true", help="with --fix: print the exact commands, run nothing")

    e = sub.add_parser("env", help="print the environment child processes need to find the wheel libraries")
    e.add_argument("--shell", choices=SHELLS, default=None)
    e.add_argument("--json", action="store_true")
    return p


def _version() -> str:
    from . import __version__

    return __version__


class _Formatter(logging.Formatter):
    """``gpuboot: warning: message`` -- log records read apart from the one error line."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.name.split('.')[0]}: {record.levelname.lower()}: {record.getMessage()}"



@contextlib.contextmanager
def _logging_to(stream: TextIO, verbosity: int) -> Iterator[None]:
    """Route log records (gpuboot's and its dependencies') to ``stream`` for
    the duration of one command; the library itself only has a NullHandler."""
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


class _OutputError(Exception):
    """Writing to standard output failed (a full disk, a closed descriptor): not the command's own error."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _Output(io.TextIOBase):
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
            raise _OutputError(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as exc:
            raise _OutputError(exc) from None

    def isatty(self) -> bool:
        try:
            return bool(self._stream.isatty())
        except (OSError, ValueError, AttributeError):
            return False

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"


def _silence(stream: Any) -> None:
    """Point ``stream``'s descriptor at devnull, so that the interpreter's final flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())


def main(argv: Optional[Sequence[str]] = None, *, stdout: Optional[TextIO] = None,
         stderr: Optional[TextIO] = None) -> int:
    """Run the ``gpuboot`` command; returns the exit code (0, 1, 2, 130, or
    141 when the reader of stdout went away, as for a program killed by SIGPIPE).
    A closed or failing standard output (``>&-``, ``> /dev/full``) is one line
    on standard error and exit code 1."""
    # Resolved per call: a default of sys.stdout would freeze the stream at import.
    raw_out = sys.stdout if stdout is None else stdout
    err_stream = sys.stderr if stderr is None else stderr
    stderr = err_stream if err_stream is not None else io.StringIO()  # `2>&-`: errors have nowhere to go
    if raw_out is None:
        print(f"{PROG}: error: standard output is closed; run it with an open standard output "
              f"(`{PROG} ... > FILE`)", file=stderr)
        return 1
    stdout = cast(TextIO, _Output(raw_out))
    parser = _parser()
    words = list(sys.argv[1:] if argv is None else argv)
    pip_args: List[str] = []
    if "--" in words:  # `gpuboot doctor --fix -- --find-links DIR`: pip's options
        cut = words.index("--")
        words, pip_args = words[:cut], words[cut + 1:]
    args = parser.parse_args(words)
    args.pip_args = pip_args
    if pip_args and not (args.command == "doctor" and args.fix):
        parser.error("options after `--` are pip's, for `gpuboot doctor --fix` only")
    if args.command == "doctor" and (args.yes or args.dry_run) and not args.fix:
        parser.error("--yes and --dry-run go with --fix")
    try:
        with _logging_to(stderr, args.verbose):
            code = _run(args, parser, stdout, stderr)
            stdout.flush()
            return code
    except BrokenPipeError:
        # `gpuboot doctor --json | head`: the reader left.
        _silence(raw_out)
        return 141
    except _OutputError as exc:
        print(f"{PROG}: error: cannot write to standard output: {exc.error}", file=stderr)
        _silence(raw_out)
        return 1


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser, stdout: TextIO, stderr: TextIO) -> int:
    try:
        if args.command == "transcribe":
            from ._cli_transcribe import run

            return run(args, stdout, stderr)
        if args.command == "doctor":
            return _doctor(args, stdout, stderr)
        if args.command == "env":
            return _env(args, stdout)
    except GpubootError as exc:
        print(for_the_command_line(f"{PROG}: error: {exc}".replace("\n  fix:", " -- fix:")), file=stderr)
        return 1
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=stderr)
        return 130
    parser.error(f"unknown command {args.command!r}")


def _doctor(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.fix:
        from ._cli_fix import run

        return run(args, args.pip_args, out, err)
    from .doctor import diagnose

    report = diagnose(consumer=args.consumer)
    if args.json:
        json.dump(report.to_dict(), out, indent=2)
        out.write("\n")
    else:
        out.write(report.render())
    return report.exit_code


def _env(args: argparse.Namespace, out: TextIO) -> int:
    from ._libs.platform import current_platform, library_path_variable
    from .shellenv import env_directories, render, snippets

    plat = current_platform()
    shell = args.shell or ("powershell" if plat == "win32" else "bash")
    dirs = env_directories(plat)
    if args.json:
        json.dump({"variable": library_path_variable(plat)[0], "directories": dirs,
                   "shell": shell, "command": render(shell, dirs, plat), **snippets(dirs, plat)}, out, indent=2)
        out.write("\n")
        return 0
    out.write(render(shell, dirs, plat) + "\n")
    for name, line in snippets(dirs, plat).items():
        out.write(f"# {name}: {line}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
