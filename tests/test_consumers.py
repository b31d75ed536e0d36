"""What installed consumers need, from their metadata: the CTranslate2 table, torch builds."""

from __future__ import annotations

import pytest

from gpuboot.consumers import installed_needs, needs_of


@pytest.mark.parametrize(("version", "cuda", "libs", "cudnn"), [
    ("3.24.0", 11, ("cublas", "cudnn"), 8),
    ("4.0.0", 12, ("cublas", "cudnn"), 8),
    ("4.4.0", 12, ("cublas", "cudnn"), 8),
    ("4.5.0", 12, ("cublas", "cudnn"), 9),
    ("4.6.2", 12, ("cublas", "cudnn"), 9),
    ("4.6.3", 12, ("cublas",), 9),
    ("4.8.5", 12, ("cublas",), 9),
])
def test_ctranslate2_table(version: str, cuda: int, libs: tuple, cudnn: int) -> None:
    need = needs_of("ctranslate2", version)
    assert need is not None
    assert (need.cuda_major, need.libraries, need.cudnn_major) == (cuda, libs, cudnn)
    assert "CHANGELOG" in need.source


@pytest.mark.parametrize(("version", "requires", "cuda"), [
    ("2.3.1+cu121", [], 12),
    ("2.1.0+cu118", [], 11),
    ("2.9.0+cu130", [], 13),
    ("2.5.1", ["nvidia-cublas-cu12==12.4.5.8; platform_system == \"Linux\""], 12),
    ("2.9.0", ["nvidia-cublas==13.0.0.19; platform_system == \"Linux\""], 13),
])
def test_torch_builds(version: str, requires: list, cuda: int) -> None:
    need = needs_of("torch", version, requires)
    assert need is not None and need.cuda_major == cuda


def test_cpu_builds_and_unknown_versions_need_nothing() -> None:
    assert needs_of("torch", "2.13.0+cpu", []) is None
    assert needs_of("ctranslate2", "not-a-version") is None
    assert needs_of("somethingelse", "1.0") is None


def test_installed_needs_reads_metadata_only() -> None:
    fake = {"ctranslate2": ("4.5.0", []), "torch": ("2.13.0+cpu", [])}
    needs = installed_needs(["ctranslate2", "torch", "onnxruntime-gpu"], metadata=fake.get)
    assert [(n.consumer, n.cuda_major, n.cudnn_major) for n in needs] == [("ctranslate2", 12, 9)]
