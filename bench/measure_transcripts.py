"""gpuboot benchmarks: the transcript cases (subtitle cost, many files over workers), measured by bench/measure.py.

Both run the ``gpuboot transcribe`` command as a user does, in fresh processes,
interleaved round by round, on tests/timed_speech.py's recording (95 s of
espeak-ng speech with known sentence starts; needs espeak-ng and sox).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional


def _timed() -> Optional[Path]:
    try:
        from timed_speech import timed_recording
    except ImportError:
        return None
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        return None
    return timed_recording()[0]


def _stats(values: List[float]) -> List[float]:
    return [statistics.median(values), min(values), max(values)]


def bench_subtitles(runs: int) -> Optional[Dict[str, Any]]:
    """Transcription time (the JSON's timings_ms.transcribe) with word timings
    (the readable cues' default) and without (paragraph cues), same recording."""
    audio = _timed()
    if audio is None:
        return None
    variants = {"word timings (cues)": [], "no word timings": []}  # type: Dict[str, List[float]]
    for _ in range(runs):
        order = list(variants)
        random.shuffle(order)
        for name in order:
            flag = "--word-timestamps" if name.startswith("word") else "--no-word-timestamps"
            out = subprocess.run([sys.executable, "-m", "gpuboot", "transcribe", str(audio), "--json", "-q", flag],
                                 capture_output=True, text=True, check=True).stdout
            variants[name].append(json.loads(out)["timings_ms"]["transcribe"])
    return {"audio_s": 95.0, **{k: _stats(v) for k, v in variants.items()}}


def bench_many_files(runs: int, copies: int = 4) -> Optional[Dict[str, Any]]:
    """A folder of ``copies`` recordings: ``--workers 1`` against ``--workers auto``
    (whole command, seconds), as files per hour."""
    audio = _timed()
    if audio is None:
        return None
    folder = Path(tempfile.mkdtemp(prefix="gpuboot-bench-files"))
    try:
        files = []
        for i in range(copies):
            shutil.copy(audio, folder / f"meeting{i}.wav")
            files.append(str(folder / f"meeting{i}.wav"))
        variants = {"--workers 1": [], "--workers auto": []}  # type: Dict[str, List[float]]
        for r in range(runs):
            order = list(variants)
            random.shuffle(order)
            for name in order:
                out = folder / f"out-{r}-{name.split()[-1]}"
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "gpuboot", "transcribe", *files, *name.split(), "--output-dir",
                                str(out), "-q"], check=True, capture_output=True)
                variants[name].append(time.perf_counter() - t0)
        return {"files": copies, "audio_s_each": 95.0,
                **{k: _stats(v) for k, v in variants.items()}}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_long_subtitles(runs: int) -> Optional[Dict[str, Any]]:
    """The long-recording sweep's gpuboot row with subtitles on (word timings and
    readable cues) and off: RTF, WER, and the share of cues within 2 x 42
    characters and 7 s (bench/long_recording.py's 10-minute recording)."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        return None
    from long_recording import build, default_dir

    wav, ref = build(default_dir())
    code = """
import json, sys, time
sys.path.insert(0, {tests!r})
from speech import wer
import gpuboot
from gpuboot.whisper.models import embedded_model
from faster_whisper import decode_audio
audio = decode_audio({wav!r})
model = gpuboot.load_whisper(embedded_model())
t0 = time.perf_counter()
segments, _ = gpuboot.transcribe(model, audio, word_timestamps={words})
segments = list(segments)
dt = time.perf_counter() - t0
cues = gpuboot.make_subtitles(segments).cues
ok = [c for c in cues if len(c.lines) <= 2 and all(len(x) <= 42 for x in c.lines) and c.end - c.start <= 7.0]
print(json.dumps({{"rtf": dt / (len(audio) / 16000), "transcribe_s": dt, "cues": len(cues),
                  "within": len(ok) / max(1, len(cues)),
                  "wer": wer(" ".join(s.text for s in segments), open({ref!r}).read())}}))
"""
    tests = str(Path(__file__).resolve().parent.parent / "tests")
    rows: Dict[str, List[Dict[str, Any]]] = {"subtitles on": [], "subtitles off": []}
    for _ in range(runs):
        for name in random.sample(list(rows), len(rows)):
            src = code.format(tests=tests, wav=str(wav), ref=str(ref), words=name.endswith("on"))
            out = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, check=True).stdout
            rows[name].append(json.loads(out.strip().splitlines()[-1]))
    result: Dict[str, Any] = {}
    for name, rs in rows.items():
        result[name] = {k: _stats([r[k] for r in rs]) for k in ("rtf", "transcribe_s", "within", "wer", "cues")}
    return result


def bench_subtitle_rules() -> Optional[Dict[str, Any]]:
    """Both timed recordings (tests/timed_speech.py: separate sentences; long sentences with 0.3 s pauses),
    batched and sequential decoding of tiny.en on the CPU: transcription time, WER and the subtitle figures
    (tests/subtitle_metrics.py) of ``gpuboot.make_subtitles``' cues."""
    if _timed() is None:
        return None
    code = """
import json, sys, time
sys.path.insert(0, {tests!r})
from timed_speech import KINDS, timed_recording
from subtitle_metrics import measure
import gpuboot
from gpuboot.whisper.models import embedded_model
model = gpuboot.load_whisper(embedded_model(), device="cpu", batched={batched})
audio, starts = timed_recording({kind!r})
t0 = time.perf_counter()
segments, info = gpuboot.transcribe(model, str(audio), word_timestamps=True, language="en")
segments = list(segments)
dt = time.perf_counter() - t0
subs = gpuboot.make_subtitles(segments, info)
figures = measure(subs, starts, " ".join(KINDS[{kind!r}][0]), " ".join(s.text.strip() for s in segments))
print(json.dumps({{"transcribe_s": dt, "audio_s": info.duration, **figures}}))
"""
    tests = str(Path(__file__).resolve().parent.parent / "tests")
    out: Dict[str, Any] = {}
    for kind in ("separate", "long"):
        for mode, batched in (("batched", "'auto'"), ("sequential", "False")):
            src = code.format(tests=tests, kind=kind, batched=batched)
            proc = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, check=True)
            out[f"{kind}/{mode}"] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


_PLAIN_LOOP = """
import glob, json, sys
from faster_whisper import BatchedInferencePipeline, WhisperModel
folder, model_dir, dest, compute_type = sys.argv[1:5]
model = WhisperModel(model_dir, device="cpu", compute_type=compute_type)
pipeline = BatchedInferencePipeline(model)
texts = {}
for path in sorted(glob.glob(folder + "/*.wav")):
    segments, _ = pipeline.transcribe(path, batch_size=16)
    texts[path.rsplit("/", 1)[-1][:-4]] = " ".join(s.text.strip() for s in segments)
json.dump(texts, open(dest, "w"))
"""


def bench_short_clips(count: int = 240) -> Optional[Dict[str, Any]]:
    """Many short files (bench/short_clips.py: ``count`` espeak-ng clips of 3-10 s): files per hour and WER of a
    plain loop over the files with faster-whisper's ``BatchedInferencePipeline(batch_size=16)`` (int8, as
    gpuboot picks on a CPU, and faster-whisper's default type) against ``gpuboot transcribe FOLDER``
    (one process; ``--workers auto``), each a fresh process timed whole (start-up and model load included),
    arms in a random order, one run each."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        return None
    from long_recording import default_dir
    from short_clips import build
    from speech import wer

    folder = build(count, default_dir())
    model_dir = subprocess.run([sys.executable, "-c", "from gpuboot.whisper import embedded_model as e; "
                                "print(e() or '')"], capture_output=True, text=True, check=True).stdout.strip()
    if not model_dir:
        return None
    refs = {p.stem: p.read_text() for p in folder.glob("*.txt")}
    work = Path(tempfile.mkdtemp(prefix="gpuboot-bench-clips"))
    arms = {
        "faster-whisper loop, int8": ["plain", "int8"],
        "faster-whisper loop, default type": ["plain", "default"],
        "gpuboot transcribe FOLDER": [],
        "gpuboot transcribe FOLDER --workers auto": ["--workers", "auto"],
    }
    rows: Dict[str, Any] = {}
    try:
        for name in random.sample(list(arms), len(arms)):
            out = work / name.replace(" ", "_").replace(",", "")
            t0 = time.perf_counter()
            if arms[name][:1] == ["plain"]:
                dest = work / f"{out.name}.json"
                subprocess.run([sys.executable, "-c", _PLAIN_LOOP, str(folder), model_dir, str(dest), arms[name][1]],
                               check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
                seconds = time.perf_counter() - t0
                texts = json.loads(dest.read_text())
            else:
                subprocess.run([sys.executable, "-m", "gpuboot", "transcribe", str(folder), "--output-dir", str(out),
                                "--output-format", "txt", "-q", *arms[name]], check=True, capture_output=True)
                seconds = time.perf_counter() - t0
                texts = {p.stem: p.read_text() for p in out.glob("*.txt")}
            errors = [wer(texts.get(k, ""), ref) for k, ref in refs.items()]
            rows[name] = {"seconds": seconds, "files_per_hour": len(refs) * 3600 / seconds,
                          "wer": statistics.mean(errors), "missing": sum(1 for k in refs if k not in texts)}
        audio_s = sum(_wav_seconds(p) for p in folder.glob("*.wav"))
        return {"files": len(refs), "audio_s": audio_s, "arms": rows}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _wav_seconds(path: Path) -> float:
    import wave

    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()
