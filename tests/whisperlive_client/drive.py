"""Drives WhisperLive 0.10.0's own client (PyPI, unchanged) against a server, as an app uses it, and writes what
it received to a JSON file.  Run with the client's interpreter (scripts/test makes ``.venv-wlclient``); this
folder is first on its sys.path, so ``import pyaudio`` finds the stand-in beside this file (pyaudio.py).

    python drive.py file   HOST PORT WAV OUT.json   TranscriptionClient(...)(WAV): its own file path, paced by it
    python drive.py stream HOST PORT WAV OUT.json   StreamingTranscriptionClient: 4096-sample chunks on the clock
    python drive.py garbage HOST PORT - OUT.json    valid options, then bytes that are no float32 audio
    python drive.py stall  HOST PORT WAV OUT.json   valid options, then audio on the clock, never reading

Every wait is bounded; the result file is written last (its presence means the run ended).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
import wave

CHUNK = 4096  # WhisperLive's client chunk, samples
RATE = 16000


def _samples(path: str):
    import numpy as np

    with wave.open(path, "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def _paced(samples):
    """Chunks of CHUNK samples, each released when the wall clock reaches its start in the audio."""
    t0 = time.monotonic()
    for i in range(0, len(samples), CHUNK):
        delay = t0 + i / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield samples[i:i + CHUNK]


def file_mode(host: str, port: int, wav: str) -> dict:
    from whisper_live.client import TranscriptionClient

    client = TranscriptionClient(host, port, lang="en", model="tiny.en", use_vad=True, mute_audio_playback=True,
                                 output_transcription_path=os.path.abspath("out.srt"))
    text = client(wav)
    inner = client.client
    return {"text": text, "transcript": inner.transcript, "waiting": inner.waiting,
            "server_error": inner.server_error}


def stream_mode(host: str, port: int, wav: str) -> dict:
    from whisper_live.client import StreamingTranscriptionClient

    committed, partials, errors, closed = [], [], [], []
    client = StreamingTranscriptionClient(
        host, port, lang="en", model="tiny.en", ready_timeout=120,
        on_committed_transcript=lambda text, segs: committed.append((time.monotonic(), segs[0])),
        on_partial_transcript=lambda text, segs: partials.append(text),
        on_error=lambda exc: errors.append(repr(exc)), on_close=lambda: closed.append(time.monotonic()))
    try:
        client.connect()
    except (RuntimeError, TimeoutError) as exc:
        client._client.close_websocket()
        return {"refused": str(exc), "waiting": client._client.waiting, "errors": errors}
    t0 = time.monotonic()
    sent = 0.0
    for chunk in _paced(_samples(wav)):
        if not client._client.recording:  # the server ended the session (DISCONNECT or close)
            break
        try:
            client.send_array(chunk)
        except Exception as exc:  # the socket closed under us
            errors.append(repr(exc))
            break
        sent += len(chunk) / RATE
    ended = time.monotonic()
    try:
        client.close(timeout=120)  # END_OF_AUDIO, then it waits for the server to close
    except Exception as exc:  # the server had ended the session: END_OF_AUDIO cannot be sent
        errors.append(repr(exc))
    return {"transcript": client.transcript, "last_partial": client.last_partial, "partials": len(partials),
            "errors": errors, "sent_s": sent, "t0": t0, "audio_end": ended, "closed": closed,
            "commit_times": [t for t, _ in committed], "server_error": client._client.server_error}


def _raw(host: str, port: int, options: dict):
    import websocket  # websocket-client: no background reader, so "never reading" is real

    ws = websocket.create_connection(f"ws://{host}:{port}", timeout=60,
                                     sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    ws.send(json.dumps(options))
    return ws


def _options() -> dict:
    return {"uid": str(uuid.uuid4()), "language": "en", "task": "transcribe", "model": "tiny.en",
            "use_vad": True}


def garbage_mode(host: str, port: int) -> dict:
    import websocket

    ws = _raw(host, port, _options())
    ready = json.loads(ws.recv())
    ws.send_binary(b"\xff\xfe\x00\x7f" * 1024)  # float32 NaNs: not audio
    messages, close = [], None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            opcode, data = ws.recv_data(control_frame=True)
        except (websocket.WebSocketConnectionClosedException, OSError):
            break
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            close = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            break
        if opcode == websocket.ABNF.OPCODE_TEXT:
            messages.append(json.loads(data))
    return {"ready": ready, "messages": messages, "close_code": close}


def stall_mode(host: str, port: int, wav: str) -> dict:
    ws = _raw(host, port, _options())
    t0, error = time.monotonic(), None
    for chunk in _paced(_samples(wav)):
        try:
            ws.send_binary(chunk.tobytes())
        except Exception as exc:  # the server closed the connection (OSError or websocket-client's own)
            error = repr(exc)
            break
    return {"send_error": error, "closed_after_s": time.monotonic() - t0}


def main() -> None:
    mode, host, port, wav, out = sys.argv[1:6]
    run = {"file": lambda: file_mode(host, int(port), wav), "stream": lambda: stream_mode(host, int(port), wav),
           "garbage": lambda: garbage_mode(host, int(port)), "stall": lambda: stall_mode(host, int(port), wav)}
    result = run[mode]()
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
