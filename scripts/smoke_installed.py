"""Smoke checks of an installed gpuboot (a wheel in a fresh environment), run by noxfile.py on every Python.

Checks, each with a real outcome:
1. ``gpuboot`` is imported from this environment's site-packages, not from the
   source tree, and ``import gpuboot`` imports no heavy module;
2. ``ensure()`` on this machine (no driver: loads nothing);
3. ``locate(["cublas"])`` finds the real nvidia-cublas-cu12 files in this
   environment (CUDA 12), and ``preload()`` dlopens them;
4. ``gpuboot doctor --json`` validates against the schema shipped in the package;
5. ``gpuboot transcribe`` of the committed recording: word error rate within
   tests/speech.py's limit, segments ordered and inside the audio.

With ``--expect-av-conflict`` (an environment where av >= 19 was installed
on purpose): ``gpuboot transcribe`` must exit 1 with one line naming the
faster-whisper / av incompatibility and ``pip install 'av<19'``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from speech import SAMPLE, SAMPLE_SECONDS, WER_LIMIT, wer  # noqa: E402

PURELIB = Path(sysconfig.get_paths()["purelib"]).resolve()
BIN = Path(sys.executable).parent


def check(ok: bool, what: str) -> None:
    print(("ok     " if ok else "FAILED ") + what, flush=True)
    if not ok:
        sys.exit(1)


def gpuboot_cmd(*args: str) -> subprocess.CompletedProcess:
    exe = BIN / ("gpuboot.exe" if os.name == "nt" else "gpuboot")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=600)


def versions() -> str:
    names = ("numpy", "av", "ctranslate2", "faster-whisper", "nvidia-cublas-cu12")
    found = ", ".join(f"{n} {metadata.version(n)}" for n in names)
    return f"Python {sys.version.split()[0]}: {found}"


def expect_av_conflict() -> None:
    proc = gpuboot_cmd("transcribe", str(SAMPLE))
    lines = proc.stderr.strip().splitlines()
    check(proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr,
          f"av {metadata.version('av')}: one error line, exit 1 ({proc.returncode}: {proc.stderr.strip()})")
    check("incompatible" in lines[0] and "pip install 'av<19'" in lines[0] and "decoded as audio" not in lines[0],
          "the faster-whisper / av incompatibility is named, with its fix")


def main() -> None:
    print(versions(), flush=True)
    if "--expect-av-conflict" in sys.argv:
        expect_av_conflict()
        return
    code = ("import sys, gpuboot; print(gpuboot.__file__); "
            "print(' '.join(m for m in ('torch', 'faster_whisper', 'ctranslate2', 'pynvml', 'numpy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(BIN), check=True)
    where, heavy = [*out.stdout.splitlines(), ""][:2]
    check(Path(where).resolve().is_relative_to(PURELIB),
          f"gpuboot imported from the installed wheel ({where})")
    check(heavy == "", f"import gpuboot imports no heavy module ({heavy or 'none'})")

    import gpuboot

    report = gpuboot.ensure()
    if report.driver.present:
        check(report.ok, f"ensure(): {report.summary()}")
    else:
        check(not report.libraries, f"ensure() without a driver loads nothing ({report.summary()})")

    libs = gpuboot.locate(["cublas"])
    names = [lib.filename for lib in libs]
    check(names == ["libcublasLt.so.12", "libcublas.so.12"] if os.name != "nt" else bool(names),
          f"locate(['cublas']) -> {names}")
    check(all(lib.cuda_major == 12 and Path(lib.path).resolve().is_relative_to(PURELIB) for lib in libs),
          "both from this environment's nvidia-cublas-cu12 wheel, CUDA 12")
    loaded = gpuboot.preload(libs)
    check(all(r.ok for r in loaded), "preload() dlopened them")

    import jsonschema

    from gpuboot.doctor import json_schema

    proc = gpuboot_cmd("doctor", "--json")
    check(proc.returncode in (0, 1) and "Traceback" not in proc.stderr, f"doctor --json exit {proc.returncode}")
    jsonschema.validate(json.loads(proc.stdout), json_schema())
    check(True, "doctor --json validates against the schema shipped in the package")

    proc = gpuboot_cmd("transcribe", str(SAMPLE), "--json")
    check(proc.returncode == 0, f"transcribe exit {proc.returncode} {proc.stderr.strip()}")
    data = json.loads(proc.stdout)
    score = wer(data["text"])
    check(score <= WER_LIMIT, f"transcribe WER {score:.2f} <= {WER_LIMIT} ({data['text']!r})")
    starts = [s["start"] for s in data["segments"]]
    check(bool(starts) and starts == sorted(starts)
          and all(0 <= s["start"] < s["end"] <= data["duration_s"] + 0.5 for s in data["segments"])
          and abs(data["duration_s"] - SAMPLE_SECONDS) < 0.05,
          f"{len(starts)} segment(s) ordered, inside {data['duration_s']} s; {data['device']}/{data['compute_type']}")


if __name__ == "__main__":
    main()
