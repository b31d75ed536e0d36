"""tests/test_serve.py's scenario against a server given on the command line, measured rather than asserted: two
WhisperLive 0.10.0 streaming clients at once on the tests' 50 s recording (words received / reference, WER), a
third sending garbage (what it is told, how it is closed), then two more clients and SIGTERM (exit code, seconds
to exit, processes left).  For WhisperLive's own server (bench/live_peers.py's environment) or gpuboot serve:

    python bench/whisperlive_scenario.py whisperlive|gpuboot
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]
DRIVE = ROOT / "tests" / "whisperlive_client" / "drive.py"
CLIENT = ROOT / ".venv-wlclient" / "bin" / "python"


def server(kind: str, mark: str) -> tuple[subprocess.Popen, int]:
    from live_peers import free_port, model_dir, python_of, wait_port

    env = {**os.environ, "GPUBOOT_TEST_MARK": mark, "HF_HUB_OFFLINE": "1"}
    if kind == "gpuboot":
        proc = subprocess.Popen([sys.executable, "-m", "gpuboot", "serve", "--port", "0", "-q"],
                                stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        return proc, int(re.search(r":(\d+) \(", proc.stdout.readline()).group(1))  # type: ignore[union-attr]
    port = free_port()
    code = ("import sys; from whisper_live.server import TranscriptionServer; TranscriptionServer().run('127.0.0.1', "
            "int(sys.argv[1]), backend='faster_whisper', faster_whisper_custom_model_path=sys.argv[2], "
            "single_model=True, max_clients=4)")
    proc = subprocess.Popen([str(python_of("whisperlive")), "-c", code, str(port), model_dir()],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wait_port(port, proc)
    return proc, port


def clients(mode: str, port: int, wav: Path, n: int, tmp: Path) -> list:
    out = []
    for _ in range(n):
        path = tmp / f"{uuid.uuid4().hex}.json"
        out.append((subprocess.Popen([str(CLIENT), str(DRIVE), mode, "127.0.0.1", str(port), str(wav), str(path)],
                                     cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), path))
    return out


def result(item: tuple, within: float = 400) -> dict:
    proc, path = item
    try:
        proc.wait(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        return {"hung": True}
    return json.loads(path.read_text()) if path.exists() else {"crashed": proc.returncode}


def main() -> int:
    from helpers import marked_processes
    from speech import wer
    from timed_speech import timed_recording

    import gpuboot
    from gpuboot.whisper.models import embedded_model

    kind = sys.argv[1]
    wav, times = timed_recording("live")
    reference = " ".join(s for _, s in times)
    model = gpuboot.load_whisper(str(embedded_model()), device="cpu")
    offline = wer(" ".join(s.text for s in gpuboot.transcribe(model, str(wav), language="en")[0]), reference)
    mark = uuid.uuid4().hex
    report: dict = {"server": kind, "offline_wer": round(offline, 3)}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        proc, port = server(kind, mark)
        pair = clients("stream", port, wav, 2, tmp)
        time.sleep(5)  # both streaming (a measurement script: the tests wait on the server's log instead)
        garbage = result(clients("garbage", port, wav, 1, tmp)[0], 120)
        report["garbage"] = {"messages": garbage.get("messages"), "close_code": garbage.get("close_code")}
        for i, item in enumerate(pair):
            r = result(item)
            text = " ".join(s["text"].strip() for s in r.get("transcript") or [])
            last = r.get("last_partial")
            if last and text and last["text"].strip() and not text.endswith(last["text"].strip()):
                report[f"client{i + 1}_open_segment"] = last["text"]
            report[f"client{i + 1}"] = {"words": len(text.split()), "reference_words": len(reference.split()),
                                        "share": round(len(text.split()) / len(reference.split()), 3),
                                        "wer": round(wer(text, reference), 3)}
        late = clients("stream", port, wav, 2, tmp)
        time.sleep(10)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
            report["sigterm"] = {"exit": proc.returncode, "seconds": round(time.monotonic() - t0, 2)}
        except subprocess.TimeoutExpired:
            report["sigterm"] = {"exit": None, "seconds": ">30 (killed)"}
            proc.kill()
            proc.wait()
        time.sleep(1)
        report["sigterm"]["left"] = len(marked_processes(mark))
        report["sigterm"]["clients"] = [sorted(result(item, 60).keys())[:4] for item in late]
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
