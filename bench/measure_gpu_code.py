"""gpuboot benchmarks: reading the GPU code consumers carry, and the start-up hook's cost per interpreter start.

* Fatbin reading (``gpuboot.binaries.fatbin.read_fatbin``): each consumer binary found (torch's ``libtorch_cuda.so``,
  the largest, from a CUDA torch environment when one is there), a fresh process per run (the file in the page
  cache, gpuboot's cache empty), against ``cuobjdump --list-elf --list-ptx`` on the same file.
* The hook: ``python -c pass`` in a fresh venv with and without ``gpuboot-hook.pth``, interleaved.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from rounds import ROOT, child, col, interleaved, stats

#: Where bench looks for PyPI's CUDA torch (tests/test_process.py builds it there under CI).
TORCH_ENVS = [os.environ.get("GPUBOOT_TORCH_ENV", ""), str(Path.home() / ".cache" / "gpuboot-tests" / "torch-2.14.1")]


def _binaries() -> Dict[str, str]:
    out: Dict[str, str] = {}
    ct2 = sorted(glob.glob(os.path.join(sys.prefix, "lib", "python*", "site-packages", "ctranslate2.libs",
                                        "libctranslate2*")))
    if ct2:
        out["ctranslate2 (libctranslate2)"] = ct2[0]
    for env in filter(None, TORCH_ENVS):
        found = sorted(glob.glob(os.path.join(env, "lib", "python*", "site-packages", "torch", "lib",
                                              "libtorch_cuda.so")))
        if found:
            out["torch 2.14.1 CUDA 13 (libtorch_cuda.so)"] = found[0]
            break
    return out


def _cuobjdump() -> Optional[str]:
    for entry in sys.path:
        path = Path(entry) / "nvidia" / "cu13" / "bin" / "cuobjdump"
        if entry and path.exists():
            return str(path)
    return None


def bench_fatbin(runs: int) -> Dict[str, Any]:
    """Per binary: its size, what it carries, gpuboot's read (fresh process) and cuobjdump's listing of it."""
    rows: Dict[str, Any] = {}
    tool = _cuobjdump()
    for label, path in _binaries().items():
        code = f"""
            import json, time
            from gpuboot.binaries.fatbin import read_fatbin
            t = time.perf_counter()
            f = read_fatbin({path!r})
            dt = (time.perf_counter() - t) * 1e3
            print(json.dumps({{"ms": dt, "entries": f.entries, "containers": f.containers, "carries": f.describe()}}))
        """
        results = [child(code) for _ in range(runs + 1)][1:]
        row = {"size_mb": os.path.getsize(path) / 1e6, "read": col(results, "ms"), "entries": results[0]["entries"],
               "containers": results[0]["containers"], "carries": results[0]["carries"]}
        if tool is not None:
            times: List[float] = []
            for _ in range(min(runs, 3)):
                t0 = time.perf_counter()
                subprocess.run([tool, "--list-elf", "--list-ptx", path], capture_output=True, check=False)
                times.append((time.perf_counter() - t0) * 1e3)
            row["cuobjdump"] = stats(times)
        rows[label] = row
    return rows


def bench_hook(runs: int) -> Optional[Dict[str, Any]]:
    """``python -c pass`` wall time in one fresh venv, with and without the hook's .pth (interleaved)."""
    work = Path(tempfile.mkdtemp(prefix="gpuboot-hook-bench-"))
    try:
        venv = work / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
        python = venv / "bin" / "python"
        purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                      capture_output=True, text=True, check=True).stdout.strip())
        (purelib / "00-src.pth").write_text(str(ROOT / "src") + "\n")
        import compileall

        compileall.compile_file(str(ROOT / "src" / "gpuboot_hook.py"), quiet=1)
        sys.path.insert(0, str(ROOT / "src"))
        from gpuboot.startup.hook import hook_line

        hook = purelib / "gpuboot-hook.pth"
        timings: Dict[str, List[float]] = {"without the hook": [], "with the hook": []}
        for i in range(runs + 1):
            for label in sorted(timings, key=lambda _: os.urandom(1)):
                if label == "with the hook":
                    hook.write_text(hook_line())
                elif hook.exists():
                    hook.unlink()
                t0 = time.perf_counter()
                subprocess.run([str(python), "-c", "pass"], check=True)
                if i:
                    timings[label].append((time.perf_counter() - t0) * 1e3)
        return {k: stats(v) for k, v in timings.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)


__all__ = ["bench_fatbin", "bench_hook", "interleaved"]
