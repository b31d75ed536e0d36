"""How long ``gpuboot transcribe`` takes to exit after Ctrl-C, wherever the signal lands.

    python bench/stop_time.py FILE [FILE ...] [--after 6 10 14] [--workers N]

Starts ``gpuboot transcribe FILES -q`` (a fresh process each time, into a temporary directory), sends SIGINT
``--after`` seconds later (fixed delays on purpose: the point is to land anywhere, inside a CTranslate2 call
too) and prints, per delay, the seconds from the signal to the exit and the exit code, as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--after", type=float, nargs="+", default=[6.0, 10.0, 14.0])
    ap.add_argument("--workers", default="1")
    args = ap.parse_args()
    for delay in args.after:
        with tempfile.TemporaryDirectory(prefix="gpuboot-stop") as out:
            proc = subprocess.Popen([sys.executable, "-m", "gpuboot", "transcribe", *args.files, "--output-dir", out,
                                     "-q", "--workers", args.workers], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            try:
                time.sleep(delay)
                if proc.poll() is not None:
                    print(json.dumps({"after_s": delay, "ended_before": True, "code": proc.returncode}))
                    continue
                sent = time.monotonic()
                proc.send_signal(signal.SIGINT)
                err = proc.communicate(timeout=120)[1]
                print(json.dumps({"after_s": delay, "stop_s": round(time.monotonic() - sent, 2),
                                  "code": proc.returncode, "last_line": (err.strip().splitlines() or [""])[-1]}))
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
