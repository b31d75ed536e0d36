"""Parts 1-4 of the check: the driver, the devices, ``CUDA_VISIBLE_DEVICES`` as CUDA reads it, loading.

Each part is a function ``(Check) -> PartResult``; ``PARTS`` (in ``jobs.py``) lists them in order.  What needs a
fresh interpreter runs in a child (``children.py``), one bounded child per part (one per shape in part 3, one per
import order in part 4).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any, List, Optional

from .compare import (
    VISIBLE_SHAPES,
    Preloaded,
    compare_devices,
    compare_loading,
    compare_visible,
    mig_shapes,
    normalise_uuid,
)
from .result import Check, PartResult, run_child, verdict
from .views import views

STUB_NOTE = "the libcuda found is gpuboot's test stub: no CUDA runtime runs on it"


def gpu_blocker(check: Check) -> str:
    """``""`` when CUDA answered on NVIDIA's own libcuda, else why what needs the GPU cannot be compared."""
    probe = check.facts.get("probe")
    if probe is None or not probe.answered:
        return f"CUDA did not answer (cuInit {probe.cu_init if probe else None})"
    return STUB_NOTE if check.facts.get("stub_libcuda") else ""


def _cuda_text(value: Optional[int]) -> str:
    return f"{value // 1000}.{value % 1000 // 10}" if isinstance(value, int) and value > 0 else "?"


def _nvidia_smi(evidence: List[str], problems: List[str], gpu_only: List[str], probe: Any, nvml_uuids: List[str]
                ) -> int:
    """``nvidia-smi``'s driver version, GPUs and CUDA version against the probe's; how many comparisons made."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        gpu_only.append("nvidia-smi: not on PATH")
        return 0
    try:
        rows = subprocess.run([smi, "--query-gpu=driver_version,name,uuid", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=60, check=True).stdout
        head = subprocess.run([smi], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        problems.append(f"nvidia-smi failed: {exc}")
        return 1
    table = [[c.strip() for c in line.split(",")] for line in rows.strip().splitlines() if line.strip()]
    evidence.append(f"nvidia-smi: {len(table)} GPU(s): " + "; ".join(", ".join(r) for r in table))
    versions = {r[0] for r in table if r}
    if probe.nvml_driver_version and versions != {probe.nvml_driver_version}:
        problems.append(f"driver version: probe (NVML) {probe.nvml_driver_version} vs nvidia-smi {sorted(versions)}")
    smi_uuids = sorted(normalise_uuid(r[2]) for r in table if len(r) > 2)
    if nvml_uuids and smi_uuids != sorted(nvml_uuids):
        problems.append(f"GPUs: gpuboot (NVML) {sorted(nvml_uuids)} vs nvidia-smi {smi_uuids}")
    m = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", head)
    if m:
        smi_cuda = f"{m.group(1)}.{m.group(2)}"
        evidence.append(f"nvidia-smi: CUDA Version {smi_cuda}")
        for label, value in (("cuDriverGetVersion", probe.cuda_driver_version),
                             ("nvmlSystemGetCudaDriverVersion_v2", probe.nvml_cuda_version)):
            if _cuda_text(value) != smi_cuda:
                problems.append(f"CUDA version: probe ({label} {value}) vs nvidia-smi {smi_cuda}")
    return 1


def part_driver(check: Check) -> PartResult:
    """1. The driver probe's answer (libcuda, cuInit, the count, NVML's versions) against nvidia-smi, torch and the
    CUDA runtime; doctor's driver finding ok and its exit 0 where CUDA answered."""
    from gpuboot.doctor import diagnose, gather

    report = diagnose(gather(consumers=check.facts.get("consumers")))
    probe = report.context.probe
    check.facts["probe"] = probe
    inv = report.context.inventory
    check.facts["inventory"] = inv
    if probe is None or not probe.anything:
        return verdict("no NVIDIA driver here", [f"probe: {probe.libcuda_error if probe else 'not asked'}"], [],
                       compared=0, skipped_because="no NVIDIA driver on this machine: nothing to compare")
    evidence = [f"probe ({probe.elapsed_ms:.0f} ms): libcuda {probe.libcuda} (version {probe.libcuda_version}), "
                f"cuDriverGetVersion {probe.cuda_driver_version} (CUDA {_cuda_text(probe.cuda_driver_version)}), "
                f"cuInit {probe.cu_init}, {probe.device_count} GPU(s); NVML {probe.nvml_lib} init {probe.nvml_init}, "
                f"driver {probe.nvml_driver_version}, CUDA {_cuda_text(probe.nvml_cuda_version)}; kernel module "
                f"{probe.kernel_module}; nodes {', '.join(probe.device_nodes) or 'none'}"]
    problems: List[str] = []
    gpu_only: List[str] = []
    compared = 1
    if probe.libcuda:
        stub = run_child(check, "stub", {"path": probe.libcuda}, timeout=30)
        check.facts["stub_libcuda"] = bool(stub.answer and stub.answer.get("stub"))
    if check.facts.get("stub_libcuda"):
        evidence.append(STUB_NOTE)
    drivers = [f for f in report.findings if f.id == "driver"]
    doctor_problems = [f"doctor: {f.title}" + (f" -- fix: {f.remedy}" if f.remedy else "") for f in report.problems]
    if not probe.answered:
        counted = "" if probe.device_count is None else f", {probe.device_count} GPU(s) counted"
        problems.append(f"CUDA did not answer (cuInit {probe.cu_init}{counted}) while "
                        f"{'NVML answers' if probe.nvml_answered else 'the driver is present'}")
        problems.extend(doctor_problems)
    else:
        if not drivers or drivers[0].severity != "ok":
            problems.append(f"doctor's driver finding is not ok: {[(f.severity, f.title) for f in drivers]}")
        else:
            consumers = check.facts.get("consumers")
            evidence.append(f"doctor (for {', '.join(consumers) if consumers else 'no consumer'}): exit "
                            f"{report.exit_code}; ok {drivers[0].title}")
        if report.exit_code != 0:
            problems.append(f"doctor exits {report.exit_code} where CUDA answered")
            problems.extend(doctor_problems)
        if probe.nvml_driver_version and probe.kernel_module and probe.nvml_driver_version != probe.kernel_module:
            problems.append(f"NVML driver {probe.nvml_driver_version} vs kernel module {probe.kernel_module}")
        if probe.device_count != len(inv.visible):
            problems.append(f"GPU count: cuDeviceGetCount {probe.device_count} vs gpuboot (NVML) {len(inv.visible)} "
                            "visible")
    compared += _nvidia_smi(evidence, problems, gpu_only, probe, [d.uuid for d in inv.devices if not d.is_mig])
    child = run_child(check, "driver")
    if child.answer is None:
        problems.append(child.error)
    else:
        a = child.answer
        evidence.append(f"torch {a.get('torch', '-')} (CUDA {a.get('torch_cuda')}): is_available "
                        f"{a.get('torch_available')}, CUDA count {a.get('torch_cuda_count')}; CUDA runtime (CuPy): "
                        f"driver {a.get('cuda_driver_version')}, runtime {a.get('cuda_runtime_version')}, count "
                        f"{a.get('cuda_count')}" + "".join(f"; {a[k]}" for k in ("torch_error", "cupy_error")
                                                           if k in a))
        if gpu_blocker(check):
            gpu_only.append(f"torch and the CUDA runtime against the probe ({gpu_blocker(check)})")
        else:
            for key, theirs, ours in (("torch_available", "torch.cuda.is_available()", True),
                                      ("torch_cuda_count", "torch's CUDA device count", probe.device_count),
                                      ("cuda_driver_version", "cudaDriverGetVersion", probe.cuda_driver_version),
                                      ("cuda_count", "cudaGetDeviceCount", probe.device_count)):
                if key not in a or a[key] is None:
                    gpu_only.append(f"{theirs}: " + a.get("torch_error" if "torch" in key else "cupy_error", "n/a"))
                elif a[key] != ours:
                    problems.append(f"{theirs} {a[key]} vs the probe's {ours}")
                else:
                    compared += 1
            if "torch_libcuda" in a:  # the libcuda the probe's loader resolved is the one torch's process maps
                compared += 1
                if [os.path.realpath(p) for p in a["torch_libcuda"]] != [os.path.realpath(probe.libcuda or "")]:
                    problems.append(f"libcuda: the probe's {probe.libcuda} vs torch's process maps "
                                    f"{a['torch_libcuda']}")
    return verdict(f"CUDA {'answered' if probe.answered else 'did not answer'}; {compared} comparison(s) made",
                   evidence, problems, gpu_only, compared)


def part_devices(check: Check) -> PartResult:
    """2. NVML (gpuboot) vs torch vs the CUDA runtime (CuPy): count, names, CC, UUIDs in CUDA ordinal order,
    total and free memory within 1 %."""
    probe = check.facts.get("probe")
    if probe is None or not probe.anything:
        return verdict("", [], [], compared=0, skipped_because="no NVIDIA driver on this machine")
    child = run_child(check, "devices")
    if child.answer is None:
        return verdict("the devices child failed", [], [child.error])
    a = child.answer
    nvml = views(a["gpuboot"])
    check.facts["gpus"] = [d.uuid for d in sorted(nvml, key=lambda d: d.ordinal)]
    check.facts["gpu_names"] = [d.name for d in sorted(nvml, key=lambda d: d.ordinal)]
    evidence = [f"gpuboot (NVML) cuda:{d.ordinal} {d.name} CC {d.cc[0]}.{d.cc[1]} {d.uuid} total {d.total} free "
                f"{d.free}" for d in nvml]
    problems: List[str] = []
    gpu_only: List[str] = []
    compared = 0
    if probe.answered:
        compared += 1
        if probe.device_count != len(nvml):
            problems.append(f"device count: gpuboot (NVML) {len(nvml)} vs cuDeviceGetCount {probe.device_count}")
    for key, theirs in (("torch", "torch"), ("cupy", "the CUDA runtime (CuPy)")):
        other = views(a.get(key))
        evidence += [f"{theirs} cuda:{d.ordinal} {d.name} CC {d.cc[0]}.{d.cc[1]} {d.uuid} total {d.total} free "
                     f"{d.free}" for d in other]
        if gpu_blocker(check):
            gpu_only.append(f"{theirs}: {gpu_blocker(check)}")
        elif key not in a:
            gpu_only.append(f"{theirs}: {a.get(key + '_error', 'not installed')}")
        else:
            compared += 1
            problems += compare_devices(nvml, other, theirs=theirs)
    return verdict(f"{len(nvml)} GPU(s) through NVML; {compared} comparison(s) made", evidence, problems, gpu_only,
                   compared, "no GPU to compare")


def part_visible(check: Check) -> PartResult:
    """3. ``CUDA_VISIBLE_DEVICES`` shapes, each in a fresh child: gpuboot's visible list vs the CUDA runtime's
    UUIDs (CuPy) and ``torch.cuda.device_count()``, and vs CUDA's documented rules."""
    gpus = list(check.facts.get("gpus") or [])
    if not gpus:
        return verdict("", [], [], compared=0, skipped_because="no GPU visible to NVML")
    inv = check.facts.get("inventory")
    migs = [(m.uuid, d.uuid, m.gpu_instance_id, m.compute_instance_id) for d in (inv.devices if inv else ())
            for m in d.mig_instances if m.gpu_instance_id is not None]
    shapes = [s for s in (*VISIBLE_SHAPES, *mig_shapes(migs)) if s.applies(gpus)]
    cuda_trusted = not gpu_blocker(check)
    evidence: List[str] = [f"{len(shapes)} shapes over {len(gpus)} GPU(s)" + ("" if migs else "; no MIG instances")]
    problems: List[str] = []
    gpu_only: List[str] = []
    values = [shape.value(gpus) for shape in shapes]
    # Independent processes: a few at a time where there are cores for them (a GPU machine), else one by one.
    with ThreadPoolExecutor(max_workers=max(1, min(4, (os.cpu_count() or 1) // 4))) as pool:
        children = list(pool.map(lambda v: run_child(check, "visible", env={"CUDA_VISIBLE_DEVICES": v},
                                                     timeout=120), values))
    for shape, value, child in zip(shapes, values, children):
        shown = "unset" if value is None else repr(value)
        if child.answer is None:
            problems.append(f"CUDA_VISIBLE_DEVICES={shown}: {child.error}")
            continue
        a = child.answer
        expect = shape.expect(gpus)
        cuda = a.get("cuda") if cuda_trusted else None
        if cuda_trusted and "cuda_error" in a:
            if expect == []:  # the rules hide every GPU, and CUDA refused to count any: the same answer
                cuda = []
            else:
                problems.append(f"CUDA_VISIBLE_DEVICES={shown} ({shape.label}): the CUDA runtime failed where "
                                f"the documented rules show {expect}: {a['cuda_error']}")
        if cuda is None and not gpu_only:
            gpu_only.append("CUDA's own reading of each shape (the CUDA runtime through CuPy): " +
                            (a.get("cupy_missing", "") if cuda_trusted else gpu_blocker(check)))
        evidence.append(f"{shape.label} ({shown}): gpuboot {a['gpuboot']}; CUDA "
                        f"{a.get('cuda', a.get('cuda_error', '-'))}; torch {a.get('torch_count', '-')}; the "
                        "documented rules: "
                        f"{'say nothing' if expect is None else expect}")
        problems += compare_visible(shape.label, value, expect, a["gpuboot"], cuda,
                                    a.get("torch_count") if cuda_trusted else None)
    return verdict(f"{len(shapes)} CUDA_VISIBLE_DEVICES shapes, each in a fresh process", evidence, problems,
                   gpu_only, len(shapes))


def part_loading(check: Check) -> PartResult:
    """4. ``ensure()`` then ``import torch`` + a kernel, and ``import torch`` then ``ensure()``, each in a fresh
    child: what gpuboot preloaded vs ``/proc/self/maps`` (one copy of each soname, gpuboot's), ``check_process()``."""
    probe = check.facts.get("probe")
    if probe is None or not probe.anything:
        return verdict("", [], [], compared=0, skipped_because="no NVIDIA driver: ensure() loads nothing")
    consumers = check.facts.get("consumers")
    evidence = [f"consumers: {', '.join(consumers) if consumers else 'none installed'}"]
    problems: List[str] = []
    gpu_only: List[str] = []
    for order in ("ensure-first", "torch-first"):
        child = run_child(check, "load", {"order": order, "consumers": consumers})
        if child.answer is None:
            problems.append(f"{order}: {child.error}")
            continue
        a = child.answer
        pre = [Preloaded(p["filename"], p["path"], p["loaded_path"], p["error"]) for p in a["preloaded"]]
        evidence.append(f"{order}: ensure() {a['ensure_ms']:.0f} ms: {a['summary']}; preloaded "
                        f"{', '.join(p.filename for p in pre) or 'nothing'}; check_process: "
                        f"{'ok' if a['check_process_ok'] else 'NOT ok'} ({len(a['check_process_libraries'])} "
                        "NVIDIA libraries mapped)")
        problems += [f"{order}: {p}" for p in compare_loading(pre, a["maps"])]
        problems += [f"{order}: ensure() misses {m}" for m in a["missing"]]
        if not a["check_process_ok"]:
            problems += [f"{order}: check_process: {line}" for line in a["check_process"]]
        if "torch_error" in a or gpu_blocker(check):
            gpu_only.append(f"{order}: a torch kernel ({a.get('torch_error') or gpu_blocker(check)})")
        elif not a.get("kernel"):
            problems.append(f"{order}: the torch kernel failed: {a.get('kernel_error')}")
        else:
            evidence.append(f"{order}: torch kernel ran")
    return verdict("ensure() before and after import torch", evidence, problems, gpu_only)
