"""``gpuboot serve``'s websocket server: every client a stream of one ``LivePool``, spoken to in WhisperLive's
protocol (``protocol.py``), on ``websockets``' asyncio server.

One connection, one ``Client``: a reader (frames -> ``stream.feed`` on a worker thread -> ``Transcript``), and a
sender that sends the newest transcript whenever it changed.  What is bounded, and what happens at the bound:

- a frame: ``max_frame_bytes`` (the websocket layer closes with 1009 past it); frames queued unread: 16
  (``websockets``' ``max_queue``: past it the client's own TCP window fills and it waits);
- what a client has not read yet: one pending update, the newest (updates coalesce: each repeats the last
  completed segments and carries every completed segment the client has not been sent), and ``websockets``'
  write buffer (32 KiB);
- a reader that stalls: a send not drained within ``keepalive`` seconds, or a ping unanswered for
  ``keepalive`` seconds (pings every ``keepalive`` s), closes that client (1008 / 1011) and frees its stream;
  the others go on;
- a client that breaks the protocol (not JSON options first, no ``uid``, a bad field, a frame that is not
  audio, text other than ``END_OF_AUDIO``) gets one ``ERROR`` message and is closed (1008 / 1007);
- the options message: ``keepalive`` seconds; a session: ``max_connection_time`` (then ``DISCONNECT``);
- shutdown (``stop()``, SIGTERM): every client gets its transcript so far and ``DISCONNECT``, and is closed
  (1001) within ``SHUTDOWN_S``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import time
from typing import Any, Callable, Dict, List, Optional, Set, TextIO

from . import protocol
from .protocol import ProtocolError
from .segments import Transcript
from .settings import ServeSettings

__all__ = ["Server", "Stalled", "log_to", "SHUTDOWN_S", "CLOSE_TIMEOUT_S", "BACKLOG_S", "FINISH_S"]

#: Every client is closed this long after ``stop()`` at the latest, s.
SHUTDOWN_S = 3.0
#: A closing handshake waits this long for the client's answer, then the TCP connection is dropped, s.
CLOSE_TIMEOUT_S = 2.0
#: Audio a stream may hold not yet taken in by the pool's worker before the client's frames stop being read, s.
BACKLOG_S = 10.0
BACKLOG_POLL_S = 0.05
#: The longest ``finish()`` after ``END_OF_AUDIO`` (the rest of a 15 s buffer, in the pool's batches), s.
FINISH_S = 60.0


class Stalled(Exception):
    """A client did not read an update within ``keepalive`` seconds."""


class Client:
    """One connection's state (event-loop side only)."""

    def __init__(self, ws: Any, options: protocol.ClientOptions, stream: Any) -> None:
        self.ws, self.options, self.stream = ws, options, stream
        self.uid = options.uid
        self.transcript = Transcript(words=options.word_timestamps)
        self.dirty = asyncio.Event()
        self.final = False
        self.notice: Optional[str] = None  # the language message, once detected; "" once sent
        self.last_update: Optional[str] = None
        self.delivered = 0
        self.started = time.monotonic()

    def name(self) -> str:
        return f"client {self.uid[:12]}"


class Server:
    """The server over ``pool`` (a ``gpuboot.LivePool``): ``await run(on_listening)`` serves until ``stop()``.

    ``on_listening(host, port)`` is called once the socket is bound; ``log`` gets one line per client event
    (connected, refused, closed and why, finished with its latency).
    """

    def __init__(self, pool: Any, settings: ServeSettings, log: Callable[[str], None]) -> None:
        self.pool, self.settings, self.log = pool, settings, log
        self.clients: Dict[int, Client] = {}
        self._handlers: Set[asyncio.Task[Any]] = set()
        self._stop: Optional[asyncio.Event] = None
        self._threads = concurrent.futures.ThreadPoolExecutor(max_workers=settings.max_clients + 2,
                                                              thread_name_prefix="gpuboot-serve")

    def stop(self) -> None:
        """End every session (``DISCONNECT``, close 1001) and return from ``run``; safe from a signal handler
        installed with ``loop.add_signal_handler``."""
        if self._stop is not None:
            self._stop.set()

    async def run(self, on_listening: Callable[[str, int], None]) -> int:
        """Serve until ``stop()``; returns how many clients were connected when it came."""
        from websockets.asyncio.server import serve

        self._stop = asyncio.Event()
        s = self.settings
        server = await serve(self._handle, s.host, s.port, max_size=s.max_frame_bytes, max_queue=16,
                             ping_interval=s.keepalive, ping_timeout=s.keepalive, close_timeout=CLOSE_TIMEOUT_S,
                             open_timeout=s.keepalive)
        try:
            bound = server.sockets[0].getsockname()
            on_listening(str(bound[0]), int(bound[1]))
            await self._stop.wait()
            active = len(self.clients)
            if self._handlers:
                await asyncio.wait(set(self._handlers), timeout=SHUTDOWN_S + CLOSE_TIMEOUT_S)
            return active
        finally:
            server.close()
            try:
                await asyncio.wait_for(server.wait_closed(), CLOSE_TIMEOUT_S)
            except asyncio.TimeoutError:
                pass
            self._threads.shutdown(wait=False)

    async def _handle(self, ws: Any) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await self._connection(ws)
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _connection(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        assert self._stop is not None
        try:
            first = await asyncio.wait_for(ws.recv(), self.settings.keepalive)
        except asyncio.TimeoutError:
            await self._refuse(ws, None, f"no options message within {self.settings.keepalive:g} s: send the "
                                         f"JSON options object first", 1008)
            return
        except ConnectionClosed:
            return
        try:
            options = protocol.parse_options(first)
        except ProtocolError as exc:
            await self._refuse(ws, exc.uid, str(exc), 1008)
            return
        uid = options.uid
        if self._stop.is_set():
            await self._send_close(ws, [protocol.disconnect(uid)], 1001, "server shutting down")
            return
        if len(self.clients) >= self.settings.max_clients:
            self.log(f"client {uid[:12]} refused: {len(self.clients)} of {self.settings.max_clients} clients "
                     f"connected (WAIT)")
            await self._send_close(ws, [protocol.wait(uid, self._wait_minutes())], 1000, "server full")
            return
        from ..errors import GpubootError

        loop = asyncio.get_running_loop()
        holder: List[Client] = []

        def on_events(stream: Any, events: Any) -> None:  # the pool's worker thread: hand over to the loop
            if not loop.is_closed():  # after shutdown a last step's events have no session to go to
                try:
                    loop.call_soon_threadsafe(self._events, holder[0], events)
                except RuntimeError:  # the loop closed between the check and the call
                    pass

        try:
            stream = self.pool.open(language=options.language, on_events=on_events)
        except GpubootError as exc:  # the pool cannot serve another stream within its latency budget
            self.log(f"client {uid[:12]} refused: {exc} (WAIT)")
            await self._send_close(ws, [protocol.warning(uid, str(exc)), protocol.wait(uid, self._wait_minutes())],
                                   1000, "server full")
            return
        client = Client(ws, options, stream)
        holder.append(client)
        self.clients[id(ws)] = client
        self.log(f"{client.name()} connected ({len(self.clients)} of {self.settings.max_clients})")
        try:
            for line in options.warnings:
                await ws.send(protocol.warning(uid, line))
            await ws.send(protocol.ready(uid))
            await self._session(client)
        except ConnectionClosed:
            self.log(f"{client.name()} went away")
        finally:
            del self.clients[id(ws)]
            stream.close()  # quick: undecoded audio dropped, a finish() waiting on it returns

    async def _session(self, c: Client) -> None:
        """Run ``c`` until ``END_OF_AUDIO`` (its last words, then close 1000), a broken rule (``ERROR``), a
        stalled reader, the connection time limit or shutdown (``DISCONNECT``)."""
        assert self._stop is not None
        reader = asyncio.ensure_future(self._reader(c))
        sender = asyncio.ensure_future(self._sender(c))
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            done, _ = await asyncio.wait({reader, sender, stopping}, timeout=self.settings.max_connection_time or None,
                                         return_when=asyncio.FIRST_COMPLETED)
            failed = next((t for t in (reader, sender) if t in done and t.exception() is not None), None)
            if failed is None and reader in done:  # END_OF_AUDIO and the stream finished: the last update
                c.final = True
                c.dirty.set()
                await asyncio.wait({sender}, timeout=2 * self.settings.keepalive)
                if not sender.done():
                    failed = sender
                elif sender.exception() is not None:
                    failed = sender
                else:
                    self.log(f"{c.name()} finished: {self._summary(c)}")
                    await self._close(c.ws, 1000, "")
                    return
        finally:
            for task in (reader, sender, stopping):
                task.cancel()
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved: its outcome is handled below
        if failed is not None:
            await self._failed(c, None if not failed.done() else failed.exception())
            return
        why = "server shutting down" if stopping in done else "connection time limit"
        self.log(f"{c.name()} disconnected: {why}: {self._summary(c)}")
        items = c.transcript.update(c.options.send_last_n_segments, c.delivered)
        messages = [protocol.segments(c.uid, items)] if items else []
        await self._send_close(c.ws, [*messages, protocol.disconnect(c.uid)], 1001 if stopping in done else 1000,
                               why)

    async def _failed(self, c: Client, error: Optional[BaseException]) -> None:
        """The session of ``c`` ended by ``error`` (``None``: its last update was never read)."""
        from websockets.exceptions import ConnectionClosed

        if isinstance(error, ProtocolError):
            self.log(f"{c.name()} closed: {error}")
            await self._send_close(c.ws, [protocol.error(c.uid, str(error))], 1007, "not audio")
        elif error is None or isinstance(error, Stalled):
            self.log(f"{c.name()} closed: it stopped reading (an update unread for {self.settings.keepalive:g} s)")
            await self._close(c.ws, 1008, "client stopped reading")
        elif isinstance(error, ConnectionClosed) and error.sent is not None and error.sent.code == 1011:
            self.log(f"{c.name()} closed: it stopped reading (a ping unanswered for {self.settings.keepalive:g} s)")
        elif isinstance(error, ConnectionClosed):
            self.log(f"{c.name()} went away ({error})")
        else:  # the stream failed: the client is told in one line, the others go on
            line = f"the server could not transcribe this stream ({type(error).__name__}: {error})"
            self.log(f"{c.name()} closed: {line}")
            await self._send_close(c.ws, [protocol.error(c.uid, line)], 1011, "server error")

    async def _reader(self, c: Client) -> None:
        """Frames into the stream until ``END_OF_AUDIO``, then the stream finished (its events come through
        ``on_events``).  While the stream holds more than ``BACKLOG_S`` of audio not yet taken in, no frame is
        read: the client's own TCP window fills and its sends wait."""
        loop = asyncio.get_running_loop()
        while True:
            frame = await c.ws.recv()
            if protocol.is_end_of_audio(frame):
                break
            c.stream.feed(protocol.decode_frame(frame, c.options.audio_format))  # returns at once
            while c.stream.backlog > BACKLOG_S:
                await asyncio.sleep(BACKLOG_POLL_S)
        await loop.run_in_executor(self._threads, functools.partial(c.stream.finish, timeout=FINISH_S))
        c.transcript.close()

    def _events(self, c: Client, events: Any) -> None:
        """``on_events``, in the event loop: the transcript updated, the sender woken, the language told."""
        if c.transcript.apply(events):
            c.dirty.set()
        if c.options.language is None and c.notice is None and c.stream.language:
            c.notice = protocol.language(c.uid, c.stream.language, None)  # once, before the next update
            c.dirty.set()

    async def _sender(self, c: Client) -> None:
        """The newest transcript whenever it changed (updates coalesce); returns after the last one."""
        while True:
            await c.dirty.wait()
            c.dirty.clear()
            items = c.transcript.update(c.options.send_last_n_segments, c.delivered)
            made = c.transcript.completed
            messages = [c.notice] if c.notice else []
            update = protocol.segments(c.uid, items) if items else None
            if update is not None and update != c.last_update:  # a finish that changed nothing sends nothing
                messages.append(update)
                c.last_update = update
            for message in messages:
                try:
                    await asyncio.wait_for(c.ws.send(message), self.settings.keepalive)
                except asyncio.TimeoutError:
                    raise Stalled() from None
            if c.notice:
                c.notice = ""
            c.delivered = made
            if c.final and not c.dirty.is_set():
                return

    def _summary(self, c: Client) -> str:
        try:
            lat = c.stream.latency
            return (f"{lat.words} words, latency p50 {lat.p50:.2f} s, p95 {lat.p95:.2f} s, RTF {lat.rtf:.2f}, "
                    f"{time.monotonic() - c.started:.0f} s connected")
        except Exception:  # a stream that ended badly still gets its line
            return f"{time.monotonic() - c.started:.0f} s connected"

    def _wait_minutes(self) -> float:
        """Minutes until the oldest session reaches the connection time limit (WhisperLive's estimate)."""
        limit = self.settings.max_connection_time
        if not limit or not self.clients:
            return 0.0
        now = time.monotonic()
        return max(0.0, min(limit - (now - c.started) for c in self.clients.values())) / 60.0

    async def _refuse(self, ws: Any, uid: Optional[str], text: str, code: int) -> None:
        self.log(f"client {(uid or '?')[:12]} refused: {text}")
        await self._send_close(ws, [protocol.error(uid, text)], code, "protocol error")

    async def _send_close(self, ws: Any, messages: Any, code: int, reason: str) -> None:
        """``messages``, then the close, all within ``CLOSE_TIMEOUT_S`` s each (a client that does not read
        them is dropped)."""
        from websockets.exceptions import ConnectionClosed

        try:
            for message in messages:
                await asyncio.wait_for(ws.send(message), CLOSE_TIMEOUT_S)
        except (asyncio.TimeoutError, ConnectionClosed):
            pass
        await self._close(ws, code, reason)

    async def _close(self, ws: Any, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(ws.close(code, reason), CLOSE_TIMEOUT_S + 1)
        except Exception:  # a close that cannot complete: drop the connection
            transport = getattr(ws, "transport", None)
            if transport is not None:
                transport.abort()


def log_to(err: TextIO, quiet: bool) -> Callable[[str], None]:
    """One ``gpuboot serve: ...`` line per event on ``err`` (nothing when ``quiet``)."""
    def say(line: str) -> None:
        if not quiet:
            err.write(f"gpuboot serve: {line}\n")
            err.flush()
    return say
