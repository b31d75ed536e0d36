"""What installed consumers need, from their metadata: torch builds by their local tag and Requires-Dist, CPU
builds, bad versions (each row against its real wheel: tests/test_consumer_rows.py)."""

from __future__ import annotations

import pytest
from helpers import injected
from hypothesis import example, given
from hypothesis import strategies as st

from gpuboot.consumers.installed import installed_needs
from gpuboot.consumers.readers import cuda_version_of_tag, needs_of
from gpuboot.consumers.table import consumer
from gpuboot.machine.snapshot import current


@pytest.mark.parametrize(("version", "requires", "cuda"), [
    ("2.3.1+cu121", [], 12),
    ("2.1.0+cu118", [], 11),
    ("1.7.1+cu92", [], 9),
    ("1.8.1+cu101", [], 10),
    ("2.7.0+cu128", [], 12),
    ("2.9.0+cu130", [], 13),
    ("2.5.1", ["nvidia-cublas-cu12==12.4.5.8; platform_system == \"Linux\""], 12),
    ("2.9.0", ["nvidia-cublas==13.0.0.19; platform_system == \"Linux\""], 13),
])
def test_torch_builds(version: str, requires: list, cuda: int) -> None:
    need = needs_of(consumer("torch"), version, requires)
    assert need is not None and need.cuda_major == cuda


def test_cpu_builds_and_unknown_versions_need_nothing() -> None:
    assert needs_of(consumer("torch"), "2.13.0+cpu", []) is None
    assert needs_of(consumer("ctranslate2"), "not-a-version") is None
    assert consumer("somethingelse") is None


def test_installed_needs_reads_metadata_only() -> None:
    fake = {"ctranslate2": ("4.5.0", []), "torch": ("2.13.0+cpu", [])}
    with injected(metadata=fake):
        needs = installed_needs(current(), ["ctranslate2", "torch", "onnxruntime-gpu"])
    assert [(n.consumer, n.cuda_major, n.cudnn_major) for n in needs] == [("ctranslate2", 12, 9)]


@given(st.integers(1, 99), st.integers(0, 9))
@example(9, 2)
@example(10, 1)
@example(11, 8)
@example(12, 8)
@example(13, 0)
def test_a_build_tag_is_the_cuda_version_without_its_dot(major: int, minor: int) -> None:
    """CUDA's spelling: the last digit is the minor, all before it the major
    (+cu92 is 9.2 and +cu101 10.1, never CUDA 92 or 10 of a 3-digit rule)."""
    assert cuda_version_of_tag(f"{major}{minor}") == (major, minor)
    need = needs_of(consumer("torch"), f"2.0.0+cu{major}{minor}")
    assert need is not None and need.cuda_major == major
    assert f"(CUDA {major}.{minor})" in need.source


@pytest.mark.parametrize("digits", ["", "9", "012", "1\u0662"])
def test_tags_no_cuda_release_is_spelled_as_are_refused(digits: str) -> None:
    assert cuda_version_of_tag(digits) is None


def test_a_cuda_major_no_wheel_exists_for_gets_no_pip_command(tmp_path: object) -> None:
    """torch +cu101 needs CUDA 10: no nvidia-* wheel provides it, so the fix
    must not be `pip install nvidia-cuda-runtime` (the CUDA 13 wheel)."""
    from gpuboot._libs.needs import resolve_needs

    need = needs_of(consumer("torch"), "1.8.1+cu101")
    assert need is not None
    with injected(search_paths=[str(tmp_path)], platform="linux", ldconfig={}):
        plan = resolve_needs(current(), [need])
    fixes = {m.name: m.fix for m in plan.missing}
    assert "cudart" in fixes and all("pip install" not in f for f in fixes.values()), fixes
    assert "no pip wheel provides cudart for CUDA 10" in fixes["cudart"]
