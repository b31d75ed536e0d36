"""locate/resolve on site directories built from real wheel file lists."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from helpers import compile_stub, install, machine, run_child, wheel

import gpuboot
from gpuboot._libs import resolve as _resolve  # the private ones: they take a platform
from gpuboot._libs.resolve import resolve
from gpuboot.errors import UnknownLibraryError


def names(libs: list[gpuboot.Library]) -> list[str]:
    return [lib.filename for lib in libs]


def test_cuda12_per_component_layout(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"))
    install(site, wheel("nvidia-cuda-runtime-cu12"))
    libs = _resolve.locate(machine(search_paths=[str(site)], platform="linux"), ["cudart", "cublas"])
    assert names(libs) == ["libcudart.so.12", "libcublasLt.so.12", "libcublas.so.12"]
    cublas = libs[-1]
    assert cublas.path == site / "nvidia/cublas/lib/libcublas.so.12"
    assert (cublas.cuda_major, cublas.distribution, cublas.version, cublas.source) == (
        12, "nvidia-cublas-cu12", "12.9.2.10", "wheel")
    assert libs[0].distribution == "nvidia-cuda-runtime-cu12"


def test_cuda13_shared_cu13_layout(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas"))
    install(site, wheel("nvidia-cuda-runtime"))
    libs = _resolve.locate(machine(search_paths=[str(site)], platform="linux"), ["cudart", "cublas"])
    assert names(libs) == ["libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13"]
    assert {lib.directory for lib in libs} == {site / "nvidia/cu13/lib"}
    assert {lib.cuda_major for lib in libs} == {13}
    assert libs[-1].distribution == "nvidia-cublas"


def test_cuda11_wheels(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu11"))
    install(site, wheel("nvidia-cuda-runtime-cu11"))
    libs = _resolve.locate(machine(search_paths=[str(site)], platform="linux"), ["cudart", "cublas"])
    assert names(libs) == ["libcudart.so.11.0", "libcublasLt.so.11", "libcublas.so.11"]
    assert {lib.cuda_major for lib in libs} == {11}


@pytest.mark.parametrize(("projects", "expected_dir", "files"), [
    (["nvidia-cuda-runtime-cu12", "nvidia-cublas-cu12"], "nvidia/cublas/bin",
     ["cudart64_12.dll", "cublasLt64_12.dll", "cublas64_12.dll"]),
    (["nvidia-cuda-runtime", "nvidia-cublas"], "nvidia/cu13/bin/x86_64",
     ["cudart64_13.dll", "cublasLt64_13.dll", "cublas64_13.dll"]),
    (["nvidia-cuda-runtime-cu11", "nvidia-cublas-cu11"], "nvidia/cublas/bin",
     ["cudart64_110.dll", "cublasLt64_11.dll", "cublas64_11.dll"]),
])
def test_windows_layouts(tmp_path: Path, projects: list[str], expected_dir: str, files: list[str]) -> None:
    site = tmp_path / "site"
    for p in projects:
        install(site, wheel(p, "win32"))
    libs = _resolve.locate(machine(search_paths=[str(site)], platform="win32"), ["cudart", "cublas"])
    assert names(libs) == files
    assert libs[-1].directory == site / expected_dir


@pytest.mark.parametrize(("project", "platform", "prefix", "shim", "some_part", "cuda"), [
    ("nvidia-cudnn-cu12", "linux", "9.28", "libcudnn.so.9", "libcudnn_ops.so.9", 12),
    ("nvidia-cudnn-cu12", "linux", "9.1", "libcudnn.so.9", "libcudnn_graph.so.9", 12),
    ("nvidia-cudnn-cu13", "linux", "9", "libcudnn.so.9", "libcudnn_engines_tensor_ir.so.9", 13),
    ("nvidia-cudnn-cu12", "linux", "8", "libcudnn.so.8", "libcudnn_ops_infer.so.8", 12),
    ("nvidia-cudnn-cu11", "linux", "8", "libcudnn.so.8", "libcudnn_cnn_infer.so.8", 11),
    ("nvidia-cudnn-cu12", "win32", "9.28", "cudnn64_9.dll", "cudnn_ops64_9.dll", 12),
    ("nvidia-cudnn-cu12", "win32", "8", "cudnn64_8.dll", "cudnn_adv_infer64_8.dll", 12),
])
def test_cudnn_shim_comes_with_every_part(tmp_path: Path, project: str, platform: str, prefix: str,
                                          shim: str, some_part: str, cuda: int) -> None:
    w = wheel(project, platform, prefix)
    site = install(tmp_path / "site", w)
    libs = _resolve.locate(machine(search_paths=[str(site)], platform=platform), ["cudnn"])
    shipped = sorted(f.rsplit("/", 1)[-1] for f in w.libraries)
    assert sorted(names(libs)) == shipped  # every part the wheel ships, nothing else
    assert names(libs)[-1] == shim  # parts first: the shim dlopens them by name
    assert some_part in names(libs)
    graph = [n for n in names(libs) if "graph" in n or "ops_infer" in n]
    assert names(libs).index(graph[0]) < names(libs).index(some_part) or some_part == graph[0]
    assert {lib.cuda_major for lib in libs} == {cuda}
    assert {lib.major for lib in libs} == {int(w.version.split(".")[0])}


def test_cudnn_major_is_chosen_on_request(tmp_path: Path) -> None:
    a = install(tmp_path / "a", wheel("nvidia-cudnn-cu12", "linux", "8"))
    b = install(tmp_path / "b", wheel("nvidia-cudnn-cu12", "linux", "9.28"))
    paths = [str(a), str(b)]
    assert names(gpuboot.locate(["cudnn"], search_paths=paths, cudnn_major=8))[-1] == "libcudnn.so.8"
    assert names(gpuboot.locate(["cudnn"], search_paths=paths, cudnn_major=9))[-1] == "libcudnn.so.9"
    # Unasked, the newest major wins.
    assert names(gpuboot.locate(["cudnn"], search_paths=paths))[-1] == "libcudnn.so.9"


def test_recent_wheels_have_no_init_and_are_found_without_importing_nvidia(tmp_path: Path) -> None:
    w = wheel("nvidia-cublas-cu12")
    assert not any(f.endswith("__init__.py") for f in w.files)  # a PEP 420 namespace package
    site = install(tmp_path / "site", w)
    proc = run_child(f"""
        import sys, importlib.util
        sys.path.insert(0, {str(site)!r})
        spec = importlib.util.find_spec("nvidia.cublas")
        print("origin", spec.origin)          # None: nvidia.cublas.__file__ is None
        before = set(sys.modules)
        import gpuboot
        libs = gpuboot.locate(["cublas"])
        print("found", [l.filename for l in libs])
        print("imported", sorted(m for m in set(sys.modules) - before if m.startswith("nvidia")))
    """)
    assert "origin None" in proc.stdout
    assert "found ['libcublasLt.so.12', 'libcublas.so.12']" in proc.stdout
    assert "imported []" in proc.stdout


def test_pip_target_dir_on_pythonpath_is_searched(tmp_path: Path) -> None:
    target = install(tmp_path / "target", wheel("nvidia-cublas-cu12"))
    proc = run_child("""
        import gpuboot
        for lib in gpuboot.locate(["cublas"]):
            print(lib.root, lib.filename, lib.distribution)
    """, env={"PYTHONPATH": str(target)})
    assert f"{target} libcublas.so.12 nvidia-cublas-cu12" in proc.stdout


def test_two_majors_side_by_side_resolve_to_one(tmp_path: Path) -> None:
    site = tmp_path / "site"
    for p in ("nvidia-cuda-runtime-cu12", "nvidia-cublas-cu12", "nvidia-cuda-runtime", "nvidia-cublas"):
        install(site, wheel(p))
    paths = [str(site)]
    twelve = gpuboot.locate(["cudart", "cublas"], cuda_major=12, search_paths=paths)
    assert names(twelve) == ["libcudart.so.12", "libcublasLt.so.12", "libcublas.so.12"]
    thirteen = gpuboot.locate(["cudart", "cublas"], cuda_major=13, search_paths=paths)
    assert names(thirteen) == ["libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13"]
    # Never a mix, whatever is asked.
    chosen = gpuboot.locate(["cudart", "cublas"], search_paths=paths)
    assert len({lib.cuda_major for lib in chosen}) == 1


def test_major_that_covers_the_most_names_wins(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, wheel("nvidia-cublas-cu12"))  # cuBLAS only at 12
    install(site, wheel("nvidia-cublas"))
    install(site, wheel("nvidia-cuda-runtime"))  # cudart and cuBLAS at 13
    res = resolve(machine(search_paths=[str(site)], platform="linux"), ["cudart", "cublas"])
    assert res.cuda_major == 13 and res.ok
    # Asked for 12: cudart is missing, with the exact fix; never the .so.13.
    res12 = resolve(machine(search_paths=[str(site)], platform="linux"), ["cudart", "cublas"], cuda_major=12)
    assert names(list(res12.libraries)) == ["libcublasLt.so.12", "libcublas.so.12"]
    assert [m.name for m in res12.missing] == ["cudart"]
    assert res12.missing[0].fix == "pip install nvidia-cuda-runtime-cu12"
    others = res12.missing[0].other_versions
    assert {o.filename for o in others} == {"libcudart.so.13"}  # the wheel's (and any system copy)
    assert site / "nvidia/cu13/lib/libcudart.so.13" in [o.path for o in others]


def test_wrong_major_is_reported_as_other_abi(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu11"))
    res = resolve(machine(search_paths=[str(site)], platform="linux"), ["cublas"], cuda_major=12)
    assert res.libraries == ()
    assert [m.name for m in res.missing] == ["cublasLt", "cublas"]
    text = res.missing[1].describe()
    assert "libcublas.so.11" in text and "different ABI" in text
    assert res.missing[1].fix == "pip install nvidia-cublas-cu12"


def test_one_location_is_preferred(tmp_path: Path) -> None:
    a = install(tmp_path / "a", wheel("nvidia-cublas-cu12"))
    b = install(tmp_path / "b", wheel("nvidia-cublas-cu12"))
    install(b, wheel("nvidia-cuda-runtime-cu12"))
    libs = gpuboot.locate(["cudart", "cublas"], search_paths=[str(a), str(b)])
    assert {lib.root for lib in libs} == {b}  # b has everything; a only part
    # With no reason to prefer, search order decides.
    only = gpuboot.locate(["cublas"], search_paths=[str(a), str(b)])
    assert {lib.root for lib in only} == {a}


def test_ambiguous_soname_takes_major_from_owner(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-curand-cu12"))
    (lib,) = gpuboot.locate(["curand"], search_paths=[str(site)])
    assert (lib.filename, lib.cuda_major, lib.distribution) == ("libcurand.so.10", 12, "nvidia-curand-cu12")
    bare = install(tmp_path / "bare", wheel("nvidia-curand-cu12"), dist_info=False)
    (lib,) = gpuboot.locate(["curand"], search_paths=[str(bare)])
    assert lib.cuda_major is None and lib.distribution is None  # .so.10 is CUDA 11, 12 and 13
    assert gpuboot.locate(["curand"], cuda_major=11, search_paths=[str(bare)])  # it may serve any


def test_inventory_lists_every_major(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, wheel("nvidia-cublas-cu12"))
    install(site, wheel("nvidia-cublas"))
    found = {(lib.filename, lib.cuda_major) for lib in gpuboot.locate(search_paths=[str(site)])}
    assert {("libcublas.so.12", 12), ("libcublas.so.13", 13), ("libcublasLt.so.13", 13)} <= found
    only13 = gpuboot.locate(search_paths=[str(site)], cuda_major=13)
    assert all(lib.cuda_major == 13 for lib in only13 if lib.source == "wheel")


def test_conda_and_cuda_path_are_searched_after_wheels(tmp_path: Path) -> None:
    conda = tmp_path / "conda"
    (conda / "lib").mkdir(parents=True)
    (conda / "lib" / "libcublas.so.12").write_bytes(b"")
    (conda / "lib" / "libcublasLt.so.12").write_bytes(b"")
    cuda = tmp_path / "cuda-12.4"
    (cuda / "lib64").mkdir(parents=True)
    (cuda / "lib64" / "libcudart.so.12").write_bytes(b"")
    env = {"CONDA_PREFIX": str(conda), "CUDA_PATH": str(cuda)}
    res = resolve(machine(search_paths=[], environ=env, platform="linux"), ["cudart", "cublas"])
    assert [(lib.filename, lib.source) for lib in res.libraries] == [
        ("libcudart.so.12", "cuda_path"), ("libcublasLt.so.12", "conda"), ("libcublas.so.12", "conda")]
    # A wheel, when present, comes first.
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"))
    res = resolve(machine(search_paths=[str(site)], environ=env, platform="linux"), ["cublas"])
    assert {lib.source for lib in res.libraries} == {"wheel"}


def test_relative_empty_and_world_writable_roots_are_never_searched(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    site = install(tmp_path / "cwd", wheel("nvidia-cublas-cu12"))
    monkeypatch.chdir(site)
    assert gpuboot.locate(["cublas"], search_paths=["", ".", "nvidia/.."]) == []
    open_site = install(tmp_path / "open", wheel("nvidia-cublas-cu12"))
    lib_dir = open_site / "nvidia/cublas/lib"
    lib_dir.chmod(0o777)
    try:
        assert gpuboot.locate(["cublas"], search_paths=[str(open_site)]) == []
    finally:
        lib_dir.chmod(0o755)
    assert len(gpuboot.locate(["cublas"], search_paths=[str(open_site)])) == 2


def test_bad_arguments_raise_documented_errors() -> None:
    with pytest.raises(UnknownLibraryError):
        gpuboot.locate(["cublass"], search_paths=[])
    with pytest.raises(ValueError, match="platform"):
        _resolve.locate(machine(search_paths=[], platform="darwin"), ["cublas"])


def test_locate_reads_no_unrelated_dist_info(tmp_path: Path) -> None:
    """Owners come from nvidia_* dist-info only: a broken unrelated RECORD is never read."""
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"))
    bad = site / "zzz_unrelated-1.0.dist-info"
    bad.mkdir()
    (bad / "RECORD").write_bytes(b"\xff\xfe not utf-8 \x00")
    (lib,) = [x for x in gpuboot.locate(["cublas"], search_paths=[str(site)]) if x.name == "cublas"]
    assert lib.distribution == "nvidia-cublas-cu12"


def test_sys_path_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"))
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    libs = gpuboot.locate(["cublas"])
    assert libs[-1].root == site
    assert os.path.isabs(libs[-1].path)


def test_the_loader_cache_naming_one_file_twice_gives_it_once(tmp_path: Path) -> None:
    """ldconfig lists a development link and the file it points to
    (libnvvm.so -> libnvvm.so.4, as a CUDA toolkit installs them): one library,
    under the name its binary carries."""
    from helpers import injected

    lib = tmp_path / "cuda" / "lib"
    real = compile_stub(lib / "libnvvm.so.4", "libnvvm.so.4")
    (lib / "libnvvm.so").symlink_to("libnvvm.so.4")
    cache = {"libnvvm.so": [str(lib / "libnvvm.so")], "libnvvm.so.4": [str(real)]}
    empty = tmp_path / "empty"
    empty.mkdir()
    with injected(ldconfig=cache):
        found = (gpuboot.locate(search_paths=[str(empty)]), gpuboot.locate(["nvvm"], search_paths=[str(empty)]))
    for libs in found:
        assert [(x.filename, x.path, x.source) for x in libs] == [("libnvvm.so.4", real, "system")]


def test_without_a_major_the_installed_consumer_decides(tmp_path: Path) -> None:
    """A new user's first call: nothing installed but the consumer.  ctranslate2 4.8.5 needs CUDA 12, so the fix
    is the CUDA 12 wheel (the CUDA 13 one would be found and never loaded), and the resolution says who decided."""
    from helpers import injected

    empty = tmp_path / "empty"
    empty.mkdir()
    with injected(metadata={"ctranslate2": ("4.8.5", [])}):
        res = gpuboot.resolve(["cublas"], search_paths=[str(empty)])
    assert res.cuda_major == 12 and res.decided_by.startswith("ctranslate2 4.8.5 needs CUDA 12")
    assert {m.fix for m in res.missing} == {"pip install nvidia-cublas-cu12"}  # cuBLAS and cuBLASLt, one wheel
    site = tmp_path / "site"
    install(site, wheel("nvidia-cublas"))  # CUDA 13 only: found, but not what the consumer loads
    with injected(metadata={"ctranslate2": ("4.8.5", [])}):
        assert gpuboot.locate(["cublas"], search_paths=[str(site)]) == []
        res = gpuboot.resolve(["cublas"], search_paths=[str(site)])
    assert {o.filename for m in res.missing for o in m.other_versions} == {"libcublas.so.13", "libcublasLt.so.13"}
    with injected(metadata={}):  # no consumer: the major most names were found at
        res = gpuboot.resolve(["cublas"], search_paths=[str(site)])
    assert res.cuda_major == 13 and res.decided_by == "" and res.ok
    assert gpuboot.resolve(["cublas"], cuda_major=13, search_paths=[str(site)]).decided_by == ""
