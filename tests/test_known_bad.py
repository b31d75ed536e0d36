"""Known-bad versions (doctor/checks_known.KNOWN_BAD): each row fires on the combination its source documents, with
the way out, and stays quiet one version past it.  Sites hold real wheel file lists (tests/data/wheels) whose
METADATA states the version under test; GPUs come from a fake NVML."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from fake_nvml import A100, H100, RTX_4090, RTX_5090, FakeNVML, gpu
from helpers import gathered, install, wheel
from probes import healthy

from gpuboot.doctor import Finding, diagnose
from gpuboot.doctor.checks_known import KNOWN_BAD, check_consumer_quirks, check_known_bad

B200 = ("NVIDIA B200", (10, 0), 180 * 2**30, 0x2901)


def site_with(tmp: Path, *wheels: Tuple[str, str, str]) -> Path:
    """A site holding each ``(project, list version prefix, stated version)`` wheel."""
    site = tmp / "site"
    for project, prefix, version in wheels:
        install(site, wheel(project, "linux", prefix))
        for meta in site.glob(f"{project.replace('-', '_')}-*.dist-info/METADATA"):
            meta.write_text(re.sub(r"^Version: .*$", f"Version: {version}", meta.read_text(), flags=re.M))
    return site


def findings(site: Path, gpus: Sequence[tuple], versions: Optional[Dict[str, str]] = None,
             consumers: Sequence[str] = ("ctranslate2",)) -> List[Finding]:
    table = {k: (v, []) for k, v in (versions or {"ctranslate2": "4.8.5"}).items()}
    ctx = gathered(consumers=list(consumers), platform="linux", environ={}, search_paths=[str(site)],
                   nvml=FakeNVML([gpu(g, i) for i, g in enumerate(gpus)], cuda_version=13000), driver=True,
                   metadata=table, loaded=[], initial_environ={}, wsl=False, cpu_threads=2, ldconfig={},
                   probe=healthy(cuda_version=13000, count=len(gpus)))
    return check_known_bad(ctx) + check_consumer_quirks(ctx)


def ids(found: List[Finding]) -> Dict[str, Finding]:
    return {f.id: f for f in found}


def test_cublas_12_8_to_13_1_on_blackwell_datacenter_gpus(tmp_path: Path) -> None:
    site = site_with(tmp_path, ("nvidia-cublas", "13", "13.1.0.3"))
    hit = ids(findings(site, [B200]))["cublas-tmem-double-free"]
    assert hit.severity == "warning" and "CC 10.0" in hit.title and "corrupt" in hit.title
    assert hit.actions and hit.actions[0].args == ("nvidia-cublas>=13.2",)
    assert "JAX" in hit.evidence[-1]
    assert "cublas-tmem-double-free" not in ids(findings(site, [H100]))  # CC 9.0: no tcgen05
    fixed = site_with(tmp_path / "fixed", ("nvidia-cublas", "13", "13.2.0.9"))
    assert "cublas-tmem-double-free" not in ids(findings(fixed, [B200]))


def test_cublas_12_on_blackwell_has_no_fixed_cuda_12_release(tmp_path: Path) -> None:
    site = site_with(tmp_path, ("nvidia-cublas-cu12", "12", "12.9.1.4"))
    hit = ids(findings(site, [B200]))["cublas-tmem-double-free"]
    assert hit.actions[0].kind == "host" and "13.2" in (hit.remedy or "")


def test_cudnn_9_10_0(tmp_path: Path) -> None:
    site = site_with(tmp_path, ("nvidia-cublas-cu12", "12", "12.9.1.4"), ("nvidia-cudnn-cu12", "9.28", "9.10.0.56"))
    hit = ids(findings(site, [RTX_4090]))["cudnn-9-10-0"]
    assert hit.severity == "problem" and hit.actions[0].args == ("nvidia-cudnn-cu12>=9.10.1",)
    ok = site_with(tmp_path / "ok", ("nvidia-cudnn-cu12", "9.28", "9.10.1.4"))
    assert "cudnn-9-10-0" not in ids(findings(ok, [RTX_4090]))


def test_old_cudnn_with_new_cublaslt_on_several_gpus(tmp_path: Path) -> None:
    site = site_with(tmp_path, ("nvidia-cublas-cu12", "12", "12.9.1.4"), ("nvidia-cudnn-cu12", "9.28", "9.8.0.87"))
    assert "cudnn-multi-gpu-matmul" not in ids(findings(site, [A100]))  # one GPU: plans are not shared
    hit = ids(findings(site, [A100, A100]))["cudnn-multi-gpu-matmul"]
    assert "2 GPUs" in hit.title and "wrong results" in hit.title
    older_cublas = site_with(tmp_path / "c", ("nvidia-cublas-cu12", "12", "12.8.4.1"),
                             ("nvidia-cudnn-cu12", "9.28", "9.8.0.87"))
    assert "cudnn-multi-gpu-matmul" not in ids(findings(older_cublas, [A100, A100]))


def test_ctranslate2_int8_on_rtx_50(tmp_path: Path) -> None:
    site = site_with(tmp_path, ("nvidia-cublas-cu12", "12", "12.9.1.4"))
    hit = ids(findings(site, [RTX_5090], {"ctranslate2": "4.6.0"}))["ctranslate2-int8-cc12"]
    assert "CUBLAS_STATUS_NOT_SUPPORTED" in hit.title and hit.actions[0].args == ("ctranslate2>=4.7.0",)
    assert "ctranslate2-int8-cc12" not in ids(findings(site, [RTX_5090], {"ctranslate2": "4.7.0"}))
    assert "ctranslate2-int8-cc12" not in ids(findings(site, [RTX_4090], {"ctranslate2": "4.6.0"}))


def test_cublas_before_12_8_on_cc_12(tmp_path: Path) -> None:
    site = site_with(tmp_path, ("nvidia-cublas-cu12", "12", "12.6.4.1"))
    hit = ids(findings(site, [RTX_5090]))["cublas-too-old-for-gpu"]
    assert hit.actions[0].args == ("nvidia-cublas-cu12>=12.8",) and "CUDA 12.8 release notes" in hit.evidence[-1]
    assert "cublas-too-old-for-gpu" not in ids(findings(site_with(tmp_path / "n", ("nvidia-cublas-cu12", "12",
                                                                                     "12.8.4.1")), [RTX_5090]))


def test_every_row_is_sourced_and_named_once() -> None:
    assert len({r.id for r in KNOWN_BAD}) == len(KNOWN_BAD)
    assert all(r.source and r.severity in ("warning", "problem") for r in KNOWN_BAD)


def test_doctor_reports_known_bad_versions_with_the_rest(tmp_path: Path) -> None:
    site = site_with(tmp_path, ("nvidia-cublas-cu12", "12", "12.6.4.1"))
    table = {"ctranslate2": ("4.8.5", [])}
    ctx: Any = gathered(consumers=["ctranslate2"], platform="linux", environ={}, search_paths=[str(site)],
                        nvml=FakeNVML([gpu(RTX_5090, 0)], cuda_version=12080), driver=True,
                        metadata=table, loaded=[], initial_environ={}, wsl=False, ldconfig={},
                        cpu_threads=2, probe=healthy(cuda_version=12080))
    report = diagnose(ctx)
    assert "cublas-too-old-for-gpu" in {f.id for f in report.problems}
