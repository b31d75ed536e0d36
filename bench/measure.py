"""gpuboot benchmarks, the measuring half: every case run, the figures returned as one JSON-able dict.

Whole-process cases run each variant in a fresh interpreter, one warm-up then
``runs`` measured runs, interleaved round by round (so drift and noise hit
every variant alike), and report the median with the min-max.  Comparisons
are ratios of medians measured in the same run.  In-process cases (locate
scaling) report the median of many calls.  ``bench/render.py`` turns the
figures into docs/benchmarks.md; ``bench/run.py`` runs both.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rounds import ROOT, SAMPLE, col, interleaved, stats

sys.path.insert(0, str(ROOT / "tests"))  # helpers.py: the synthetic-site builder the tests use


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


def _wheel_paths(names: Sequence[str]) -> Optional[List[str]]:
    """The files ``locate(names, cuda_major=12)`` returns (what gpuboot preloads), or ``None`` when
    one of ``names`` is not installed."""
    code = f"""
        import json, gpuboot
        r = gpuboot.resolve({list(names)!r}, cuda_major=12)
        print(json.dumps([str(l.path) for l in r.libraries] if not r.missing else None))
    """
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True)
    paths = json.loads(out.stdout)
    return paths or None


#: The standard-library modules any ML application has imported before it calls
#: gpuboot; both arms of the driver-path cases import them first.
STDLIB = "ctypes, logging, dataclasses, pathlib, subprocess, typing, re, threading, hashlib, fnmatch"


#: What ensure() imports on a machine with a driver.
DRIVER_PATH = ("gpuboot, gpuboot.boot, gpuboot.consumers.installed, gpuboot._libs.needs, gpuboot._libs.resolve, "
               "gpuboot.dllpath, gpuboot._libs.linux, gpuboot.machine.readers, gpuboot.machine.metadata")


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


#: The preload sets: (gpuboot names, cuda-pathfinder names, torch-style glob (pattern, folder) pairs).
PRELOAD_SETS: Dict[str, Tuple[Tuple[str, ...], Tuple[str, ...], Tuple[Tuple[str, str], ...]]] = {
    "cudart+cublasLt+cublas": (("cudart", "cublas"), ("cudart", "cublasLt", "cublas"),
                               (("libcudart.so.*[0-9]", "cuda_runtime"), ("libcublasLt.so.*[0-9]", "cublas"),
                                ("libcublas.so.*[0-9]", "cublas"))),
    "cudart+cublasLt+cublas+cudnn": (("cudart", "cublas", "cudnn"), ("cudart", "cublasLt", "cublas", "cudnn"),
                                     (("libcudart.so.*[0-9]", "cuda_runtime"), ("libcublasLt.so.*[0-9]", "cublas"),
                                      ("libcublas.so.*[0-9]", "cublas"), ("libcudnn.so.*[0-9]", "cudnn"))),
}


def bench_preload(runs: int, case: str) -> Optional[Dict[str, Any]]:
    """One preload set: raw ``ctypes.CDLL`` of exactly the files gpuboot preloads (the physical limit),
    gpuboot's locate + preload, cuda-pathfinder and a torch-style glob.  ``None`` when not installed."""
    names, pathfinder_names, globs = PRELOAD_SETS[case]
    paths = _wheel_paths(names)
    if paths is None:
        return None
    timed = (f"import {STDLIB}\nimport time, json\nt = time.perf_counter()\n{{body}}\n"
             "dt = (time.perf_counter() - t) * 1e3\n")
    variants = {
        # Every file is tried in both arms; without a driver the cuDNN part that links libcuda.so.1
        # (libcudnn_engines_runtime_compiled) fails in both, and neither stops there.
        "raw ctypes.CDLL": timed.format(body=f"for p in {paths!r}:\n"
                                        "    try:\n        ctypes.CDLL(p, mode=ctypes.RTLD_GLOBAL)\n"
                                        "    except OSError:\n        pass"),
        "gpuboot locate+preload": timed.format(
            body=f"import gpuboot\ntry:\n    gpuboot.preload(gpuboot.locate({list(names)!r}, cuda_major=12))\n"
                 "except gpuboot.LibraryLoadError:\n    pass"),
        "cuda-pathfinder": timed.format(body="from cuda.pathfinder import load_nvidia_dynamic_lib\n"
                                        f"for n in {pathfinder_names!r}:\n    load_nvidia_dynamic_lib(n)"),
        "torch-style glob": timed.format(body=textwrap.dedent(f"""
            import glob
            def _find(lib, folder):
                for p in sys.path:
                    hits = glob.glob(os.path.join(p, "nvidia", folder, "lib", lib))
                    if hits:
                        return hits[0]
            for lib, folder in {globs!r}:
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
            from gpuboot._libs.owners import OWNER_CACHE as owners_cache
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


def measure_only(cases: Sequence[str], runs: int) -> Dict[str, Any]:
    """The named cases alone (``bench/run.py --only``): ``gpu_code``, ``hook``, ``subtitle_rules``,
    ``short_clips``, ``import``, ``ensure``, ``driver_path``, ``preload``, ``live`` (bench/measure_live.py: about
    20 minutes)."""
    from measure_gpu_code import bench_fatbin, bench_hook
    from measure_live import bench_live
    from measure_transcripts import bench_short_clips, bench_subtitle_rules

    table = {"gpu_code": lambda: bench_fatbin(5), "hook": lambda: bench_hook(max(runs, 40)),
             "subtitle_rules": bench_subtitle_rules, "short_clips": bench_short_clips,
             "import": lambda: bench_import(runs), "ensure": lambda: bench_ensure_no_driver(runs),
             "driver_path": lambda: bench_driver_path_import(runs),
             "preload": lambda: {case: bench_preload(max(runs, 40), case) for case in PRELOAD_SETS},
             "live": bench_live}
    unknown = [c for c in cases if c not in table]
    if unknown:
        raise SystemExit(f"unknown case(s) {', '.join(unknown)}; --only takes {', '.join(table)}")
    return {c: table[c]() for c in cases}


def measure(runs: int, whisper_runs: int, calls: int, sweep: bool,
            sweep_json: Path = ROOT / "docs" / "transcribe-sweep.json") -> Dict[str, Any]:
    """Every case; the result is what ``bench/render.py`` renders (JSON-able: dict keys are strings).
    ``sweep_json``: where the long-recording sweep is written (with ``sweep``) and read from."""
    started = time.time()
    import compileall

    compileall.compile_dir(str(ROOT / "src" / "gpuboot"), quiet=1)  # .pyc as an install has them
    data: Dict[str, Any] = {}
    print("import ...", flush=True)
    data["import"] = bench_import(runs)
    print("ensure without a driver ...", flush=True)
    data["ensure"] = bench_ensure_no_driver(runs)
    print("driver-path import ...", flush=True)
    data["driver_path"] = bench_driver_path_import(runs)
    data["preload"] = {}
    for case in PRELOAD_SETS:
        print(f"preload {case} ...", flush=True)
        data["preload"][case] = bench_preload(max(runs, 40), case)
    print("locate scaling ...", flush=True)
    data["locate"] = {str(n): row for n, row in bench_locate_scaling(calls).items()}
    print("whisper ...", flush=True)
    data["whisper"] = bench_whisper(whisper_runs)
    from measure_gpu_code import bench_fatbin, bench_hook
    from measure_transcripts import bench_many_files, bench_subtitle_rules, bench_subtitles

    print("GPU code (fatbin reading) ...", flush=True)
    data["gpu_code"] = bench_fatbin(5)
    print("start-up hook ...", flush=True)
    data["hook"] = bench_hook(max(runs, 40))

    print("subtitles ...", flush=True)
    data["subtitles"] = bench_subtitles(whisper_runs)
    print("subtitle rules on two recordings ...", flush=True)
    data["subtitle_rules"] = bench_subtitle_rules()
    print("many files ...", flush=True)
    data["many_files"] = bench_many_files(3)
    from measure_transcripts import bench_short_clips

    print("many short files ...", flush=True)
    data["short_clips"] = bench_short_clips()
    if sweep:
        from measure_transcripts import bench_long_subtitles

        print("long recording, subtitles on and off ...", flush=True)
        data["long_subtitles"] = bench_long_subtitles(2)
    if sweep:
        from measure_live import bench_live

        print("live transcription (about 20 minutes) ...", flush=True)
        data["live"] = bench_live(2)
    elif (ROOT / "docs" / "benchmarks.json").exists():  # kept from the last run that measured it
        data["live"] = json.loads((ROOT / "docs" / "benchmarks.json").read_text()).get("live")
    if sweep:
        print("long-recording sweep ...", flush=True)
        from transcribe_sweep import sweep as run_sweep

        model_dir = subprocess.run([sys.executable, "-c", "from gpuboot.whisper import embedded_model as e; "
                                    "print(e() or '')"], capture_output=True, text=True).stdout.strip()
        if model_dir:
            sweep_json.parent.mkdir(parents=True, exist_ok=True)
            sweep_json.write_text(json.dumps(run_sweep(model_dir), indent=2) + "\n")
    data["sweep"] = json.loads(sweep_json.read_text()) if sweep_json.exists() else None
    data["profile"] = importtime_profile()
    data["machine"] = {
        "when": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu(), "cpus": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {d: _version(d) for d in ("gpuboot", "ctranslate2", "faster-whisper", "nvidia-cublas-cu12",
                                              "nvidia-cuda-runtime-cu12", "nvidia-cudnn-cu12", "cuda-pathfinder")},
        "runs": runs, "calls": calls, "elapsed_s": round(time.time() - started),
    }
    return data
