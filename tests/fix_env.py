"""``gpuboot doctor --fix``'s harness: real pip, a local wheel directory, a throwaway virtual environment per scenario.

The wheel directory (built once per test session) holds gpuboot's own wheel
(``uv build``), its dependencies (downloaded once by pip: packaging,
platformdirs, nvidia-ml-py) and small wheels made here with real metadata
(``METADATA`` with ``Requires-Dist``, ``WHEEL``, ``RECORD``) under the real
project names: ``nvidia-cublas-cu12``/``-cu11``, ``nvidia-cuda-runtime-cu12``,
``nvidia-cudnn-cu12`` 8 and 9 (gcc-built stub libraries with the real sonames),
``ctranslate2`` 3.24.0/4.4.0/4.5.0/4.8.5 and ``torch`` 2.3.1 (metadata only:
torch 2.3.1 pins ``nvidia-cudnn-cu12==8.9.2.26`` as the real one does).

Each scenario is a fresh ``uv venv --seed`` (pip included) with gpuboot and
the scenario's wheels installed from that directory, run on a host that has a
driver and a GPU (``tests/host_with_gpu``: the GPU is the one thing faked).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from helpers import compile_stub, require_real

ROOT = Path(__file__).resolve().parent.parent
OLD_PIP = "22.1.2"
SHIM = Path(__file__).resolve().parent / "host_with_gpu"

#: project -> (version, {path in the wheel: soname of a stub library, or None for an empty file}, Requires-Dist)
WHEELS = {
    ("nvidia-cublas-cu12", "12.9.1.4"): ({"nvidia/cublas/lib/libcublas.so.12": "libcublas.so.12",
                                          "nvidia/cublas/lib/libcublasLt.so.12": "libcublasLt.so.12"}, []),
    ("nvidia-cublas-cu11", "11.11.3.6"): ({"nvidia/cublas/lib/libcublas.so.11": "libcublas.so.11",
                                           "nvidia/cublas/lib/libcublasLt.so.11": "libcublasLt.so.11"}, []),
    ("nvidia-cuda-runtime-cu12", "12.9.79"): ({"nvidia/cuda_runtime/lib/libcudart.so.12": "libcudart.so.12"}, []),
    ("nvidia-cudnn-cu12", "8.9.2.26"): ({"nvidia/cudnn/lib/libcudnn.so.8": "libcudnn.so.8"}, ["nvidia-cublas-cu12"]),
    ("nvidia-cudnn-cu12", "9.1.0.70"): ({"nvidia/cudnn/lib/libcudnn.so.9": "libcudnn.so.9"}, ["nvidia-cublas-cu12"]),
    ("ctranslate2", "3.24.0"): ({}, []),
    ("ctranslate2", "4.4.0"): ({}, []),
    ("ctranslate2", "4.5.0"): ({}, []),
    ("ctranslate2", "4.8.5"): ({}, []),
    ("torch", "2.3.1"): ({}, ['nvidia-cudnn-cu12==8.9.2.26; platform_system == "Linux"',
                             'nvidia-cublas-cu12; platform_system == "Linux"',
                             'nvidia-cuda-runtime-cu12; platform_system == "Linux"']),
}


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(out: Path, project: str, version: str, files: Dict[str, Optional[str]], requires: Sequence[str],
                work: Path) -> Path:
    """A real wheel (zip with METADATA, WHEEL, RECORD) of ``project`` ``version``;
    each file a gcc-built stub with the given soname (or empty)."""
    dist = project.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    contents: Dict[str, bytes] = {}
    for rel, soname in files.items():
        if soname:
            stub = compile_stub(work / f"{dist}-{version}" / Path(rel).name, soname)
            contents[rel] = stub.read_bytes()
        else:
            contents[rel] = b""
    meta = ["Metadata-Version: 2.1", f"Name: {project}", f"Version: {version}",
            "Summary: test wheel built by gpuboot's tests (stub libraries, not NVIDIA's)"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    contents[f"{info}/METADATA"] = ("\n".join(meta) + "\n").encode()
    contents[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: gpuboot-tests\nRoot-Is-Purelib: true\n"
                                 b"Tag: py3-none-any\n")
    record = [_record_line(n, d) for n, d in contents.items()] + [f"{info}/RECORD,,"]
    contents[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = out / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in contents.items():
            z.writestr(name, data)
    return path


def _uv() -> str:
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not os.path.exists(uv):
        require_real("uv (pip install 'gpuboot[ci]')")
    return uv


def wheelhouse(root: Path) -> Path:
    """gpuboot's wheel, its dependencies, and the test wheels in one directory."""
    out = root / "wheels"
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([_uv(), "build", "--wheel", "--out-dir", str(out), str(ROOT)], check=True, capture_output=True,
                   timeout=600)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "-d", str(out),
                    "packaging", "platformdirs", "nvidia-ml-py"], check=True, capture_output=True, timeout=600)
    # pip 22.1, the last without `install --dry-run --report`: --fix cannot check an install first with it.
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                    "-d", str(out), f"pip=={OLD_PIP}"], check=True, capture_output=True, timeout=600)
    for (project, version), (files, requires) in WHEELS.items():
        build_wheel(out, project, version, files, requires, root / "build")
    return out


class Scenario:
    """A fresh virtual environment with gpuboot and ``installed`` from the wheel directory."""

    def __init__(self, tmp: Path, wheels: Path, installed: Sequence[str], venv: str = "venv") -> None:
        self.tmp = tmp
        self.wheels = wheels
        self.venv = tmp / venv
        subprocess.run([_uv(), "venv", "-q", "--seed", "--python", sys.executable, str(self.venv)], check=True,
                       capture_output=True, timeout=300)
        self.python = self.venv / "bin" / "python"
        self.pip("install", "gpuboot", *installed)

    def pip(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.python), "-m", "pip", *args, "-q", "--disable-pip-version-check",
                               "--no-index", "--find-links", str(self.wheels)] if args[0] == "install" else
                              [str(self.python), "-m", "pip", *args], check=True, capture_output=True, text=True,
                              timeout=300)

    @property
    def site(self) -> Path:
        (site,) = (self.venv / "lib").glob("python3*/site-packages")
        return site

    def env(self) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTHON", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "CUDA_", "NVIDIA_"))}
        env["PYTHONPATH"] = f"{SHIM}{os.pathsep}{SHIM.parent}"
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        return env

    def gpuboot(self, *args: str, stdin: Optional[str] = None, cwd: Optional[Path] = None,
                script: bool = False) -> subprocess.CompletedProcess:
        """``python -m gpuboot ARGS`` (or the ``gpuboot`` script) in the scenario's environment, run from
        ``cwd`` (the scenario's directory); stdin is not a terminal."""
        command = [str(self.venv / "bin" / "gpuboot")] if script else [str(self.python), "-m", "gpuboot"]
        return subprocess.run([*command, *args], capture_output=True, text=True, timeout=600, env=self.env(),
                              input=stdin or "", cwd=cwd or self.tmp)

    def fix(self, *extra: str, cwd: Optional[Path] = None, script: bool = False) -> subprocess.CompletedProcess:
        return self.gpuboot("doctor", "--fix", *extra, "--", "--no-index", "--find-links", str(self.wheels), cwd=cwd,
                            script=script)

    def versions(self) -> Dict[str, str]:
        out = subprocess.run([str(self.python), "-m", "pip", "list", "--format", "freeze"], capture_output=True,
                             text=True, check=True).stdout
        return {line.split("==")[0].lower(): line.split("==")[1] for line in out.splitlines() if "==" in line}


def findings(proc: subprocess.CompletedProcess) -> List[str]:
    return [line for line in proc.stdout.splitlines() if line.startswith(("problem", "warning"))]
