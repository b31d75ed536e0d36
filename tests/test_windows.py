"""Windows for real: gpuboot run by the real Windows CPython under Wine, against the real Windows loader.

Each test runs a script in the embeddable CPython (tests/wine.py) and checks
what Windows' loader did: real win_amd64 wheels where they are small, mingw
stub DLLs under the real names and import tables where the real one is 550 MB.
The last test holds the fake Windows API of the unit tests (test_dllpath.py)
to the same expectations as the real loader.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
from helpers import hosted, machine, require_real
from wine import WinPython, mingw_dll, winpath

from gpuboot._libs import resolve as _resolve

pytestmark = pytest.mark.slow  # the whole tier (pyproject's markers)

LT_C = "__declspec(dllexport) int cublasLtGetVersion(void) { return 120902; }\n"
CUBLAS_C = ("__declspec(dllimport) int cublasLtGetVersion(void);\n"
            "__declspec(dllexport) int cublasGetVersion_v2(void) { return cublasLtGetVersion(); }\n")
DECOY_C = "__declspec(dllexport) int decoy_marker(void) { return 666; }\n"

#: bare_load(): cublas64_12.dll loaded by bare name with plain LoadLibraryA, as
#: CTranslate2 does; the file Windows mapped, or None.
BARE_LOAD = """
import ctypes, json, subprocess


def bare_load():
    k32 = ctypes.WinDLL("kernel32", use_last_error=True)
    k32.LoadLibraryA.restype = ctypes.c_void_p
    k32.GetModuleFileNameW.argtypes = [ctypes.c_void_p, ctypes.c_wchar_p, ctypes.c_uint]
    h = k32.LoadLibraryA(b"cublas64_12.dll")
    if not h:
        return None
    buf = ctypes.create_unicode_buffer(1024)
    n = k32.GetModuleFileNameW(h, buf, 1024)
    return buf.value[:n]
"""


@pytest.fixture(scope="module")
def py313() -> WinPython:
    return WinPython("3.13").provision()


@pytest.fixture(scope="module")
def py39() -> WinPython:
    return WinPython("3.9").provision()


def cublas_site(root: Path, consumer: bool = True, stubs: bool = True) -> Path:
    """A site directory as pip lays out nvidia-cublas-cu12 on Windows (stub DLLs
    with the real names; cublas64_12.dll imports cublasLt64_12.dll), and
    ctranslate2's metadata (a consumer that needs CUDA 12 cuBLAS).  ``stubs=False``:
    the DLLs are already there (built with other link flags)."""
    site = root / "site"
    bindir = site / "nvidia" / "cublas" / "bin"
    if stubs:
        mingw_dll(bindir / "cublasLt64_12.dll", LT_C)
        mingw_dll(bindir / "cublas64_12.dll", CUBLAS_C, ("cublasLt64_12.dll",))
    info = site / "nvidia_cublas_cu12-12.9.2.10.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nvidia-cublas-cu12\nVersion: 12.9.2.10\n")
    (info / "RECORD").write_text("nvidia/cublas/bin/cublas64_12.dll,,\nnvidia/cublas/bin/cublasLt64_12.dll,,\n")
    if consumer:
        ct2 = site / "ctranslate2-4.8.5.dist-info"
        ct2.mkdir()
        (ct2 / "METADATA").write_text("Metadata-Version: 2.1\nName: ctranslate2\nVersion: 4.8.5\n")
    return site


def test_windows_python_and_namespace_wheels(py313: WinPython, tmp_path: Path) -> None:
    """The interpreter is Windows CPython, and the NVIDIA wheels are namespace
    packages whose __file__ is None (the relay app's failure)."""
    out = py313.json("""
        import json, os, sys, nvidia.cuda_runtime
        print(json.dumps([sys.platform, os.name, sys.version_info[:2], nvidia.cuda_runtime.__file__]))
    """, tmp_path)
    assert out == ["win32", "nt", [3, 13], None]


def test_locate_real_wheels_in_both_layouts(py313: WinPython, tmp_path: Path) -> None:
    out = py313.json("""
        import json, gpuboot
        rows = {}
        for major in (12, 13):
            (lib,) = gpuboot.locate(["cudart"], cuda_major=major)
            rows[major] = [str(lib.path), lib.filename, lib.soname, lib.cuda_major, lib.distribution]
        print(json.dumps(rows))
    """, tmp_path)
    path12, name12, soname12, major12, dist12 = out["12"]
    assert path12.lower().endswith(r"\nvidia\cuda_runtime\bin\cudart64_12.dll")
    assert (name12, soname12, major12, dist12) == ("cudart64_12.dll", "cudart64_12.dll", 12, "nvidia-cuda-runtime-cu12")
    path13, name13, soname13, major13, _ = out["13"]
    assert path13.lower().endswith(r"\nvidia\cu13\bin\x86_64\cudart64_13.dll")
    assert (name13, soname13, major13) == ("cudart64_13.dll", "cudart64_13.dll", 13)


def test_ensure_makes_a_bare_name_loadlibrarya_work(py313: WinPython, tmp_path: Path) -> None:
    site = cublas_site(tmp_path)
    out = py313.json(f"""
        import sys; sys.path.insert(0, {winpath(site)!r})
        before = bare_load()
        import gpuboot, os
        from gpuboot.machine.driver import DriverInfo
        from gpuboot.machine.snapshot import Machine
        with Machine(driver=DriverInfo(present=True, evidence="given"), search_paths=[{winpath(site)!r}]).scope():
            r = gpuboot.ensure(consumers=["ctranslate2"])
        entries = os.environ["PATH"].split(";")
        print(json.dumps({{"before": before, "after": bare_load(),
                          "loaded": [x.library.filename for x in r.loaded], "missing": [m.name for m in r.missing],
                          "path0": entries[0], "bad": [e for e in entries if not e or not os.path.isabs(e)]}}))
    """, tmp_path, prelude=BARE_LOAD)
    assert out["before"] is None  # the control: Windows cannot find the wheel's DLL by name on its own
    assert out["loaded"] == ["cublasLt64_12.dll", "cublas64_12.dll"] and out["missing"] == []
    assert out["after"].lower() == (winpath(site) + r"\nvidia\cublas\bin\cublas64_12.dll").lower()
    assert out["path0"].lower() == (winpath(site) + r"\nvidia\cublas\bin").lower()
    assert out["bad"] == []  # no empty, current-directory or relative entry reached PATH


def test_a_decoy_in_the_current_directory_is_never_loaded(py313: WinPython, tmp_path: Path) -> None:
    site = cublas_site(tmp_path)
    work = tmp_path / "work"
    mingw_dll(work / "cublas64_12.dll", DECOY_C)
    out = py313.json(f"""
        import sys; sys.path.insert(0, {winpath(site)!r})
        import gpuboot
        from gpuboot.machine.driver import DriverInfo
        from gpuboot.machine.snapshot import Machine
        with Machine(driver=DriverInfo(present=True, evidence="given")).scope():
            gpuboot.ensure(consumers=["ctranslate2"])
        print(json.dumps(bare_load()))
    """, tmp_path, cwd=work, prelude=BARE_LOAD)
    assert out.lower().startswith(winpath(site).lower())  # the wheel's copy, found first by search_paths/sys.path


#: Link flags that make Wine map a DLL where real Windows maps 64-bit DLLs
#: (ASLR, above 4 GiB): a fixed image base up there and no relocation section,
#: so the loader cannot move it lower (Wine relocates relocatable DLLs below 4 GiB).
HIGH_BASE = ("-Wl,--image-base,0x7ffa12340000", "-Wl,--disable-dynamicbase", "-Wl,--disable-reloc-section")


def test_ensure_after_a_dll_mapped_above_4_gib_was_loaded(py313: WinPython, tmp_path: Path) -> None:
    """torch (or anything) loaded cublas64_12.dll first and Windows mapped it
    above 4 GiB: ensure() and preload() report it as already loaded, never raise
    (a module handle passed as a C int raised ctypes.ArgumentError)."""
    site = tmp_path / "site"
    bindir = site / "nvidia" / "cublas" / "bin"
    mingw_dll(bindir / "cublasLt64_12.dll", LT_C, (), ("-Wl,--image-base,0x7ffa22340000",
                                                     *HIGH_BASE[1:]))
    mingw_dll(bindir / "cublas64_12.dll", CUBLAS_C, ("cublasLt64_12.dll",), HIGH_BASE)
    cublas_site(tmp_path, consumer=True, stubs=False)
    out = py313.json(f"""
        import ctypes, json, sys
        sys.path.insert(0, {winpath(site)!r})
        first = ctypes.WinDLL({winpath(bindir / "cublas64_12.dll")!r})  # as torch does, before gpuboot
        import gpuboot
        from gpuboot.dllpath import preload
        from gpuboot.machine.driver import DriverInfo
        from gpuboot.machine.snapshot import Machine
        with Machine(driver=DriverInfo(present=True, evidence="given"), search_paths=[{winpath(site)!r}]).scope():
            r = gpuboot.ensure(consumers=["ctranslate2"])
        again = preload(gpuboot.locate(["cublas"], search_paths=[{winpath(site)!r}]))
        print(json.dumps({{"handle": first._handle,
                          "loaded": [[x.library.filename, x.already_loaded, str(x.loaded_path), x.error]
                                     for x in r.libraries],
                          "failed": [[x.library.filename, x.error] for x in r.libraries if not x.ok],
                          "again": [[x.library.filename, x.already_loaded] for x in again]}}))
    """, tmp_path)
    assert out["handle"] >= 2**32, hex(out["handle"])  # the control: the DLL really is mapped above 4 GiB
    assert out["failed"] == []
    rows = {name: (already, path, error) for name, already, path, error in out["loaded"]}
    assert set(rows) == {"cublasLt64_12.dll", "cublas64_12.dll"}
    for name, (already, path, error) in rows.items():
        assert already is True and error is None, (name, rows)
        assert path.lower().endswith("\\nvidia\\cublas\\bin\\" + name.lower()), rows
    assert out["again"] == [["cublasLt64_12.dll", True], ["cublas64_12.dll", True]]


def test_subprocess_env_lets_a_child_load_by_bare_name(py313: WinPython, tmp_path: Path) -> None:
    site = cublas_site(tmp_path)
    child = tmp_path / "child.py"
    child.write_text(BARE_LOAD + "\nprint(json.dumps(bare_load()))\n")
    out = py313.json(f"""
        import sys, json, subprocess, os; sys.path.insert(0, {winpath(site)!r})
        import gpuboot
        libs = gpuboot.locate(["cublas"], search_paths=[{winpath(site)!r}])
        env = gpuboot.subprocess_env(libraries=libs)
        plain = dict(os.environ)
        run = lambda e: subprocess.run([sys.executable, {winpath(child)!r}], capture_output=True, text=True,
                                       input="", env=e).stdout.strip().splitlines()[-1]
        print(json.dumps({{"with": json.loads(run(env)), "without": json.loads(run(plain))}}))
    """, tmp_path)
    assert out["without"] is None
    assert out["with"].lower().endswith(r"\nvidia\cublas\bin\cublas64_12.dll")


def test_gpuboot_env_cmd_lines_run_by_cmd_exe_make_a_child_load(py313: WinPython, tmp_path: Path) -> None:
    site = cublas_site(tmp_path)
    lines = py313.run(f"""
        import sys; sys.path.insert(0, {winpath(site)!r})
        from gpuboot.cli import main
        sys.exit(main(["env", "--shell", "cmd"]))
    """, tmp_path).stdout.strip().splitlines()
    assert lines and lines[0].startswith('set "PATH=') and lines[0].endswith(';%PATH%"')
    child = tmp_path / "child.py"
    child.write_text(BARE_LOAD + "\nprint(json.dumps(bare_load()))\n")
    bat = tmp_path / "run.bat"
    bat.write_text("@echo off\r\n" + lines[0] + "\r\n" + f'"{winpath(py313.exe)}" "{winpath(child)}"\r\n')
    proc = subprocess.run(["wine", "cmd", "/c", winpath(bat)], capture_output=True, text=True, timeout=300,
                          input="", env=py313.env(), cwd=str(tmp_path))
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded.lower().endswith(r"\nvidia\cublas\bin\cublas64_12.dll")


def test_doctor_json_on_windows_names_the_missing_path_entry(py313: WinPython, tmp_path: Path) -> None:
    """`gpuboot doctor --json` as a user runs it (the CLI), in the Windows interpreter."""
    site = cublas_site(tmp_path)
    out = py313.json(f"""
        import sys, io, json, contextlib; sys.path.insert(0, {winpath(site)!r})
        from gpuboot.cli import main
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main(["doctor", "--json", "--for", "ctranslate2"])
        print(json.dumps({{"code": code, "report": json.loads(buf.getvalue())}}))
    """, tmp_path)
    report = out["report"]
    assert out["code"] == 1 and report["schema_version"] == 3  # 3: CUDA's answer is the driver's verdict
    findings = {f["id"]: f for f in report["findings"]}
    assert findings["consumer-ready"]["severity"] == "ok"
    assert findings["no-driver"]["evidence"][0].lower().endswith(r"system32\nvcuda.dll not found")
    probe = report["driver"]["probe"]  # the driver asked for real: Windows' loader has no nvcuda.dll here
    assert probe["platform"] == "win32" and probe["libcuda"] is None and probe["libcuda_error"]
    f = findings["windows-dll-dirs-not-on-path"]
    assert f["severity"] == "problem" and "gpuboot.ensure()" in f["remedy"] and "--shell cmd" in f["remedy"]
    assert any(e.lower().endswith(r"\nvidia\cublas\bin") for e in f["evidence"])


def test_the_fake_windows_api_agrees_with_the_real_loader(py313: WinPython, tmp_path: Path) -> None:
    """The same preload through the unit tests' fake Windows API (on Linux)
    and through the real one (Windows CPython under Wine): the same libraries
    in the same order, the same outcome, the same PATH head."""
    from test_dllpath import FakeWindowsAPI

    import gpuboot.dllpath

    site = cublas_site(tmp_path)
    real: Dict[str, Any] = py313.json(f"""
        import json, os, gpuboot
        from gpuboot.dllpath import get_loader, load_all
        libs = gpuboot.locate(["cublas"], search_paths=[{winpath(site)!r}])
        env = {{"PATH": r"C:\\windows\\system32"}}
        res = load_all(libs, get_loader(), env)
        print(json.dumps({{"results": [[r.library.filename, r.ok, r.already_loaded] for r in res],
                          "path": [os.path.basename(p) for p in env["PATH"].split(";")]}}))
    """, tmp_path)
    libs = _resolve.locate(machine(search_paths=[str(site)], platform="win32"), ["cublas"])
    env = {"PATH": r"C:\windows\system32"}
    loader = hosted(gpuboot.dllpath.get_loader, windows_api=FakeWindowsAPI())("win32")
    fake = gpuboot.dllpath.load_all(libs, loader, env)
    assert [[r.library.filename, r.ok, r.already_loaded] for r in fake] == real["results"]
    assert [os.path.basename(p.replace("\\", "/")) for p in env["PATH"].split(";")] == real["path"]


def test_python_39_finds_and_preloads_too(py39: WinPython, tmp_path: Path) -> None:
    site = cublas_site(tmp_path)
    out = py39.json(f"""
        import sys, json; sys.path.insert(0, {winpath(site)!r})
        import gpuboot, nvidia.cuda_runtime
        (cudart,) = gpuboot.locate(["cudart"], cuda_major=12)
        from gpuboot.machine.driver import DriverInfo
        from gpuboot.machine.snapshot import Machine
        with Machine(driver=DriverInfo(present=True, evidence="given"), search_paths=[{winpath(site)!r}]).scope():
            r = gpuboot.ensure(consumers=["ctranslate2"])
        print(json.dumps([sys.version_info[:2], nvidia.cuda_runtime.__file__, cudart.soname,
                          [x.library.filename for x in r.loaded], bare_load()]))
    """, tmp_path, prelude=BARE_LOAD)
    version, init_file, soname, loaded, path = out
    assert version == [3, 9] and init_file is None and soname == "cudart64_12.dll"
    assert loaded == ["cublasLt64_12.dll", "cublas64_12.dll"]
    assert path.lower().endswith(r"\nvidia\cublas\bin\cublas64_12.dll")


def test_the_main_job_end_to_end(py313: WinPython, tmp_path: Path) -> None:
    """`python -m gpuboot transcribe` of the committed recording with the real
    win_amd64 wheels of faster-whisper, CTranslate2, PyAV, tokenizers and the
    tiny.en model, on the CPU (Wine has no GPU)."""
    from speech import SAMPLE, WER_LIMIT, wer

    whisper_site = py313.provision_whisper()
    out = py313.json(f"""
        import sys, io, json, contextlib
        sys.path.insert(0, {winpath(whisper_site)!r})
        from gpuboot.cli import main
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main(["transcribe", {winpath(SAMPLE)!r}, "--json"])
        print(json.dumps({{"code": code, "result": json.loads(buf.getvalue())}}))
    """, tmp_path)
    assert out["code"] == 0
    result = out["result"]
    assert wer(result["text"]) <= WER_LIMIT, result["text"]
    assert (result["device"], result["compute_type"], result["batched"]) == ("cpu", "int8", True)
    assert "nvcuda.dll not found" in result["reason"]


#: Harness, not product (a .pth sorted before the hook's): the driver's file where gpuboot looks for it, and at exit
#: what the process's DLL search gives for cuBLAS -- the module already mapped, or LoadLibraryA by bare name.
HOOK_HARNESS = (
    "import os, atexit; os.environ['SystemRoot'] = {root!r}; atexit.register(lambda: open({out!r}, 'w').write("
    "__import__('json').dumps(__import__('gpuboot_test_dll_search').search())))\n")
DLL_SEARCH = BARE_LOAD + """
def search():
    k32 = ctypes.WinDLL("kernel32", use_last_error=True)
    k32.GetModuleHandleW.restype = ctypes.c_void_p
    return {"mapped": bool(k32.GetModuleHandleW("cublas64_12.dll")), "bare": bare_load()}
"""


def test_the_hook_makes_an_unmodified_command_find_cublas(py313: WinPython, tmp_path: Path) -> None:
    """whisper-ctranslate2 from PyPI, unmodified, in a Windows Python whose site-packages holds gpuboot-hook.pth
    (written by `gpuboot hook install` run there): before its first `import ctranslate2`, ensure() has put the
    cuBLAS wheel's directory on the DLL search path, so CTranslate2's LoadLibraryA("cublas64_12.dll") finds it;
    GPUBOOT_HOOK=0 is the control.  The driver's file is a stub nvcuda.dll (Wine has no GPU)."""
    import shutil

    whisper_site = py313.provision_whisper()
    site = cublas_site(tmp_path, consumer=False)
    extra = tmp_path / "wc2"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                           "--target", str(extra), "whisper-ctranslate2"], capture_output=True, text=True)
    if proc.returncode != 0:
        require_real(f"whisper-ctranslate2 from PyPI ({proc.stderr[-300:]})")
    home = tmp_path / "py"
    shutil.copytree(py313.exe.parent, home)
    packages = home / "Lib" / "site-packages"
    packages.mkdir(parents=True)
    (home / "python313._pth").write_text("\n".join(["python313.zip", ".", winpath(extra), winpath(whisper_site),
                                                    winpath(site), winpath(py313.site),
                                                    winpath(Path(__file__).resolve().parent.parent / "src"),
                                                    "import site"]) + "\n")
    fake_root = tmp_path / "windows"
    mingw_dll(fake_root / "System32" / "nvcuda.dll", "__declspec(dllexport) int cuInit(unsigned f) { return 100; }\n")
    (packages / "gpuboot_test_dll_search.py").write_text(DLL_SEARCH)
    result = tmp_path / "search.json"
    (packages / "00-gpuboot-test.pth").write_text(HOOK_HARNESS.format(root=winpath(fake_root),
                                                                      out=winpath(result)))
    exe = home / "python.exe"
    # whisper-ctranslate2's --help holds non-Latin text that a cp1252 console cannot print (its bug, not the hook's).
    env = {**py313.env(), "PYTHONIOENCODING": "utf-8"}

    def wine(*args: str, hook: str = "1") -> subprocess.CompletedProcess:
        return subprocess.run(["wine", str(exe), *args], capture_output=True, text=True, input="", timeout=600,
                              env={**env, "GPUBOOT_HOOK": hook, "GPUBOOT_HOOK_DEBUG": "1"}, cwd=str(tmp_path))

    installed = wine("-m", "gpuboot", "hook", "install", "--site", winpath(packages))
    assert installed.returncode == 0, installed.stderr[-2000:]
    assert (packages / "gpuboot-hook.pth").exists()
    command = ("import sys; sys.argv = ['whisper-ctranslate2', '--help']; "
               "from whisper_ctranslate2.whisper_ctranslate2 import main; sys.exit(main())")
    seen: Dict[str, Any] = {}
    for hook in ("1", "0"):
        ran = wine("-c", command, hook=hook)
        assert ran.returncode == 0 and "--model_directory" in ran.stdout, ran.stderr[-2000:]
        seen[hook] = json.loads(result.read_text())
        seen[hook]["log"] = [x for x in ran.stderr.splitlines() if x.startswith("gpuboot hook")]
    wheel_dll = (winpath(site) + r"\nvidia\cublas\bin\cublas64_12.dll").lower()
    assert seen["1"]["mapped"] is True and (seen["1"]["bare"] or "").lower() == wheel_dll, seen
    assert seen["1"]["log"] == ["gpuboot hook: ensure() before `import ctranslate2`: 2 NVIDIA libraries ready"]
    assert seen["0"] == {"mapped": False, "bare": None, "log": []}  # the control: Windows cannot find it alone


def test_the_command_on_windows_compares_names_as_ntfs_and_prints_utf8_json(py313: WinPython, tmp_path: Path) -> None:
    """On Windows (Wine's drives find a name in any case, as NTFS does): ``Talk.wav`` and ``talk.flac`` would
    write one ``talk.srt`` and are refused before any work; and ``--json`` piped, where Windows Python's stdout is
    the ANSI code page, still carries a non-Latin file name, as UTF-8."""
    from speech import SAMPLE, WER_LIMIT, wer

    whisper_site = py313.provision_whisper()
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / "Talk.wav")
    shutil.copy(SAMPLE, folder / "talk.flac")
    named = folder / "東京 café.wav"
    shutil.copy(SAMPLE, named)
    out = py313.json(f"""
        import sys, io, json, subprocess, contextlib
        sys.path.insert(0, {winpath(whisper_site)!r})
        from gpuboot.cli.inputs import case_insensitive
        from gpuboot.cli import main
        err = io.StringIO()
        clash = main(["transcribe", {winpath(folder / "Talk.wav")!r}, {winpath(folder / "talk.flac")!r},
                      "--output-dir", {winpath(tmp_path / "out")!r}], stdout=io.StringIO(), stderr=err)
        child = ("import sys; sys.modules['_wmi'] = None; sys.path.insert(0, " + repr({winpath(whisper_site)!r})
                 + "); from gpuboot.cli import main; sys.exit(main())")  # the harness's Wine shim, as above
        proc = subprocess.run([sys.executable, "-c", child, "transcribe", {winpath(named)!r}, "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, input=b"")
        print(json.dumps({{"insensitive": case_insensitive(__import__("pathlib").Path({winpath(tmp_path)!r})),
                          "clash": clash, "err": err.getvalue(), "encoding": sys.stdout.encoding,
                          "code": proc.returncode, "stdout": proc.stdout.decode("utf-8"),
                          "stderr": proc.stderr.decode("utf-8", "replace")[-2000:]}}))
    """, tmp_path)
    assert out["insensitive"] is True
    assert out["clash"] == 2 and "would both write" in out["err"], out["err"]  # a usage error, as on Linux
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # refused before any work
    assert out["encoding"].lower().replace("-", "") != "utf8", out["encoding"]  # the pipe is not UTF-8 by itself
    assert out["code"] == 0, out["stderr"]
    result = json.loads(out["stdout"])
    assert result["audio"].endswith("東京 café.wav") and wer(result["text"]) <= WER_LIMIT, result
