"""gpuboot benchmarks: one command that measures every case and rewrites docs/benchmarks.md.

    python bench/run.py [--runs 15] [--sweep]

``bench/measure.py`` runs the cases and writes their figures to
docs/benchmarks.json; ``bench/render.py`` renders that file to
docs/benchmarks.md (``python bench/render.py`` re-renders without measuring).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import ROOT, measure
from render import render


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15, help="measured runs per whole-process case (>= 10)")
    ap.add_argument("--whisper-runs", type=int, default=5)
    ap.add_argument("--calls", type=int, default=300, help="in-process calls per locate case")
    ap.add_argument("--data", default=str(ROOT / "docs" / "benchmarks.json"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--sweep", action="store_true",
                    help="also run the long-recording sweep (bench/transcribe_sweep.py, ~10 minutes); without it "
                         "the last sweep's docs/transcribe-sweep.json is rendered")
    args = ap.parse_args()
    data = measure(args.runs, args.whisper_runs, args.calls, args.sweep)
    Path(args.data).write_text(json.dumps(data, indent=1) + "\n")
    Path(args.out).write_text(render(data))
    print(f"wrote {args.data} and {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
