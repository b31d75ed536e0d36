"""The parts in order, run one after another within the check's time; the report printed and written."""

from __future__ import annotations

import os
import platform
import sys
import time
import traceback
from importlib import metadata
from typing import Callable, List, Sequence, TextIO, Tuple

from .compare import safe_name
from .parts import part_devices, part_driver, part_loading, part_visible
from .parts_work import part_choice, part_code, part_timing, part_whisper
from .result import Check, OutOfTime, PartResult

Part = Tuple[str, Callable[[Check], PartResult]]

#: The parts, in the order they run (a later part reads what an earlier one learned: the probe, the GPUs).
PARTS: Tuple[Part, ...] = (
    ("1 driver", part_driver),
    ("2 devices", part_devices),
    ("3 CUDA_VISIBLE_DEVICES", part_visible),
    ("4 loading", part_loading),
    ("5 GPU code", part_code),
    ("6 choice and memory", part_choice),
    ("7 main job (Whisper)", part_whisper),
    ("8 timings", part_timing),
)

#: The CUDA 13 consumers of the GPU machine's image that parts 1 and 4 provide for (``ensure(consumers=...)``).
IMAGE_CONSUMERS = ("torch", "cupy-cuda13x", "jax-cuda13-plugin")


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def provided_consumers() -> List[str]:
    """The consumers parts 1 and 4 hold a healthy machine to (doctor exits 0, ``ensure()`` misses nothing): the
    image's CUDA 13 ones where any is installed, else every installed consumer gpuboot knows
    (``gpuboot.doctor.CONSUMER_ALIASES``) -- less ctranslate2 while CUDA 12 cuBLAS is not installed, the case part
    7 checks."""
    from gpuboot.doctor import CONSUMER_ALIASES

    image = [n for n in IMAGE_CONSUMERS if _installed(n)]
    if image:
        return image
    known = sorted({n for names in CONSUMER_ALIASES.values() for n in names})
    return [n for n in known if _installed(n) and not (n == "ctranslate2" and not _installed("nvidia-cublas-cu12"))]


def run_part(check: Check, function: Callable[[Check], PartResult]) -> PartResult:
    """One part; a part that raises is a disagreement carrying its traceback, never the check's crash; a part
    the check's time ran out for is skipped."""
    try:
        return function(check)
    except OutOfTime as exc:
        return PartResult("skipped", str(exc))
    except Exception:
        return PartResult("disagree", "the part crashed", (), (traceback.format_exc(),))


def render(name: str, result: PartResult, seconds: float) -> List[str]:
    lines = [f"part {name}: {result.status.upper()} -- {result.summary} ({seconds:.1f} s)"]
    lines += [f"    {line}" for e in result.evidence for line in str(e).splitlines()]
    lines += [f"    needs a GPU: {g}" for g in result.gpu_only]
    lines += [f"    DISAGREEMENT: {line}" if i == 0 else f"        {line}" for p in result.problems
              for i, line in enumerate(str(p).splitlines())]
    return lines


def header() -> List[str]:
    try:
        version = metadata.version("gpuboot")
    except metadata.PackageNotFoundError:
        import gpuboot

        version = gpuboot.__version__
    return [f"gpuboot {version} GPU check: python {platform.python_version()} ({sys.executable}), "
            f"{platform.platform()}, {os.cpu_count()} CPUs"]


def run(check: Check, out: TextIO, parts: Sequence[Part] = PARTS) -> Tuple[List[str], int]:
    """Run ``parts``, printing each as it finishes; the report's lines and the exit code (1 on a disagreement)."""
    lines = header()
    for line in lines:
        print(line, file=out, flush=True)
    results: List[Tuple[str, PartResult]] = []
    for name, function in parts:
        t0 = time.monotonic()
        result = run_part(check, function)
        results.append((name, result))
        block = render(name, result, time.monotonic() - t0)
        lines += block
        print("\n".join(block), file=out, flush=True)
    bad = [n for n, r in results if r.status == "disagree"]
    tail = ["", "| part | status | summary |", "|---|---|---|"]
    tail += [f"| {n} | {r.status} | {r.summary} |" for n, r in results]
    tail.append("needs a GPU: " + (", ".join(n for n, r in results if r.status == "needs-gpu") or "none"))
    tail.append("result: " + (f"FAIL ({len(bad)} part(s) disagree: {', '.join(bad)})" if bad else "ok"))
    lines += tail
    print("\n".join(tail), file=out, flush=True)
    return lines, 1 if bad else 0


def report_name(check: Check) -> str:
    """``gpu-check-<gpu>.txt``: the first visible GPU's name made safe (``-x2`` for two GPUs), or ``no-gpu``."""
    names = check.facts.get("gpu_names") or []
    if not names:
        return "gpu-check-no-gpu.txt"
    return f"gpu-check-{safe_name(names[0])}" + (f"-x{len(names)}" if len(names) > 1 else "") + ".txt"
