"""gpuboot benchmarks: live transcription (bench/live_harness.py), measured by bench/measure.py.

Each arm (a system and a number of concurrent streams) runs ``runs`` times, each run a fresh process
(``python bench/live_harness.py --arm NAME --streams N``) that streams bench/live_recording.py's 181 s
recording in 50 ms chunks paced by the wall clock into every stream at once; arms interleave round by round.
The offline ``gpuboot.transcribe()`` WER on the same audio is measured once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent

#: (system, streams) measured by default; the serve side adds its peers' rows to the harness's ARMS.
LIVE_ARMS: Tuple[Tuple[str, int], ...] = (("gpuboot", 1), ("gpuboot", 2), ("gpuboot", 4))


def _harness(args: List[str]) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gpuboot-live-bench") as tmp:
        out = Path(tmp) / "result.json"
        subprocess.run([sys.executable, str(HERE / "live_harness.py"), *args, "--out", str(out)], check=True,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=1800)
        result: Dict[str, Any] = json.loads(out.read_text())
        return result


def bench_live(runs: int = 2, arms: Sequence[Tuple[str, int]] = LIVE_ARMS) -> Optional[Dict[str, Any]]:
    """Every arm ``runs`` times (round by round) and the offline WER: ``{"offline_wer", "arms": {"gpuboot, 2
    streams": {"system", "streams", "runs": [run, ...]}}, "audio_s", "reference_words"}``."""
    if shutil.which("espeak-ng") is None:
        return None
    table: Dict[str, Dict[str, Any]] = {}
    offline: Optional[float] = None
    for r in range(runs):
        for system, streams in arms:
            label = f"{system}, {streams} stream{'s' if streams > 1 else ''}"
            print(f"  live: {label}, run {r + 1} of {runs} ...", flush=True)
            extra = ["--offline"] if offline is None else []
            result = _harness(["--arm", system, "--streams", str(streams), *extra])
            offline = result.get("offline_wer", offline)
            row = table.setdefault(label, {"system": system, "streams": streams, "runs": []})
            row["runs"].extend(result["runs"])
    first = next(iter(table.values()))["runs"][0]
    return {"offline_wer": offline, "arms": table, "audio_s": first["audio_s"],
            "reference_words": first["rows"][0]["reference_words"] if first["rows"] else None}
