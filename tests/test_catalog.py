"""The catalog against the file lists of real wheels on PyPI."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
from helpers import WHEEL_LISTS, install, machine

from gpuboot._libs import catalog as cat
from gpuboot._libs.resolve import locate  # the one that takes a machine (and so a platform)
from gpuboot._libs.wheels import install_command
from gpuboot.errors import UnknownLibraryError

# Files in NVIDIA wheels that gpuboot deliberately does not catalog: plug-ins
# and helpers that the library loads itself and no consumer loads by name
# (OpenCL ICD loader, nvrtc's builtins, CUPTI's profiling helpers, 32-bit
# cudart, NVIDIA's alternate nvrtc builds, cuFile's RDMA plug-in, cuDSS's
# communication/threading layers, NVSHMEM's bootstrap and transport
# plug-ins, cuTENSOR's multi-process build, nvcc's own tools).
UNCATALOGED = re.compile(
    r"(OpenCL|nvrtc-builtins|nvperf_|checkpoint|pcsamplingutil|cudart32|\.alt\.|cufile_rdma|cudss_commlayer|"
    r"cudss_mtlayer|nvshmem_bootstrap|nvshmem_transport|cutensorMp|nvptxcompiler|libnvptx|ptxas)")


def _catalog_names(platform: str) -> list[tuple[str, int, str]]:
    out = []
    for s in cat.CATALOG.values():
        for key in s.variants:
            for name in s.filenames(platform, key):
                out.append((s.name, key, name))
    return out


@pytest.mark.parametrize("wheel_file", sorted(WHEEL_LISTS))
def test_every_library_in_a_real_wheel_is_in_the_catalog(wheel_file: str) -> None:
    w = WHEEL_LISTS[wheel_file]
    names = _catalog_names(w.platform)
    libs = [f for f in w.libraries if not UNCATALOGED.search(f)]
    assert libs, f"{wheel_file} ships no library gpuboot catalogs"
    for rel in libs:
        base = rel.rsplit("/", 1)[-1]
        hits = [n for n in names if fnmatch.fnmatchcase(base, n[2])]
        assert hits, f"{base} from {wheel_file} is not in the catalog"


def _wheel_cuda_major(project: str, version: str) -> int:
    m = re.search(r"-cu(\d+)$", project)
    if m:
        return int(m.group(1))
    return 13  # CUDA 13 wheels dropped the suffix


@pytest.mark.parametrize("wheel_file", sorted(WHEEL_LISTS))
def test_catalog_maps_each_real_file_to_the_wheels_cuda_major(wheel_file: str) -> None:
    w = WHEEL_LISTS[wheel_file]
    major = _wheel_cuda_major(w.project, w.version)
    for rel in w.libraries:
        base = rel.rsplit("/", 1)[-1]
        if UNCATALOGED.search(base):
            continue
        for name, key, pattern in _catalog_names(w.platform):
            if not fnmatch.fnmatchcase(base, pattern):
                continue
            spec = cat.CATALOG[name]
            if spec.key == cat.KEY_CUDA:
                assert major in [k for k in spec.variants if any(
                    fnmatch.fnmatchcase(base, p) for p in spec.filenames(w.platform, k))], (base, major)
            elif spec.key == cat.KEY_CUDNN:
                assert int(w.version.split(".")[0]) == key
                assert rel.startswith("nvidia/cudnn/")


@pytest.mark.parametrize("wheel_file", sorted(WHEEL_LISTS))
def test_locate_finds_every_catalogued_file_of_a_real_wheel_layout_once(wheel_file: str, tmp_path: Path) -> None:
    """The real wheel's files and .dist-info reproduced in a site directory:
    locate() finds each catalogued library there, once, at the wheel's CUDA
    major (its directory layout is one locate searches)."""
    w = WHEEL_LISTS[wheel_file]
    site = install(tmp_path / "site", w)
    found = [lib for lib in locate(machine(search_paths=[str(site)], platform=w.platform)) if lib.source == "wheel"]
    by_path = {str(lib.path.relative_to(site)).replace("\\", "/"): lib for lib in found}
    assert len(by_path) == len(found), "a file was listed more than once"
    names = _catalog_names(w.platform)
    expected = [rel for rel in w.libraries if not UNCATALOGED.search(rel.rsplit("/", 1)[-1])
                and any(fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], n[2]) for n in names)]
    assert sorted(by_path) == sorted(expected)
    major = _wheel_cuda_major(w.project, w.version)
    for lib in found:
        spec = cat.CATALOG[lib.name]
        if spec.key == cat.KEY_CUDA:
            assert (lib.cuda_major, lib.major) == (major, major), lib
        else:
            assert lib.cuda_major == major, lib


def test_every_catalog_soname_was_seen_in_a_real_wheel() -> None:
    """No invented names: each fixed Linux/Windows name of a CUDA 12/13 or
    cuDNN variant appears in a recorded wheel (CUDA 11 and patterns aside,
    where fewer wheels were recorded)."""
    seen = {f.rsplit("/", 1)[-1] for w in WHEEL_LISTS.values() for f in w.libraries}
    unseen = []
    for s in cat.CATALOG.values():
        if s.key in (cat.KEY_DRIVER,):
            continue
        for key, variant in s.variants.items():
            if s.key == cat.KEY_CUDA and key == 11 and s.name not in ("cudart", "cublas", "cublasLt", "nvrtc"):
                continue
            for name in variant.linux + variant.windows:
                if "*" in name:
                    continue
                if name not in seen:
                    unseen.append(name)
    assert unseen == []


def test_dependencies_and_parts_name_catalog_entries() -> None:
    for s in cat.CATALOG.values():
        for dep in s.depends + s.parts + s.optional:
            assert dep in cat.CATALOG, (s.name, dep)
    assert cat.CATALOG["cublas"].depends == ("cublasLt",)
    assert cat.CATALOG["cudnn"].depends == ("cublasLt",) and cat.CATALOG["cudnn"].optional == ("nvrtc",)


@pytest.mark.parametrize(("name", "cuda", "version", "command"), [
    ("cublas", 12, None, "pip install nvidia-cublas-cu12"),
    ("cublas", 11, None, "pip install nvidia-cublas-cu11"),
    ("cublas", 13, None, "pip install nvidia-cublas"),
    ("cudart", 12, None, "pip install nvidia-cuda-runtime-cu12"),
    ("cudnn", 12, 9, "pip install 'nvidia-cudnn-cu12==9.*'"),
    ("cudnn", 12, 8, "pip install 'nvidia-cudnn-cu12==8.*'"),
    ("cudnn", 13, 9, "pip install 'nvidia-cudnn-cu13==9.*'"),
    ("nccl", 12, None, "pip install nvidia-nccl-cu12"),
])
def test_install_command_is_exact(name: str, cuda: int, version: int | None, command: str) -> None:
    assert install_command(name, cuda, version) == command


def test_driver_libraries_say_pip_cannot_help() -> None:
    assert "NVIDIA driver" in install_command("cuda", 12)


def test_unknown_library_lists_known_names() -> None:
    with pytest.raises(UnknownLibraryError, match="cublas") as err:
        cat.spec("cublass")
    assert "cublass" in str(err.value)
