"""Libraries judged by what the loader reads: ELF sonames and NEEDED entries (gcc-compiled stubs with real and
mismatched sonames, and the real CUDA 12 wheels), PE DLL names (a real win_amd64 wheel), the hand-made
cross-major symlink, and one view of what is already loaded."""

from __future__ import annotations

import json
import os
import sysconfig
import zipfile
from pathlib import Path
from typing import List

import pytest
from helpers import compile_stub, gathered, install, require_real, run_child, skip_or_fail, wheel

from gpuboot import locate, resolve
from gpuboot._libs import catalog as cat
from gpuboot._libs.loaded import LoadedView
from gpuboot.binaries.names import read_binary, soname_of
from gpuboot.doctor import diagnose

CT2 = {"ctranslate2": ("4.8.5", [])}


def cross_major_link_site(tmp_path: Path) -> Path:
    """nvidia-cublas-cu11 (stubs with the real CUDA 11 sonames) plus the links
    a common forum "fix" makes: libcublas.so.12 -> libcublas.so.11 and
    libcublasLt.so.12 -> libcublasLt.so.11."""
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu11"), real_so=True,
                   needed={"libcublas.so.11": ["libcublasLt.so.11"]})
    lib = site / "nvidia" / "cublas" / "lib"
    (lib / "libcublas.so.12").symlink_to("libcublas.so.11")
    (lib / "libcublasLt.so.12").symlink_to("libcublasLt.so.11")
    return site


# --------------------------------------------------------------------------- reading binaries


def test_elf_soname_and_needed_of_compiled_stubs(tmp_path: Path) -> None:
    dep = compile_stub(tmp_path / "libdep.so.3", "libdep.so.3")
    lib = compile_stub(tmp_path / "libfoo.so.7", "libfoo.so.7", [dep.name])
    info = read_binary(lib)
    assert info is not None and info.kind == "elf" and info.bits == 64
    assert info.soname == "libfoo.so.7" and info.needed[0] == "libdep.so.3"
    (tmp_path / "alias.so").symlink_to(lib)
    assert soname_of(tmp_path / "alias.so") == "libfoo.so.7"  # a link says what its target says


@pytest.mark.parametrize("content", [b"", b"not elf at all", b"\x7fELF\x02\x01\x01", b"MZ" + b"\x00" * 100])
def test_files_that_are_not_libraries_read_as_none_or_nameless(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "libx.so.1"
    f.write_bytes(content)
    info = read_binary(f)
    assert info is None or info.soname is None


def test_truncated_elf_is_not_read_past_its_end(tmp_path: Path) -> None:
    lib = compile_stub(tmp_path / "libfoo.so.7", "libfoo.so.7")
    cut = tmp_path / "libcut.so.7"
    cut.write_bytes(lib.read_bytes()[:200])
    info = read_binary(cut)
    assert info is None or info.soname is None


def _site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def test_catalog_dependencies_cover_what_the_real_wheels_need() -> None:
    """Every NEEDED entry of a real NVIDIA wheel library installed here that
    names a catalog library is in the catalog's dependency closure of that
    library (libcublas.so.12 -> libcublasLt.so.12, libnvblas -> libcublas)."""
    files = sorted((_site_packages() / "nvidia").glob("*/lib/*.so*"))
    if not files:
        require_real("nvidia-cublas-cu12 / nvidia-cuda-runtime-cu12 (real wheels)")
    names = {fn: s.name for s in cat.CATALOG.values() for k in s.variants for fn in s.filenames("linux", k)}
    checked = 0
    for f in files:
        info = read_binary(f)
        assert info is not None and info.soname, f
        own = names.get(info.soname)
        if own is None:
            continue
        closure = set()
        todo = list(cat.spec(own).depends)
        while todo:
            dep = todo.pop()
            if dep not in closure:
                closure.add(dep)
                todo.extend(cat.spec(dep).depends)
        for needed in info.needed:
            if needed in names:
                assert names[needed] in closure, (f.name, needed)
                checked += 1
    assert checked >= 2  # at least cublas -> cublasLt and nvblas -> cublas


def _windows_wheel(project: str) -> Path:
    cache = Path(os.environ.get("GPUBOOT_WIN_WHEELS", Path.home() / ".cache" / "gpuboot-tests" / "win"))
    found = sorted(cache.glob(f"{project.replace('-', '_')}-*-win_amd64.whl"))
    if not found:
        require_real(f"the win_amd64 wheel of {project} in {cache} (scripts/test downloads it)")
    return found[-1]


def test_pe_dll_name_and_imports_of_a_real_windows_wheel(tmp_path: Path) -> None:
    whl = _windows_wheel("nvidia-cuda-runtime-cu12")
    with zipfile.ZipFile(whl) as z:
        member = next(n for n in z.namelist() if n.endswith("/cudart64_12.dll"))
        z.extract(member, tmp_path)
    info = read_binary(tmp_path / member)
    assert info is not None and info.kind == "pe" and info.bits == 64 and info.machine == 0x8664
    assert info.soname == "cudart64_12.dll"
    assert info.needed and all(n.lower().endswith(".dll") for n in info.needed)
    assert any(n.lower().startswith(("kernel32", "api-ms-win-core")) for n in info.needed)
    renamed = tmp_path / "cudart64_13.dll"
    renamed.write_bytes((tmp_path / member).read_bytes())
    assert soname_of(renamed) == "cudart64_12.dll"  # a renamed DLL still names itself


# --------------------------------------------------------------------------- the cross-major link


def test_a_link_across_majors_is_never_cuda_12(tmp_path: Path) -> None:
    site = cross_major_link_site(tmp_path)
    res = resolve(["cublas"], cuda_major=12, search_paths=[str(site)])
    assert res.libraries == () and [m.name for m in res.missing] == ["cublasLt", "cublas"]
    others = res.missing[1].other_versions
    renamed = [lib for lib in others if lib.filename == "libcublas.so.12"]
    assert renamed and renamed[0].soname == "libcublas.so.11" and renamed[0].cuda_major == 11
    assert "soname libcublas.so.11" in res.missing[1].describe()
    listed = locate(search_paths=[str(site)])
    by_file = {(lib.filename, lib.cuda_major) for lib in listed if lib.source == "wheel"}
    assert ("libcublas.so.12", 12) not in by_file and ("libcublas.so.12", 11) in by_file


def test_ensure_does_not_preload_the_hack_as_cuda_12(tmp_path: Path) -> None:
    site = cross_major_link_site(tmp_path)
    proc = run_child(f"""
        import json, gpuboot
        from gpuboot.machine.driver import DriverInfo
        from gpuboot.machine.snapshot import Machine
        with Machine(driver=DriverInfo(present=True, evidence="given"), search_paths=[{str(site)!r}]).scope():
            r = gpuboot.ensure(consumers=["ctranslate2"])
        print(json.dumps({{"loaded": [str(x.library.path) for x in r.loaded],
                          "missing": [m.name for m in r.missing], "majors": list(r.cuda_majors)}}))
    """)
    out = json.loads(proc.stdout)
    assert not any("libcublas" in p for p in out["loaded"])
    assert "cublas" in out["missing"]


def test_doctor_reports_the_link_and_the_missing_library(tmp_path: Path) -> None:
    site = cross_major_link_site(tmp_path)
    report = diagnose(gathered(search_paths=[str(site)], environ={}, driver=True, metadata=CT2,
                             nvml=None, loaded=[], initial_environ={}, wsl=False, platform="linux"))
    ids = [f.id for f in report.findings]
    assert "consumer-ready" not in ids and "wrong-major" in ids
    renamed = [f for f in report.findings if f.id == "renamed-library"]
    assert {f.title.split()[0] for f in renamed} == {"libcublas.so.12", "libcublasLt.so.12"}
    f = next(x for x in renamed if x.title.startswith("libcublas.so.12"))
    assert f.severity == "problem" and "soname is libcublas.so.11" in f.title
    assert f.remedy is not None and f.remedy.startswith("rm ") and "pip install nvidia-cublas-cu12" in f.remedy
    assert report.exit_code == 1


# --------------------------------------------------------------------------- one view of what is loaded


def _toolkit(tmp_path: Path) -> Path:
    """A CUDA toolkit's layout: libcublas.so.12 -> libcublas.so.12.1.3.1, whose soname is libcublas.so.12."""
    lib = tmp_path / "cuda-12.1" / "lib64"
    compile_stub(lib / "libcublasLt.so.12.1.3.1", "libcublasLt.so.12")
    (lib / "libcublasLt.so.12").symlink_to("libcublasLt.so.12.1.3.1")
    compile_stub(lib / "libcublas.so.12.1.3.1", "libcublas.so.12", ["libcublasLt.so.12.1.3.1"])
    (lib / "libcublas.so.12").symlink_to("libcublas.so.12.1.3.1")
    return lib


def test_loader_and_doctor_agree_on_a_toolkit_copy_loaded_first(tmp_path: Path) -> None:
    toolkit = _toolkit(tmp_path)
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"), real_so=True,
                   needed={"libcublas.so.12": ["libcublasLt.so.12"]})
    proc = run_child(f"""
        import ctypes, json, os, gpuboot
        from gpuboot._libs.loaded import LoadedView
        from gpuboot.doctor import diagnose, gather
        ctypes.CDLL({str(toolkit / "libcublasLt.so.12")!r}, mode=os.RTLD_GLOBAL)
        ctypes.CDLL({str(toolkit / "libcublas.so.12")!r}, mode=os.RTLD_GLOBAL)
        from gpuboot.machine.driver import DriverInfo
        from gpuboot.machine.metadata import Distribution
        from gpuboot.machine.snapshot import Machine
        view = LoadedView(Machine().loaded)
        driver = DriverInfo(present=True, evidence="given")
        with Machine(driver=driver, search_paths=[{str(site)!r}]).scope():
            r = gpuboot.ensure(consumers=["ctranslate2"])
        shadowed = {{x.library.filename: os.path.realpath(x.loaded_path) for x in r.libraries if x.shadowed}}
        with Machine(search_paths=[{str(site)!r}], driver=driver, environ={{}}, initial_environ={{}}, wsl=False,
                     distributions=(Distribution(name="ctranslate2", version="4.8.5"),)).scope():
            rep = diagnose(gather())
        print(json.dumps({{"view": view.loaded("libcublas.so.12"), "ensure": shadowed,
                          "doctor": [f.evidence[0] for f in rep.findings if f.id == "shadowed-library"]}}))
    """)
    out = json.loads(proc.stdout)
    real = str((toolkit / "libcublas.so.12.1.3.1").resolve())
    assert out["view"] == real
    assert out["ensure"]["libcublas.so.12"] == real
    assert f"loaded: {real}" in out["doctor"]


def test_loaded_view_indexes_by_soname_and_real_path(tmp_path: Path) -> None:
    toolkit = _toolkit(tmp_path)
    view = LoadedView([str(toolkit / "libcublas.so.12.1.3.1")])
    assert view.loaded("libcublas.so.12") == str((toolkit / "libcublas.so.12.1.3.1").resolve())
    assert view.loaded("libcublas.so.12.1.3.1") is not None  # the file name too
    assert view.loaded("libcublas.so.11") is None


# --------------------------------------------------------------------------- each file once, consistent majors


@pytest.mark.parametrize(("project", "name", "cuda"), [
    ("nvidia-curand-cu12", "curand", 12), ("nvidia-cusparse-cu12", "cusparse", 12),
    ("nvidia-cusolver-cu12", "cusolver", 12), ("nvidia-cusparse", "cusparse", 13),
])
def test_a_file_shared_by_several_majors_is_listed_once_with_its_wheels_major(
        tmp_path: Path, project: str, name: str, cuda: int) -> None:
    try:
        w = wheel(project)
    except AssertionError:
        skip_or_fail(f"no recorded file list of {project}")
    site = install(tmp_path / "site", w)
    found = [lib for lib in locate(search_paths=[str(site)]) if lib.name == name and lib.source == "wheel"]
    assert len(found) == 1
    assert (found[0].cuda_major, found[0].major) == (cuda, cuda)


def test_cudnn_brings_cublaslt_first(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cudnn-cu12", version_prefix="9.28"))
    install(site, wheel("nvidia-cublas-cu12"))
    names: List[str] = [lib.name for lib in locate(["cudnn"], search_paths=[str(site)])]
    assert "cublasLt" in names and names.index("cublasLt") < names.index("cudnn")
    assert "cublas" not in names  # cuDNN needs cuBLASLt, not cuBLAS
