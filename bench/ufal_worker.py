"""ufal whisper_streaming's LocalAgreement-2 (``OnlineASRProcessor``) as its ``whisper_online_server.py`` drives
it, for the live bench (bench/live_peers.py): float32 16 kHz frames on stdin, one JSON line ``{"text": ...}`` on
stdout per committed text, ``online.finish()`` at end of input.

    python ufal_worker.py CHECKOUT MODEL_DIR

``CHECKOUT`` is a whisper_streaming checkout (its code is imported from there, never copied here); its
``FasterWhisperASR`` loads on CUDA float16 only, so ``CpuASR`` loads the same model int8 on the CPU and is
otherwise its class.  Like its server: each step takes all audio received by then, and waits for at least
``MIN_CHUNK`` s of it (``--min-chunk-size``'s default); buffer trimming by segments at 15 s (its default).
"""

import json
import queue
import sys
import threading

import numpy as np

MIN_CHUNK = 1.0
RATE = 16000


def main() -> None:
    checkout, model_dir = sys.argv[1], sys.argv[2]
    sys.path.insert(0, checkout)
    from faster_whisper import WhisperModel
    from whisper_online import FasterWhisperASR, OnlineASRProcessor

    class CpuASR(FasterWhisperASR):
        def load_model(self, modelsize=None, cache_dir=None, model_dir=None):
            return WhisperModel(model_dir or modelsize, device="cpu", compute_type="int8")

    asr = CpuASR(lan="en", model_dir=model_dir)
    asr.transcribe(np.zeros(RATE, dtype=np.float32))  # the server's --warmup-file: the first step is not slower
    online = OnlineASRProcessor(asr, None, buffer_trimming=("segment", 15))
    online.init()
    frames: queue.Queue = queue.Queue()

    def read() -> None:
        while True:
            data = sys.stdin.buffer.read1(65536)
            if not data:
                frames.put(None)
                return
            frames.put(data)

    threading.Thread(target=read, daemon=True).start()
    print("ready", flush=True)
    pending, ended = b"", False
    while not ended:
        got = [frames.get()]
        while True:  # everything received by now, and at least MIN_CHUNK s of it
            try:
                got.append(frames.get_nowait())
            except queue.Empty:
                if None in got or sum(len(g) for g in got if g) + len(pending) >= MIN_CHUNK * RATE * 4:
                    break
                got.append(frames.get())
        ended = None in got
        data = pending + b"".join(g for g in got if g)
        whole = len(data) - len(data) % 4
        pending = data[whole:]
        if whole:
            online.insert_audio_chunk(np.frombuffer(data[:whole], dtype="<f4").copy())
            out = online.process_iter()
            if out[0] is not None and out[2]:
                print(json.dumps({"text": out[2]}), flush=True)
    out = online.finish()
    if out[0] is not None and out[2]:
        print(json.dumps({"text": out[2]}), flush=True)


if __name__ == "__main__":
    main()
