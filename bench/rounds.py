"""gpuboot benchmarks, the rounds every case is measured in: a fresh interpreter per run, variants interleaved
round by round, medians with the min-max (``measure.py`` and ``measure_gpu_code.py`` use them)."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent


SAMPLE = ROOT / "samples" / "speech-en.wav"


Stats = Tuple[float, float, float]  # median, min, max


def stats(values: Sequence[float]) -> Stats:
    return statistics.median(values), min(values), max(values)


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
