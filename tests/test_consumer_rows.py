"""Every consumer row against its real wheel: the METADATA and the file list (its shared objects and .dist-info)
of wheels on PyPI, in tests/data/consumers/ (origins: ORIGINS there; refreshed with
``python tools/wheel_filelist.py --metadata PROJECT VERSION TAG tests/data/consumers``).

A site directory is built from each wheel's own files (empty, or stubs with the real sonames where what they
link matters) and its real METADATA, and the row is asked what it reads there: its name, its build's CUDA and
cuDNN majors, the binaries its patterns find, and its known-bad builds one version either side.  TensorRT's and
llama-cpp-python's CUDA builds are not on PyPI as wheels: their rows are checked against the source
distributions' PKG-INFO PyPI has, and against binaries that link what theirs link.
"""

from __future__ import annotations

import re
from email import message_from_string
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from fake_nvml import RTX_4090, RTX_5090, gpu
from helpers import compile_stub, gathered, machine

from gpuboot.consumers.binaries import installed_binaries
from gpuboot.consumers.installed import installed_need
from gpuboot.consumers.pairings import consumer_change
from gpuboot.consumers.table import CONSUMER_TABLE, consumer
from gpuboot.consumers.types import Consumer
from gpuboot.doctor.checks_known import check_consumer_quirks
from gpuboot.machine.metadata import canonical_name

DATA = Path(__file__).parent / "data" / "consumers"

#: Each captured wheel (or sdist): the row it belongs to, the CUDA and cuDNN majors its metadata (or name) says
#: the build needs (``None``: a CPU build), and the binaries the row's patterns must find in it -- read off the
#: METADATA and the file list by eye.
WHEELS: Dict[str, Tuple[str, Optional[int], Optional[int], Tuple[str, ...]]] = {
    "ctranslate2-4.8.5-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl":
        ("ctranslate2", 12, 9, ("ctranslate2.libs/libctranslate2-",)),
    "ctranslate2-4.8.5-cp311-cp311-win_amd64.whl": ("ctranslate2", 12, 9, ("ctranslate2/ctranslate2.dll",)),
    "ctranslate2-4.7.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl":
        ("ctranslate2", 12, 9, ("ctranslate2.libs/libctranslate2-",)),
    "ctranslate2-4.6.3-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl":
        ("ctranslate2", 12, 9, ("ctranslate2.libs/libctranslate2-",)),
    "ctranslate2-4.6.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl":
        ("ctranslate2", 12, 9, ("ctranslate2.libs/libctranslate2-",)),
    "ctranslate2-3.24.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl":
        ("ctranslate2", 11, 8, ("ctranslate2.libs/libctranslate2-",)),
    "onnxruntime_gpu-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl":
        ("onnxruntime-gpu", 12, 9, ("onnxruntime/capi/libonnxruntime_providers_cuda.so",)),
    "torch-2.9.1-cp311-cp311-manylinux_2_28_x86_64.whl": ("torch", 12, 9, ("torch/lib/libtorch_cuda.so",)),
    "torch-2.15.0-cp311-cp311-manylinux_2_28_x86_64.whl": ("torch", 13, 9, ("torch/lib/libtorch_cuda.so",)),
    "torch-2.9.1-cp311-cp311-win_amd64.whl": ("torch", None, None, ()),  # PyPI's Windows torch is the CPU build
    "torch-2.4.0-cp311-cp311-manylinux1_x86_64.whl": ("torch", 12, 9, ("torch/lib/libtorch_cuda.so",)),
    "torch-2.3.1-cp311-cp311-manylinux1_x86_64.whl": ("torch", 12, 8, ("torch/lib/libtorch_cuda.so",)),
    "tensorflow-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl":
        ("tensorflow", 12, 9, ("tensorflow/libtensorflow_framework.so.2", "tensorflow/libtensorflow_cc.so.2")),
    # (jax_plugins/xla_cuda12/xla_cuda_plugin.so, the row's other pattern, is jax-cuda12-pjrt's: found when that
    # distribution is installed beside it)
    "jax_cuda12_plugin-0.12.0.1-cp312-cp312-manylinux_2_27_x86_64.whl":
        ("jax-cuda12-plugin", 12, 9, ("jax_cuda12_plugin/_linalg.so",)),
    "jax_cuda13_plugin-0.12.1-cp312-cp312-manylinux_2_27_x86_64.whl":
        ("jax-cuda13-plugin", 13, 9, ("jax_cuda13_plugin/_linalg.so",)),
    "cupy_cuda12x-14.2.0-cp311-cp311-manylinux2014_x86_64.whl":
        ("cupy-cuda12x", 12, None, ("cupy/cuda/thrust.", "cupy/cuda/cub.", "cupy_backends/cuda/libs/cublas.")),
    "cupy_cuda13x-14.2.0-cp311-cp311-manylinux2014_x86_64.whl":
        ("cupy-cuda13x", 13, None, ("cupy/cuda/thrust.", "cupy/cuda/cub.", "cupy_backends/cuda/libs/cublas.")),
    "tensorrt_cu12_libs-11.4.0.106.tar.gz": ("tensorrt-cu12-libs", 12, None, ()),
    "tensorrt_cu13_libs-11.4.0.106.tar.gz": ("tensorrt-cu13-libs", 13, None, ()),
    "llama_cpp_python-0.3.36.tar.gz": ("llama-cpp-python", None, None, ()),  # its CUDA need is what it links
}


def metadata(wheel: str) -> str:
    path = DATA / (f"{wheel}.PKG-INFO" if wheel.endswith(".tar.gz") else f"{wheel}.METADATA")
    return path.read_text(encoding="utf-8")


def files(wheel: str) -> List[str]:
    path = DATA / f"{wheel}.txt"
    return [line for line in path.read_text().splitlines() if line] if path.exists() else []


def install(site: Path, wheel: str) -> Path:
    """The wheel's files (empty) and its .dist-info (the real METADATA, a RECORD of its files) under ``site``."""
    msg = message_from_string(metadata(wheel))
    listed = files(wheel)
    info = next((f.split("/", 1)[0] for f in listed if ".dist-info/" in f),
                f"{re.sub(r'[-.]', '_', msg['Name'])}-{msg['Version']}.dist-info")
    for rel in listed:
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not rel.startswith(info + "/"):
            path.write_bytes(b"")
    (site / info).mkdir(parents=True, exist_ok=True)
    (site / info / "METADATA").write_text(metadata(wheel), encoding="utf-8")
    (site / info / "RECORD").write_text("".join(f"{f},,\n" for f in listed))
    return site


def row_of(name: str) -> Consumer:
    row = consumer(name)
    assert row is not None, name
    return row


def test_every_row_has_real_wheel_data_and_its_origin() -> None:
    origins = (DATA / "ORIGINS").read_text()
    assert {name for name, *_ in WHEELS.values()} == {row.name for row in CONSUMER_TABLE}
    for wheel in WHEELS:
        assert f"{wheel} sha256=" in origins, wheel
        assert metadata(wheel), wheel


@pytest.mark.parametrize("wheel", sorted(WHEELS))
def test_a_row_is_named_as_its_wheel_names_itself(wheel: str) -> None:
    name = message_from_string(metadata(wheel))["Name"]
    assert canonical_name(name) == WHEELS[wheel][0]


@pytest.mark.parametrize("wheel", sorted(WHEELS))
def test_the_row_reads_the_build_off_the_wheels_metadata(wheel: str, tmp_path: Path) -> None:
    name, cuda, cudnn, _binaries = WHEELS[wheel]
    site = install(tmp_path / "site", wheel)
    need = installed_need(machine(sites=[str(site)], platform="win32" if "win_amd64" in wheel else "linux"),
                          row_of(name))
    if cuda is None:
        assert need is None, need
        return
    assert need is not None and (need.cuda_major, need.cudnn_major) == (cuda, cudnn), need
    assert need.version == message_from_string(metadata(wheel))["Version"] and need.source


@pytest.mark.parametrize("wheel", sorted(w for w in WHEELS if files(w)))
def test_the_rows_patterns_find_the_binaries_of_its_wheel(wheel: str, tmp_path: Path) -> None:
    name, _cuda, _cudnn, expected = WHEELS[wheel]
    site = install(tmp_path / "site", wheel)
    version, found = installed_binaries(machine(sites=[str(site)]), row_of(name))
    rel = sorted(Path(f).relative_to(site.resolve()).as_posix() for f in found)
    assert version is not None
    assert all(any(r.startswith(e) for r in rel) for e in expected), rel
    assert all(any(r.startswith(e) for e in expected) for r in rel), rel  # nothing else


@pytest.mark.parametrize("wheel", sorted(w for w, v in WHEELS.items() if files(w) and v[0] not in (
    "jax-cuda12-plugin", "jax-cuda13-plugin")))
def test_the_hook_watches_an_import_name_the_wheel_installs(wheel: str) -> None:
    """The start-up hook runs before the first import of a row's import names: the wheel installs that package
    (JAX's plugins are imported by jax, a distribution of their own)."""
    tops = {f.split("/", 1)[0] for f in files(wheel)}
    assert set(row_of(WHEELS[wheel][0]).imports) & tops


def test_cudnn_is_optional_from_ctranslate2_4_6_3_and_the_upgrade_comes_from_that_rule(tmp_path: Path) -> None:
    ct2 = row_of("ctranslate2")
    needs = {}
    for version, wheel in (("4.6.2", "ctranslate2-4.6.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"),
                           ("4.6.3", "ctranslate2-4.6.3-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl")):
        needs[version] = installed_need(machine(sites=[str(install(tmp_path / version, wheel))]), ct2)
    assert needs["4.6.2"] is not None and "cudnn" in needs["4.6.2"].libraries
    assert needs["4.6.3"] is not None and "cudnn" not in needs["4.6.3"].libraries
    assert "cudnn" in needs["4.6.3"].optional and "4.6.3" in needs["4.6.3"].source
    newest = ct2.newest()
    assert newest is not None and ct2.requirement_of(newest) == "ctranslate2>=4.6.3"
    first = ct2.first_without("cudnn")
    assert first is not None and ct2.requirement_of(first) == "ctranslate2>=4.6.3"


def _quirk_ids(ct2_wheel: str, gpus: list, tmp_path: Path, *, links: Optional[str] = None) -> List[str]:
    site = install(tmp_path / "site", ct2_wheel)
    if links is not None:  # the build's own library, linking cuBLAS of that major (what its NEEDED names)
        lib = next(site.glob("ctranslate2.libs/libctranslate2-*"))
        compile_stub(lib.parent / links, links)
        lib.unlink()
        compile_stub(lib, "libctranslate2.so.4", [links])
    ctx = gathered(consumers=["ctranslate2"], sites=[str(site)], search_paths=[str(site)], ldconfig={},
                   nvml=__import__("fake_nvml").FakeNVML([gpu(g, i) for i, g in enumerate(gpus)]), environ={})
    return [f.id for f in check_consumer_quirks(ctx)]


CT2_463 = "ctranslate2-4.6.3-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"
CT2_470 = "ctranslate2-4.7.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"
CT2_485 = "ctranslate2-4.8.5-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"


def test_the_int8_on_cc_12_quirk_one_version_either_side(tmp_path: Path) -> None:
    """ctranslate2 < 4.7 fails int8 GEMMs on CC 12.x: 4.6.3 (the last before) is reported on an RTX 5090, 4.7.0
    (the fix) is not, and neither is 4.6.3 on an RTX 4090 (CC 8.9)."""
    assert "ctranslate2-int8-cc12" in _quirk_ids(CT2_463, [RTX_5090], tmp_path / "a")
    assert "ctranslate2-int8-cc12" not in _quirk_ids(CT2_470, [RTX_5090], tmp_path / "b")
    assert "ctranslate2-int8-cc12" not in _quirk_ids(CT2_463, [RTX_4090], tmp_path / "c")


def test_the_int8_quirk_is_the_one_precision_avoids_either_side(tmp_path: Path) -> None:
    from helpers import injected

    from gpuboot.select import select_device

    chosen = {}
    for label, wheel in (("4.6.3", CT2_463), ("4.7.0", CT2_470)):
        site = install(tmp_path / label, wheel)
        with injected(sites=[str(site)], nvml=__import__("fake_nvml").FakeNVML([gpu(RTX_5090, 0)], cuda_version=12080),
                      ask_consumers=False):
            chosen[label] = select_device(prefer="speed", environ={})
    assert chosen["4.6.3"].compute_type == "float16" and "#1865" in chosen["4.6.3"].reason
    assert chosen["4.7.0"].compute_type == "int8_float16"


def test_the_cublas_13_quirk_one_build_either_side(tmp_path: Path) -> None:
    """int8_float16 crashes in cuBLAS 13 on CC 12.0: a build whose library links libcublas.so.13 is reported on an
    RTX 5090, the same version linking libcublas.so.12 is not."""
    assert "ctranslate2-int8-cublas13" in _quirk_ids(CT2_485, [RTX_5090], tmp_path / "13", links="libcublas.so.13")
    assert "ctranslate2-int8-cublas13" not in _quirk_ids(CT2_485, [RTX_5090], tmp_path / "12",
                                                         links="libcublas.so.12")


def test_the_cudnn_pairing_one_torch_version_either_side(tmp_path: Path) -> None:
    """ctranslate2 4.5+ needs cuDNN 9; torch 2.3.1 pins cuDNN 8 (its real Requires-Dist): the fix is the pairing
    ctranslate2 4.4.0.  torch 2.4.0 pins cuDNN 9: no pairing is needed there."""
    from gpuboot.machine.metadata import scan_distributions

    for wheel, pairs in (("torch-2.3.1-cp311-cp311-manylinux1_x86_64.whl", True),
                         ("torch-2.4.0-cp311-cp311-manylinux1_x86_64.whl", False)):
        site = install(tmp_path / wheel, wheel)
        installed = [(d.name, d.version, list(d.requires)) for d in scan_distributions([str(site)])[0]]
        change = consumer_change("nvidia-cudnn-cu12==9.*", "ctranslate2", installed)
        assert (change is not None) is pairs, (wheel, change)
        if change:
            assert change[:2] == ("ctranslate2==4.4.0", "torch>=2.4")


def test_llama_cpp_pythons_need_is_what_its_cuda_library_links(tmp_path: Path) -> None:
    """PyPI has llama-cpp-python as a source distribution (no CUDA in its metadata): the need of a CUDA build
    comes from its libggml-cuda's NEEDED entries, at the row's libraries."""
    wheel = "llama_cpp_python-0.3.36.tar.gz"
    site = install(tmp_path / "site", wheel)
    row = row_of("llama-cpp-python")
    assert installed_need(machine(sites=[str(site)]), row) is None  # nothing built yet: no CUDA
    lib = site / "llama_cpp" / "lib" / "libggml-cuda.so"
    for dep in ("libcudart.so.12", "libcublas.so.12"):
        compile_stub(lib.parent / dep, dep)
    compile_stub(lib, "libggml-cuda.so", ["libcudart.so.12", "libcublas.so.12"])
    need = installed_need(machine(sites=[str(site)]), row)
    assert need is not None and need.cuda_major == 12 and need.libraries == row.libraries
    assert "libggml-cuda.so needs libcudart.so.12" in need.source
