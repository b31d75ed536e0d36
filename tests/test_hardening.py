"""Hardening: bad input, faults, concurrency and security -- each tried for real."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import List

import pytest
from fake_nvml import A100, FakeNVML, gpu
from helpers import child_env, compile_stub, hosted, install, machine, run_child, skip_or_fail, wheel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gpuboot
from gpuboot._libs import resolve as _resolve
from gpuboot._libs.aliases import alias_dir
from gpuboot.consumers.readers import needs_of
from gpuboot.consumers.table import consumer as row_of
from gpuboot.errors import CacheDirError, GpubootError, LibraryLoadError, ModelNotFoundError
from gpuboot.select import select_device, worker_rank
from gpuboot.startup.shellenv import subprocess_env
from gpuboot.whisper.models import _check_model

ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0
CUBLAS_NEEDS = {"libcublas.so.12": ["libcublasLt.so.12"]}
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# --------------------------------------------------------------------------- bad input


@FUZZ
@given(st.one_of(st.none(), st.text()))
def test_local_rank_any_value(value: str | None) -> None:
    env = {} if value is None else {"LOCAL_RANK": value}
    rank = worker_rank(None, env)
    assert rank is None or (isinstance(rank, int) and rank >= 0)


@FUZZ
@given(st.text(), st.sampled_from(["linux", "win32"]))
def test_library_path_values_never_crash_and_stay_clean(value: str, platform: str) -> None:
    var = "PATH" if platform == "win32" else "LD_LIBRARY_PATH"
    try:
        env = hosted(subprocess_env, platform=platform)({var: value}, libraries=[])
    except ValueError:  # an embedded NUL cannot be stat'ed; it must be the documented error
        assert "\x00" in value
        return
    out = env.get(var)
    if out is None:
        return
    sep = ";" if platform == "win32" else ":"
    entries = out.split(sep)
    assert "" not in entries
    if platform == "linux":
        assert all(os.path.isabs(e) for e in entries)


@FUZZ
@given(st.text(max_size=40), st.lists(st.text(max_size=30), max_size=4))
def test_version_strings_never_crash(version: str, requires: List[str]) -> None:
    for name in ("ctranslate2", "onnxruntime-gpu", "torch", "tensorflow", "jax-cuda12-plugin", "cupy-cuda13x"):
        need = needs_of(row_of(name), version, requires)  # type: ignore[arg-type]
        assert need is None or need.cuda_major in (11, 12, 13)


@FUZZ
@given(st.text(max_size=60))
def test_model_arguments_work_or_raise_the_documented_error(model: str) -> None:
    pytest.importorskip("faster_whisper")
    try:
        _check_model(model)
    except ModelNotFoundError as exc:
        assert exc.fix


@FUZZ
@given(st.binary(max_size=400))
def test_any_record_file_never_crashes_locate(tmp_path_factory: pytest.TempPathFactory, record: bytes) -> None:
    site = install(tmp_path_factory.mktemp("site"), wheel("nvidia-cublas-cu12"))
    (next(site.glob("*.dist-info")) / "RECORD").write_bytes(record)
    libs = gpuboot.locate(["cublas"], search_paths=[str(site)])
    assert [lib.filename for lib in libs] == ["libcublasLt.so.12", "libcublas.so.12"]


def test_record_paths_outside_the_site_are_never_followed(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"))
    outside = tmp_path / "elsewhere" / "nvidia" / "cublas" / "lib"
    outside.mkdir(parents=True)
    record = next(site.glob("*.dist-info")) / "RECORD"
    record.write_text("../elsewhere/nvidia/cublas/lib/libcublas.so.12,,\n/etc/passwd,,\n"
                      "nvidia/cublas/lib/libcublas.so.12,,\n")
    libs = {lib.filename: lib for lib in gpuboot.locate(["cublas"], search_paths=[str(site)])}
    assert libs["libcublas.so.12"].distribution == "nvidia-cublas-cu12"
    assert libs["libcublasLt.so.12"].distribution is None  # not in this (edited) RECORD
    assert all(str(lib.path).startswith(str(site)) for lib in libs.values())


# --------------------------------------------------------------------------- library faults


def _preload_child(site: Path, names: List[str], code_after: str = "") -> dict:
    proc = run_child(f"""
        import json, gpuboot
        libs = gpuboot.locate({names!r}, search_paths=[{str(site)!r}])
        out = {{"found": [l.filename for l in libs]}}
        try:
            gpuboot.preload(libs)
            out["ok"] = True
        except gpuboot.LibraryLoadError as e:
            out["error"] = str(e)
            out["fix"] = e.fix
        import ctypes
        ctypes.CDLL("libc.so.6").getpid()      # the process is still usable
        out["alive"] = True
        {code_after}
        print(json.dumps(out))
    """)
    return json.loads(proc.stdout)


def _stub_site(tmp_path: Path) -> Path:
    return install(tmp_path / "site", wheel("nvidia-cublas-cu12"), real_so=True, needed=CUBLAS_NEEDS)


def test_elf_of_the_wrong_architecture(tmp_path: Path) -> None:
    site = _stub_site(tmp_path)
    lt = site / "nvidia/cublas/lib/libcublasLt.so.12"
    data = bytearray(lt.read_bytes())
    data[18:20] = (183).to_bytes(2, "little")  # e_machine = EM_AARCH64
    lt.write_bytes(bytes(data))
    out = _preload_child(site, ["cublas"])
    assert out["alive"]
    # glibc says "No such file or directory" for a file that is there; gpuboot says why.
    assert "libcublasLt.so.12: it is built for AArch64, this process is x86-64" in out["error"]


def test_truncated_library(tmp_path: Path) -> None:
    site = _stub_site(tmp_path)
    lt = site / "nvidia/cublas/lib/libcublasLt.so.12"
    lt.write_bytes(lt.read_bytes()[:200])
    out = _preload_child(site, ["cublas"])
    assert out["alive"] and "libcublasLt.so.12: it is truncated (200 bytes" in out["error"]


def test_a_library_whose_dependency_is_missing(tmp_path: Path) -> None:
    site = _stub_site(tmp_path)
    (site / "nvidia/cublas/lib/libcublasLt.so.12").unlink()
    out = _preload_child(site, ["cublas"])
    assert out["found"] == ["libcublas.so.12"]
    assert "libcublasLt.so.12" in out["error"]  # the loader names the missing dependency
    assert out["alive"]


def test_broken_symlink_is_not_a_library(tmp_path: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"))
    lib = site / "nvidia/cublas/lib/libcublas.so.12"
    lib.unlink()
    lib.symlink_to(tmp_path / "gone.so")
    res = _resolve.resolve(machine(search_paths=[str(site)], platform="linux"), ["cublas"], cuda_major=12)
    assert [m.name for m in res.missing] == ["cublas"]
    assert res.missing[0].fix == "pip install nvidia-cublas-cu12"


def test_lib_dir_that_is_a_file_or_unreadable(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "nvidia" / "cublas").mkdir(parents=True)
    (site / "nvidia" / "cublas" / "lib").write_text("not a directory")
    assert gpuboot.locate(["cublas"], search_paths=[str(site)]) == []
    if ROOT_USER:
        return  # root reads a mode-000 directory anyway
    other = install(tmp_path / "other", wheel("nvidia-cublas-cu12"))
    d = other / "nvidia/cublas/lib"
    d.chmod(0)
    try:
        assert gpuboot.locate(["cublas"], search_paths=[str(other)]) == []
    finally:
        d.chmod(0o755)


def test_cache_dir_missing_parent_or_not_a_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("GPUBOOT_CACHE_DIR", str(blocker / "cache"))
    with pytest.raises(CacheDirError, match="cannot create"):
        alias_dir()
    monkeypatch.setenv("GPUBOOT_CACHE_DIR", str(blocker))
    with pytest.raises(CacheDirError, match="not a directory"):
        alias_dir()


def test_cache_dir_owned_by_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not ROOT_USER:
        skip_or_fail("making a directory owned by another user needs root")
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 12345, 12345)
    monkeypatch.setenv("GPUBOOT_CACHE_DIR", str(theirs))
    with pytest.raises(CacheDirError, match="owned by uid 12345"):
        alias_dir()


@pytest.mark.parametrize("locked", ["cache", "lib"])
def test_a_read_only_cache_dir_of_ones_own_is_cache_dir_error_with_its_fix(tmp_path: Path, locked: str) -> None:
    """The user's own 0700 cache directory made read-only (``cache``: before gpuboot made its ``lib-*``
    directory; ``lib``: after).  As root, the child runs without the capabilities that bypass permissions."""
    site = _stub_site(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    code = f"""
        import os, gpuboot
        from gpuboot._libs.aliases import alias_dir
        (lib,) = gpuboot.locate(["cudart"], search_paths=[{str(site)!r}])
        if {locked == "lib"!r}:
            os.chmod(alias_dir(), 0o500)
        else:
            os.chmod({str(cache)!r}, 0o500)
        try:
            gpuboot.alias(lib, "libcudart.so")
        except gpuboot.CacheDirError as exc:
            print("CacheDirError:", exc)
    """
    prefix = []
    if ROOT_USER:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot drop the capabilities that bypass permissions")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                  "--inh-caps=-dac_override,-dac_read_search"]
    try:
        proc = subprocess.run([*prefix, sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              timeout=120, env=child_env({"GPUBOOT_CACHE_DIR": str(cache)}))
    finally:
        for d in (cache, *cache.glob("lib-*")):
            d.chmod(0o700)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.startswith("CacheDirError:") and "not writable" in proc.stdout, proc.stdout
    assert "fix: chmod u+w" in proc.stdout and "GPUBOOT_CACHE_DIR" in proc.stdout


def test_no_home_still_works_or_says_why(tmp_path: Path) -> None:
    site = _stub_site(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "GPUBOOT_CACHE_DIR", "XDG_CACHE_HOME")}
    proc = run_child(f"""
        import gpuboot
        (lib,) = [l for l in gpuboot.locate(["cudart", "cublas"], search_paths=[{str(site)!r}])
                  if l.name == "cublasLt"]
        try:
            print("link", gpuboot.alias(lib, "libcublasLt.so"))
        except gpuboot.CacheDirError as e:
            print("error", e)
    """, env=env)
    assert proc.stdout.startswith(("link ", "error "))
    if proc.stdout.startswith("link "):
        link = Path(proc.stdout.split(" ", 1)[1].strip())
        assert os.readlink(link).endswith("libcublasLt.so.12")
        link.unlink()


# --------------------------------------------------------------------------- concurrency


def test_64_threads_ensure_and_select_at_once(tmp_path: Path) -> None:
    """One described machine made current in 64 threads at once: ensure() does its work once (one report,
    whoever asked first), and the round-robin gives every GPU its share."""
    site = install(tmp_path / "site", wheel("nvidia-cublas-cu12"))
    described = machine(nvml=FakeNVML([gpu(A100, i) for i in range(4)]), search_paths=[str(site)],
                        ask_consumers=False)
    reports: List[object] = []
    ordinals: List[int] = []
    errors: List[BaseException] = []
    barrier = threading.Barrier(64)

    def worker(i: int) -> None:
        try:
            barrier.wait()
            with described.scope():
                reports.append(gpuboot.ensure(consumers=[]))
                ordinals.append(select_device(worker=i, environ={}).cuda_ordinal)  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(reports) == 64 and len({id(r) for r in reports}) == 1  # a second run would be another report
    assert sorted(ordinals) == sorted(i % 4 for i in range(64))


def _make_links(args: tuple) -> int:
    site, cache, rounds = args
    os.environ["GPUBOOT_CACHE_DIR"] = cache
    import gpuboot as g

    (lib,) = [x for x in g.locate(["cudart"], search_paths=[site])]
    for _ in range(rounds):
        link = g.alias(lib, "libcudart.so")
        assert os.readlink(link) == str(lib.path)
    return 0


def test_8_processes_create_the_same_alias_at_once(tmp_path: Path, _isolated_cache: Path) -> None:
    site = install(tmp_path / "site", wheel("nvidia-cuda-runtime-cu12"))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(8) as pool:
        assert pool.map(_make_links, [(str(site), str(_isolated_cache), 40)] * 8) == [0] * 8
    (links_dir,) = [p for p in _isolated_cache.iterdir() if p.name.startswith("lib-")]
    assert [p.name for p in links_dir.iterdir()] == ["libcudart.so"]  # no temp file left behind
    assert os.readlink(links_dir / "libcudart.so") == str(site / "nvidia/cuda_runtime/lib/libcudart.so.12")


# --------------------------------------------------------------------------- security: planted decoys


def _decoy(path: Path, soname: str) -> Path:
    """A stub whose constructor writes DECOY to the log: loading it is visible."""
    compile_stub(path, soname)
    src = path.read_bytes()
    assert src
    return path


def test_decoy_in_the_current_directory_is_never_loaded(tmp_path: Path) -> None:
    site = _stub_site(tmp_path)
    cwd = tmp_path / "cwd"
    _decoy(cwd / "nvidia/cublas/lib/libcublasLt.so.12", "libcublasLt.so.12")
    shutil.copy(cwd / "nvidia/cublas/lib/libcublasLt.so.12", cwd / "libcublasLt.so.12")
    log = tmp_path / "log"
    proc = run_child(f"""
        import json, os, sys, gpuboot
        sys.path[:0] = ["", ".", os.getcwd(), {str(site)!r}]   # '' / cwd: what `python -c` / `-m` put there
        libs = gpuboot.locate(["cublas"])
        gpuboot.preload(libs)
        maps = open("/proc/self/maps").read()
        print(json.dumps({{"paths": [str(l.path) for l in libs], "cwd_mapped": os.getcwd() + "/" in maps}}))
    """, cwd=cwd, env={"GPUBOOT_STUB_LOG": str(log)})
    out = json.loads(proc.stdout)
    assert out["paths"] and all(p.startswith(str(site)) for p in out["paths"]), out
    assert not any(p.startswith(str(cwd)) for p in out["paths"])
    assert out["cwd_mapped"] is False


def test_decoy_behind_an_empty_ld_library_path_entry_is_never_loaded(tmp_path: Path) -> None:
    site = _stub_site(tmp_path)
    cwd = tmp_path / "cwd"
    _decoy(cwd / "libcublasLt.so.12", "libcublasLt.so.12")
    libs = gpuboot.locate(["cublas"], search_paths=[str(site)])
    env = hosted(subprocess_env, platform="linux")({"LD_LIBRARY_PATH": ":" + os.environ.get("LD_LIBRARY_PATH",
                                                                                            "") + ":"}, libraries=libs)
    assert "" not in env["LD_LIBRARY_PATH"].split(":")
    log = tmp_path / "log"
    run_child("""
        import ctypes
        ctypes.CDLL("libcublas.so.12")
    """, cwd=cwd, env={"LD_LIBRARY_PATH": env["LD_LIBRARY_PATH"], "GPUBOOT_STUB_LOG": str(log)})
    assert log.read_text().split() == ["libcublasLt.so.12", "libcublas.so.12"]
    proc = run_child(f"""
        import ctypes
        lt = ctypes.CDLL("libcublasLt.so.12")
        print(open("/proc/self/maps").read().count({str(cwd)!r}))
    """, cwd=cwd, env={"LD_LIBRARY_PATH": env["LD_LIBRARY_PATH"]})
    assert proc.stdout.strip() == "0"
    # The control: with the empty entry kept, the loader does take the decoy.
    proc = run_child(f"""
        import ctypes
        ctypes.CDLL("libcublasLt.so.12")
        print(open("/proc/self/maps").read().count({str(cwd)!r}) > 0)
    """, cwd=cwd, env={"LD_LIBRARY_PATH": ":"})
    assert proc.stdout.strip() == "True"


def test_decoy_in_a_world_writable_directory_is_never_found(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    site = install(shared / "site", wheel("nvidia-cublas-cu12"))
    shared.chmod(0o777)  # anyone could swap site/ for their own tree
    try:
        assert gpuboot.locate(["cublas"], search_paths=[str(site)]) == []
        shared.chmod(0o1777)  # sticky, like /tmp: others cannot replace what is ours
        assert len(gpuboot.locate(["cublas"], search_paths=[str(site)])) == 2
        (site / "nvidia/cublas/lib").chmod(0o777)  # the directory itself: never
        assert gpuboot.locate(["cublas"], search_paths=[str(site)]) == []
    finally:
        (site / "nvidia/cublas/lib").chmod(0o755)
        shared.chmod(0o755)
    env = hosted(subprocess_env, platform="linux")({"LD_LIBRARY_PATH": f"{shared}:/usr/lib"}, libraries=[])
    assert env["LD_LIBRARY_PATH"] == f"{shared}:/usr/lib"  # 0755 again: kept
    shared.chmod(0o777)
    try:
        env = hosted(subprocess_env, platform="linux")({"LD_LIBRARY_PATH": f"{shared}:/usr/lib"}, libraries=[])
        assert env["LD_LIBRARY_PATH"] == "/usr/lib"
    finally:
        shared.chmod(0o755)


def test_nothing_is_written_into_site_packages(tmp_path: Path) -> None:
    site = _stub_site(tmp_path)

    def snapshot() -> dict:
        return {str(p): (p.stat().st_mtime_ns, stat.S_IMODE(p.lstat().st_mode)) for p in site.rglob("*")}

    before = snapshot()
    run_child(f"""
        import gpuboot
        from gpuboot.machine.driver import DriverInfo
        from gpuboot.machine.snapshot import Machine
        with Machine(driver=DriverInfo(present=True, evidence="given"), search_paths=[{str(site)!r}]).scope():
            r = gpuboot.ensure(consumers=[])
        assert r.ok, r
        for lib in r.loaded:
            if lib.library.name == "cublasLt":
                gpuboot.alias(lib.library, "libcublasLt.so")
        gpuboot.subprocess_env()
    """)
    assert snapshot() == before


def test_errors_are_gpuboot_errors_with_a_fix() -> None:
    for exc in (LibraryLoadError({"/x": "boom"}), CacheDirError("m", "f")):
        assert isinstance(exc, GpubootError) and exc.fix
