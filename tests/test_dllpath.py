"""Real dlopen: stub shared objects compiled with the real sonames, loaded in
child processes (the loader's state is per process)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from helpers import compile_stub, hosted, injected, install, machine, run_child, wheel

import gpuboot
from gpuboot._libs import resolve as _resolve
from gpuboot._libs.aliases import alias, alias_dir, check_alias
from gpuboot.errors import AbiMismatchError, CacheDirError
from gpuboot.startup.shellenv import subprocess_env

CUBLAS_NEEDS = {"libcublas.so.12": ["libcublasLt.so.12"]}


@pytest.fixture
def stub_site(tmp_path: Path) -> Path:
    """The real nvidia-cublas-cu12 + cuda-runtime file lists with compiled
    stubs; libcublas.so.12 has DT_NEEDED libcublasLt.so.12 and no RPATH,
    like the real one."""
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"), real_so=True, needed=CUBLAS_NEEDS)
    install(site, wheel("nvidia-cuda-runtime-cu12"), real_so=True)
    return site


def _maps_code(paths_expr: str) -> str:
    return f"""
        maps = open("/proc/self/maps").read()
        print(json.dumps({{p: (p in maps) for p in {paths_expr}}}))
    """


def test_without_preload_a_by_name_load_fails(stub_site: Path) -> None:
    """The control: the loader cannot find wheel libraries by name on its own."""
    proc = run_child("""
        import ctypes
        try:
            ctypes.CDLL("libcublas.so.12")
            print("loaded")
        except OSError as e:
            print("OSError", e)
    """)
    assert proc.stdout.startswith("OSError")


def test_preload_loads_in_dependency_order_and_by_name_loads_then_work(stub_site: Path, tmp_path: Path) -> None:
    log = tmp_path / "order.log"
    proc = run_child(f"""
        import ctypes, json, gpuboot
        libs = gpuboot.locate(["cudart", "cublas"], search_paths=[{str(stub_site)!r}])
        res = gpuboot.preload(libs)
        print(json.dumps([[r.library.filename, r.ok, r.already_loaded] for r in res]))
        ctypes.CDLL("libcublas.so.12").libcublas_so_12_stub_marker  # by name, as CTranslate2 does
        again = gpuboot.preload(libs)
        print(json.dumps([r.already_loaded for r in again]))
        {_maps_code("[str(l.path) for l in libs]")}
    """, env={"GPUBOOT_STUB_LOG": str(log)})
    first, again, maps = (json.loads(line) for line in proc.stdout.splitlines())
    assert first == [["libcudart.so.12", True, False], ["libcublasLt.so.12", True, False],
                     ["libcublas.so.12", True, False]]
    assert again == [True, True, True]  # idempotent: nothing loaded twice
    assert all(maps.values()) and len(maps) == 3
    # Constructors ran once each, cublasLt before cublas.
    assert log.read_text().split() == ["libcudart.so.12", "libcublasLt.so.12", "libcublas.so.12"]


def test_wrong_order_is_retried_after_its_dependency(stub_site: Path, tmp_path: Path) -> None:
    log = tmp_path / "order.log"
    proc = run_child(f"""
        import json, gpuboot
        libs = gpuboot.locate(["cublas"], search_paths=[{str(stub_site)!r}])
        res = gpuboot.preload(list(reversed(libs)))   # cublas first: its NEEDED is not loadable yet
        print(json.dumps([[r.library.filename, r.ok] for r in res]))
    """, env={"GPUBOOT_STUB_LOG": str(log)})
    assert json.loads(proc.stdout) == [["libcublas.so.12", True], ["libcublasLt.so.12", True]]
    assert log.read_text().split() == ["libcublasLt.so.12", "libcublas.so.12"]


_COUNTING_LOADER = """
    import json
    from pathlib import Path
    from gpuboot._libs.linux import LinuxLoader
    from gpuboot.dllpath import load_all
    from gpuboot._libs.types import Library

    class Counting(LinuxLoader):
        def __init__(self):
            super().__init__()
            self.tries = {}
        def load(self, path):
            self.tries[path.name] = self.tries.get(path.name, 0) + 1
            return super().load(path)
"""


def test_a_failure_no_library_of_the_set_can_fix_is_not_tried_again(tmp_path: Path) -> None:
    """libneeds.so.1 needs libgone.so.1, which was deleted and which no library
    of the set provides: one attempt, and the loader's message names it."""
    lib = tmp_path / "lib"
    compile_stub(lib / "libgone.so.1", "libgone.so.1")
    compile_stub(lib / "libneeds.so.1", "libneeds.so.1", ["libgone.so.1"])
    compile_stub(lib / "libok.so.1", "libok.so.1")
    (lib / "libgone.so.1").unlink()
    proc = run_child(_COUNTING_LOADER + f"""
    libs = [Library(name=n, path=Path({str(lib)!r}) / f, filename=f, cuda_major=12, major=12, source="wheel",
                    root=Path({str(lib)!r}))
            for n, f in (("needs", "libneeds.so.1"), ("ok", "libok.so.1"))]
    loader = Counting()
    res = load_all(libs, loader, {{}})
    print(json.dumps([[r.library.filename, r.ok, r.error or ""] for r in res] + [loader.tries]))
    """)
    needs, ok, tries = json.loads(proc.stdout)
    assert needs[:2] == ["libneeds.so.1", False] and "libgone.so.1" in needs[2]
    assert ok[:2] == ["libok.so.1", True]
    assert tries == {"libneeds.so.1": 1, "libok.so.1": 1}


def test_a_failure_a_later_library_fixes_is_tried_once_more(stub_site: Path) -> None:
    proc = run_child(_COUNTING_LOADER + f"""
    import gpuboot
    libs = list(reversed(gpuboot.locate(["cublas"], search_paths=[{str(stub_site)!r}])))
    loader = Counting()
    res = load_all(libs, loader, {{}})
    print(json.dumps([[r.library.filename, r.ok] for r in res] + [loader.tries]))
    """)
    *results, tries = json.loads(proc.stdout)
    assert results == [["libcublas.so.12", True], ["libcublasLt.so.12", True]]
    assert tries == {"libcublas.so.12": 2, "libcublasLt.so.12": 1}


def test_a_copy_loaded_first_is_reported_as_shadowing(stub_site: Path, tmp_path: Path) -> None:
    decoy = compile_stub(tmp_path / "usr-local-cuda-12" / "libcublasLt.so.12", "libcublasLt.so.12")
    proc = run_child(f"""
        import ctypes, json, gpuboot
        ctypes.CDLL({str(decoy)!r}, mode=ctypes.RTLD_GLOBAL)
        libs = gpuboot.locate(["cublas"], search_paths=[{str(stub_site)!r}])
        res = gpuboot.preload(libs)
        print(json.dumps([[r.library.filename, r.already_loaded, str(r.loaded_path), r.shadowed] for r in res]))
    """)
    lt, cublas = json.loads(proc.stdout)
    assert lt == ["libcublasLt.so.12", True, str(decoy), True]
    assert cublas[1:] == [False, str(stub_site / "nvidia/cublas/lib/libcublas.so.12"), False]


def test_a_file_that_is_not_elf_gives_a_clear_error_and_the_process_goes_on(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"))  # empty files, not ELF
    proc = run_child(f"""
        import gpuboot
        libs = gpuboot.locate(["cublas"], search_paths=[{str(site)!r}])
        try:
            gpuboot.preload(libs)
        except gpuboot.LibraryLoadError as e:
            print("LibraryLoadError", len(e.failures))
            print(str(e).splitlines()[0][:200])
        print("still running")
    """)
    lines = proc.stdout.splitlines()
    assert lines[0] == "LibraryLoadError 2"
    assert "libcublasLt.so.12" in lines[1]
    assert lines[-1] == "still running"


def test_subprocess_env_lets_a_child_load_by_name(stub_site: Path) -> None:
    libs = gpuboot.locate(["cudart", "cublas"], search_paths=[str(stub_site)])
    env = hosted(subprocess_env, platform="linux")({"LD_LIBRARY_PATH": "::relative/dir:/usr/lib",
                                                    "PATH": os.environ["PATH"]}, libraries=libs)
    entries = env["LD_LIBRARY_PATH"].split(":")
    assert entries[:2] == [str(stub_site / "nvidia/cuda_runtime/lib"), str(stub_site / "nvidia/cublas/lib")]
    assert "" not in entries and "relative/dir" not in entries
    assert entries[-1] == "/usr/lib"
    proc = run_child("""
        import ctypes
        ctypes.CDLL("libcublas.so.12")   # found through LD_LIBRARY_PATH, read at process start
        print("ok")
    """, env={"LD_LIBRARY_PATH": env["LD_LIBRARY_PATH"]})
    assert proc.stdout.strip() == "ok"


def test_subprocess_env_never_adds_an_empty_entry(tmp_path: Path) -> None:
    env = hosted(subprocess_env, platform="linux")({"LD_LIBRARY_PATH": ""}, libraries=[])
    assert "LD_LIBRARY_PATH" not in env
    env = hosted(subprocess_env, platform="linux")({"LD_LIBRARY_PATH": ":"}, libraries=[])
    assert "LD_LIBRARY_PATH" not in env


def test_subprocess_env_windows_prepends_path(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12", "win32"))
    libs = _resolve.locate(machine(search_paths=[str(site)], platform="win32"), ["cublas"])
    env = hosted(subprocess_env, platform="win32")({"PATH": r"C:\Windows;;C:\Tools"}, libraries=libs)
    assert env["PATH"] == f"{site / 'nvidia/cublas/bin'};C:\\Windows;C:\\Tools"


# --------------------------------------------------------------------------- aliases


def test_alias_link_lives_in_the_user_cache_and_loads(stub_site: Path, _isolated_cache: Path) -> None:
    (lib,) = gpuboot.locate(["cudart"], search_paths=[str(stub_site)])
    link = alias(lib, "libcudart.so")
    assert link.parent.parent == _isolated_cache
    assert os.readlink(link) == str(lib.path)
    assert stat.S_IMODE(link.parent.stat().st_mode) == 0o700
    assert alias(lib, "libcudart.so") == link  # idempotent
    assert not any(p.is_symlink() for p in stub_site.rglob("*"))  # nothing written into site-packages
    env = hosted(subprocess_env, platform="linux")({}, libraries=[])
    proc = run_child("""
        import ctypes
        ctypes.CDLL("libcudart.so")   # the unversioned name no wheel ships
        print("ok")
    """, env={"LD_LIBRARY_PATH": env["LD_LIBRARY_PATH"]})
    assert proc.stdout.strip() == "ok"


@pytest.mark.parametrize(("target", "name"), [
    ("libcublas.so.11", "libcublas.so.12"),
    ("libcudnn.so.8", "libcudnn.so.9"),
    ("libcublas.so.12", "libcublasLt.so.12"),
    ("libcudart.so.11.0", "libcudart.so.12"),
])
def test_alias_across_abi_majors_is_refused(target: str, name: str) -> None:
    with pytest.raises(AbiMismatchError, match="different ABI"):
        check_alias(target, name)


@pytest.mark.parametrize(("target", "name"), [
    ("libcudnn.so.9", "libcudnn.so"), ("libcudart.so.11.0", "libcudart.so.11"),
    ("libcudart.so.12", "libcudart.so.12"),
])
def test_alias_within_an_abi_is_allowed(target: str, name: str) -> None:
    check_alias(target, name)


def test_alias_replaces_a_stale_link_atomically(stub_site: Path) -> None:
    (lib,) = gpuboot.locate(["cudart"], search_paths=[str(stub_site)])
    directory = alias_dir()
    assert directory is not None
    stale = directory / "libcudart.so"
    os.symlink("/nonexistent/libcudart.so.12", stale)
    link = alias(lib, "libcudart.so")
    assert os.readlink(link) == str(lib.path)
    assert [p.name for p in directory.iterdir()] == ["libcudart.so"]  # no temp file left


def test_cache_dir_writable_by_others_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared-cache"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("GPUBOOT_CACHE_DIR", str(shared))
    with pytest.raises(CacheDirError, match="writable by other users"):
        alias_dir()
    monkeypatch.setenv("GPUBOOT_CACHE_DIR", "relative/cache")
    with pytest.raises(CacheDirError, match="absolute"):
        alias_dir()


# --------------------------------------------------------------------------- Windows, through a fake API


class FakeWindowsAPI:
    """Stands in for os.add_dll_directory, LoadLibrary and GetModuleHandle,
    recording the calls the way Windows would see them."""

    def __init__(self, loaded: dict[str, str] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.loaded = dict(loaded or {})

    def add_dll_directory(self, path: str) -> object:
        assert os.path.isabs(path)
        self.calls.append(("add_dll_directory", path))
        return object()

    def load_library(self, path: str) -> object:
        assert os.path.isabs(path)
        self.calls.append(("load_library", path))
        self.loaded[os.path.basename(path).lower()] = path
        return object()

    def module_path(self, name: str) -> str | None:
        return self.loaded.get(name.lower())


def test_windows_adds_dll_dirs_prepends_path_and_preloads_by_absolute_path(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, wheel("nvidia-cuda-runtime-cu12", "win32"))
    install(site, wheel("nvidia-cublas-cu12", "win32"))
    install(site, wheel("nvidia-cudnn-cu12", "win32", "9.28"))
    libs = _resolve.locate(machine(search_paths=[str(site)], platform="win32"), ["cudart", "cublas", "cudnn"])
    api = FakeWindowsAPI()
    loader = hosted(gpuboot.dllpath.get_loader, windows_api=api)("win32")
    environ = {"PATH": r"C:\Windows\system32;;C:\Python"}
    results = gpuboot.dllpath.load_all(libs, loader, environ)
    dirs = [str(site / "nvidia/cuda_runtime/bin"), str(site / "nvidia/cublas/bin"), str(site / "nvidia/cudnn/bin")]
    assert [c for c in api.calls if c[0] == "add_dll_directory"] == [("add_dll_directory", d) for d in dirs]
    assert environ["PATH"] == ";".join([*dirs, r"C:\Windows\system32", r"C:\Python"])
    loads = [c[1] for c in api.calls if c[0] == "load_library"]
    assert loads == [str(lib.path) for lib in libs]
    assert loads.index(str(site / "nvidia/cublas/bin/cublasLt64_12.dll")) < loads.index(
        str(site / "nvidia/cublas/bin/cublas64_12.dll"))
    assert loads[-1].endswith("cudnn64_9.dll") and any(p.endswith("cudnn_ops64_9.dll") for p in loads)
    assert all(r.ok and not r.already_loaded for r in results)
    # A second round: everything is already loaded, nothing is loaded again, PATH unchanged.
    again = gpuboot.dllpath.load_all(libs, loader, environ)
    assert all(r.already_loaded for r in again)
    assert len([c for c in api.calls if c[0] == "load_library"]) == len(libs)
    assert environ["PATH"].count(dirs[0]) == 1


def test_windows_dll_already_loaded_from_elsewhere_is_reported(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12", "win32"))
    libs = _resolve.locate(machine(search_paths=[str(site)], platform="win32"), ["cublas"])
    other = r"C:\Program Files\NVIDIA GPU Computing Toolkit\CUDA\v12.1\bin\cublasLt64_12.dll"
    api = FakeWindowsAPI({"cublaslt64_12.dll": other})
    loader = hosted(gpuboot.dllpath.get_loader, windows_api=api)("win32")
    lt, cublas = gpuboot.dllpath.load_all(libs, loader, {"PATH": ""})
    assert lt.already_loaded and str(lt.loaded_path) == other and lt.shadowed
    assert not cublas.already_loaded


class FailingQueryWindowsAPI(FakeWindowsAPI):
    """GetModuleFileNameW failing the way ctypes does when a handle above 4 GiB
    meets a function without argtypes (the real failure, raised by ctypes)."""

    def module_path(self, name: str) -> str | None:
        import ctypes

        raise ctypes.ArgumentError("argument 1: OverflowError: int too long to convert")


def test_a_failing_already_loaded_query_is_a_load_failure_never_an_exception(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12", "win32"))
    libs = _resolve.locate(machine(search_paths=[str(site)], platform="win32"), ["cublas"])
    with injected(windows_api=FailingQueryWindowsAPI()):
        loader = gpuboot.dllpath.get_loader("win32")
    results = gpuboot.dllpath.load_all(libs, loader, {"PATH": ""})
    assert [r.ok for r in results] == [False, False]
    assert all("ArgumentError" in (r.error or "") and "int too long" in (r.error or "") for r in results)
    with injected(driver=True, search_paths=[str(site)], platform="win32", windows_api=FailingQueryWindowsAPI(),
                  environ={"PATH": ""}):
        report = gpuboot.ensure(consumers=["ctranslate2"])
    assert not report.ok and report.libraries and all(r.error for r in report.libraries)
