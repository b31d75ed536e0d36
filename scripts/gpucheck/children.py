"""What runs in a fresh interpreter: one function per child, each returning a JSON-able answer.

A child is a part's view of the machine from a process that has loaded nothing
yet (the loader state, CUDA's reading of ``CUDA_VISIBLE_DEVICES`` and torch's
preload are per process).  torch, CuPy and CTranslate2 are imported only here,
never in the check's own process.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, List, Tuple

from .compare import normalise_uuid
from .views import cuda_count, cupy_views, gpuboot_views, torch_views


def _optional(name: str) -> Tuple[Any, str]:
    """``(module, "")``, or ``(None, why)`` when it is not installed or fails to import."""
    import importlib

    try:
        return importlib.import_module(name), ""
    except ImportError as exc:
        return None, f"{name} is not installed ({exc})"
    except Exception as exc:  # a broken install is evidence, not a crash of the part
        return None, f"import {name} failed: {type(exc).__name__}: {exc}"


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()[:2000]


# --------------------------------------------------------------------------- the children


def child_stub(arg: Dict[str, Any]) -> Dict[str, Any]:
    """Whether the libcuda the probe found says it is gpuboot's test stub (its ``gpuboot_test_stub_libcuda``
    symbol): a CUDA runtime cannot run on it, so comparisons with torch, CuPy and CTranslate2 need a GPU."""
    import ctypes

    try:
        return {"stub": hasattr(ctypes.CDLL(arg["path"]), "gpuboot_test_stub_libcuda")}
    except OSError as exc:
        return {"stub": False, "error": _error(exc)}


def child_driver(arg: Any) -> Dict[str, Any]:
    """torch's and the CUDA runtime's view of the driver."""
    out: Dict[str, Any] = {}
    torch, why = _optional("torch")
    if torch is None:
        out["torch_error"] = why
    else:
        out["torch"] = torch.__version__
        out["torch_cuda"] = torch.version.cuda
        out["torch_available"] = bool(torch.cuda.is_available())
        get = getattr(torch._C, "_cuda_getDeviceCount", None)
        out["torch_cuda_count"] = int(get()) if get is not None else None
        if out["torch_available"]:
            torch.cuda.init()
            out["torch_libcuda"] = [p for p in _maps() if os.path.basename(p).startswith("libcuda.so")]
    cupy, why = _optional("cupy")
    if cupy is None:
        out["cupy_error"] = why
    else:
        try:
            out["cuda_driver_version"] = int(cupy.cuda.runtime.driverGetVersion())
            out["cuda_runtime_version"] = int(cupy.cuda.runtime.runtimeGetVersion())
            out["cuda_count"] = cuda_count(cupy)
        except Exception as exc:
            out["cupy_error"] = _error(exc)
    return out


def child_devices(arg: Any) -> Dict[str, Any]:
    """NVML through gpuboot, torch and the CUDA runtime (CuPy), read in one process after the frameworks made
    their contexts (so the free memory each reads is the same)."""
    out: Dict[str, Any] = {}
    torch, why = _optional("torch")
    if torch is None:
        out["torch_error"] = why
    else:
        try:
            out["torch"] = torch_views(torch)
        except Exception as exc:
            out["torch_error"] = _error(exc)
    cupy, why = _optional("cupy")
    if cupy is None:
        out["cupy_error"] = why
    else:
        try:
            out["cupy"] = cupy_views(cupy)
        except Exception as exc:
            out["cupy_error"] = _error(exc)
    out["gpuboot"] = gpuboot_views()
    return out


def child_visible(arg: Any) -> Dict[str, Any]:
    """One ``CUDA_VISIBLE_DEVICES`` value (set by the parent): gpuboot's visible list, the CUDA runtime's
    (CuPy) and torch's count."""
    import gpuboot

    inv = gpuboot.discover()
    out: Dict[str, Any] = {"gpuboot": [d.uuid for d in inv.visible], "warnings": list(inv.warnings)}
    cupy, why = _optional("cupy")
    if cupy is None:
        out["cupy_missing"] = why
    else:
        try:
            n = cuda_count(cupy)
            out["cuda"] = [normalise_uuid(cupy.cuda.runtime.getDeviceProperties(i).get("uuid")) for i in range(n)]
        except cupy.cuda.runtime.CUDARuntimeError as exc:  # a code of driver_types.h' cudaError_t
            out["cuda_error"], out["cuda_status"] = _error(exc), getattr(exc, "status", None)
    torch, why = _optional("torch")
    if torch is not None:
        out["torch_count"] = int(torch.cuda.device_count())
        get = getattr(torch._C, "_cuda_getDeviceCount", None)
        out["torch_cuda_count"] = int(get()) if get is not None else None
    return out


def _maps() -> List[str]:
    paths: List[str] = []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(None, 5)
            if len(fields) == 6 and fields[5].startswith("/"):
                path = fields[5].strip()
                if path not in paths:
                    paths.append(path)
    return paths


def _torch_kernel(torch: Any) -> Dict[str, Any]:
    try:
        a = torch.arange(256 * 256, dtype=torch.float32, device="cuda").reshape(256, 256) / 65536
        value = float((a @ a).sum().item())
        torch.cuda.synchronize()
        return {"kernel": True, "value": value}
    except Exception as exc:
        return {"kernel": False, "kernel_error": _error(exc)}


def child_load(arg: Dict[str, Any]) -> Dict[str, Any]:
    """``ensure()`` before (or after) ``import torch`` and one kernel, then ``/proc/self/maps`` and
    ``check_process()``."""
    import gpuboot

    out: Dict[str, Any] = {"order": arg["order"]}
    torch: Any = None

    def with_torch() -> None:
        nonlocal torch
        torch, why = _optional("torch")
        if torch is None:
            out["torch_error"] = why
        else:
            out.update(_torch_kernel(torch))

    if arg["order"] == "torch-first":
        with_torch()
    t0 = time.perf_counter()
    report = gpuboot.ensure(consumers=arg.get("consumers"))
    out["ensure_ms"] = (time.perf_counter() - t0) * 1e3
    out["summary"] = report.summary()
    out["warnings"] = list(report.warnings)
    out["preloaded"] = [{"filename": r.library.filename, "path": str(r.library.path),
                         "loaded_path": str(r.loaded_path) if r.loaded_path else None, "error": r.error,
                         "already_loaded": r.already_loaded} for r in report.libraries]
    out["missing"] = [m.describe() for m in report.missing]
    if arg["order"] == "ensure-first":
        with_torch()
    out["maps"] = _maps()
    proc = gpuboot.check_process()
    out["check_process_ok"] = proc.ok
    out["check_process"] = [f.line() for f in proc.findings]
    out["check_process_libraries"] = [list(x) for x in proc.libraries]
    return out


def child_code(arg: Any) -> Dict[str, Any]:
    """gpuboot's GPU code verdicts for the chosen GPU, then each consumer's kernel: a torch matmul, a CuPy sort
    (thrust, from CuPy's own binary) and CTranslate2's ``get_supported_compute_types("cuda")``."""
    import gpuboot

    choice = gpuboot.select_device()
    out: Dict[str, Any] = {"device": choice.torch_device, "reason": choice.reason,
                           "verdicts": {c.consumer: {"kind": c.verdict.kind, "line": c.line()}
                                        for c in choice.gpu_code}}
    runs: Dict[str, Dict[str, Any]] = {}
    torch, why = _optional("torch")
    if torch is not None:
        runs["torch"] = _torch_kernel(torch)
    else:
        out["torch_error"] = why
    cupy, why = _optional("cupy")
    if cupy is not None:
        try:
            x = cupy.sort(cupy.arange(4096, 0, -1, dtype=cupy.int32))
            runs["cupy"] = {"kernel": bool(int(x[0]) == 1 and int(x[-1]) == 4096)}
        except Exception as exc:
            runs["cupy"] = {"kernel": False, "kernel_error": _error(exc)}
    else:
        out["cupy_error"] = why
    ct2, why = _optional("ctranslate2")
    if ct2 is not None:
        try:
            runs["ctranslate2"] = {"kernel": True, "types": sorted(ct2.get_supported_compute_types("cuda"))}
        except Exception as exc:
            runs["ctranslate2"] = {"kernel": False, "kernel_error": _error(exc)}
    else:
        out["ctranslate2_error"] = why
    out["runs"] = runs
    return out


def child_choice(arg: Dict[str, Any]) -> Dict[str, Any]:
    """``select_device()`` for each preference, torch's bf16 answer and CTranslate2's types, then memory while
    ``allocate`` bytes are held on cuda:0."""
    import gpuboot

    out: Dict[str, Any] = {"choices": {}}
    for prefer in ("auto", "speed", "accuracy"):
        c = gpuboot.select_device(prefer=prefer)
        out["choices"][prefer] = {"device": c.torch_device, "ct2_device": c.ct2_device, "torch_dtype": c.torch_dtype,
                                  "compute_type": c.compute_type, "reason": c.reason}
    ct2, why = _optional("ctranslate2")
    if ct2 is not None:
        try:
            out["ct2_types"] = sorted(ct2.get_supported_compute_types("cuda"))
        except Exception as exc:
            out["ct2_error"] = _error(exc)
    else:
        out["ct2_error"] = why
    torch, why = _optional("torch")
    if torch is None or not torch.cuda.is_available():
        out["torch_error"] = why or "torch.cuda.is_available() is False"
        return out
    out["bf16"] = bool(torch.cuda.is_bf16_supported())
    torch.cuda.init()
    torch.zeros(1, device="cuda")  # the context first, so both readings include it
    torch.cuda.synchronize()
    before = gpuboot.memory_info(0)
    free0, _ = torch.cuda.mem_get_info(0)
    size = min(int(arg["allocate"]), int(free0 * 0.8))
    held = torch.empty(size, dtype=torch.uint8, device="cuda")
    held.fill_(1)
    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info(0)
    info = gpuboot.memory_info(0)
    pressure = gpuboot.check_pressure(0)
    out["memory"] = {"total": info.total, "free": info.free, "torch_total": total, "torch_free": free,
                     "used_fraction": pressure.used_fraction, "allocated": size, "before_used": before.used}
    out["pressure"] = pressure.reason
    del held
    return out


def child_whisper(arg: Dict[str, Any]) -> Dict[str, Any]:
    """``load_whisper()`` (``device``/``compute_type`` as given) and ``gpuboot.transcribe`` of the recording, timed."""
    import gpuboot

    kwargs = {k: arg[k] for k in ("device", "compute_type") if arg.get(k)}
    t0 = time.perf_counter()
    model = gpuboot.load_whisper(arg["model"], **kwargs)
    load_s = time.perf_counter() - t0
    info = gpuboot.load_info(model)
    t0 = time.perf_counter()
    segments, tinfo = gpuboot.transcribe(model, arg["sample"], language="en")
    text = " ".join(s.text.strip() for s in segments)
    return {"device": info.device, "compute_type": info.compute_type, "reason": info.reason,
            "trail": [a.describe() for a in info.trail], "load_s": load_s,
            "transcribe_s": time.perf_counter() - t0, "duration_s": float(tinfo.duration), "text": text}


def child_model(arg: Dict[str, Any]) -> Dict[str, Any]:
    """A random-weights Whisper model from tiny.en's small files (``model.py``)."""
    from .model import build_random_whisper

    return build_random_whisper(arg["files"], arg["out"])


def child_timing(arg: Any) -> Dict[str, Any]:
    """The first ``ensure()`` and ``select_device()`` of a fresh process, the driver probe's own time, and each
    again (cached)."""
    t0 = time.perf_counter()
    import gpuboot

    out: Dict[str, Any] = {"import_ms": (time.perf_counter() - t0) * 1e3}
    for label, call in (("ensure", gpuboot.ensure), ("select_device", gpuboot.select_device)):
        for n in ("first", "again"):
            t0 = time.perf_counter()
            call()
            out[f"{label}_{n}_ms"] = (time.perf_counter() - t0) * 1e3
    from gpuboot.doctor import gather

    t0 = time.perf_counter()
    ctx = gather()
    out["gather_ms"] = (time.perf_counter() - t0) * 1e3
    out["probe_ms"] = ctx.probe.elapsed_ms if ctx.probe is not None else None
    out["pid"] = os.getpid()
    return out


CHILDREN: Dict[str, Callable[[Any], Dict[str, Any]]] = {
    "stub": child_stub, "driver": child_driver, "devices": child_devices, "visible": child_visible,
    "load": child_load, "code": child_code, "choice": child_choice, "whisper": child_whisper, "model": child_model,
    "timing": child_timing,
}
