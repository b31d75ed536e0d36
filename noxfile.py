"""Every supported Python, from a built wheel: ``nox -s smoke`` (run by scripts/test).

Each session makes a fresh virtual environment (uv), installs the wheel built
from this checkout with the ``demo`` and ``cuda12`` extras, and runs
``scripts/smoke_installed.py``: ``ensure()``, ``locate()`` + ``preload()`` on the
real CUDA 12 wheels, ``gpuboot doctor --json`` against the shipped schema, and
``gpuboot transcribe`` of the committed recording (WER threshold).

Interpreters are found by ``find_python``: ``pythonX.Y`` on ``PATH`` that really
is X.Y, else pyenv's ``$PYENV_ROOT/versions/X.Y.*``, else ``uv python find``.  A
supported version that cannot be found stops the run with one line that says
where it looked.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import nox

ROOT = Path(__file__).resolve().parent
#: requires-python >= 3.9: every minor version gpuboot supports.
PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
SHIMS = ROOT / ".nox" / "pythons"

nox.options.sessions = ["smoke"]
nox.options.error_on_missing_interpreters = True
nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "no"


def _is_version(exe: str, version: str) -> bool:
    try:
        out = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def find_python(version: str) -> Optional[str]:
    """The path of a working Python ``version`` ("3.9"), or ``None``."""
    on_path = shutil.which(f"python{version}")
    if on_path and _is_version(on_path, version):
        return on_path
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = glob.glob(os.path.join(pyenv_root, "versions", f"{version}.*", "bin", f"python{version}"))
    found = [p for p in found if re.search(rf"/{re.escape(version)}\.\d+/bin/", p)]  # not 3.1 for 3.10
    for exe in sorted(found, key=lambda p: [int(x) for x in re.findall(r"/(\d+)\.(\d+)\.(\d+)/", p)[0]],
                      reverse=True):
        if _is_version(exe, version):
            return exe
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    try:
        out = subprocess.run([uv, "python", "find", "--no-python-downloads", version],
                             capture_output=True, text=True, timeout=30)
        if out.returncode == 0 and _is_version(out.stdout.strip(), version):
            return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return None


def _expose_pythons() -> List[str]:
    """Link each found interpreter as ``.nox/pythons/pythonX.Y`` and put that
    directory first on PATH, so nox and uv pick exactly these."""
    SHIMS.mkdir(parents=True, exist_ok=True)
    missing = []
    for version in PYTHONS:
        exe = find_python(version)
        link = SHIMS / f"python{version}"
        if link.is_symlink() or link.exists():
            link.unlink()
        if exe is None:
            missing.append(version)
            continue
        link.symlink_to(exe)
    os.environ["PATH"] = f"{SHIMS}{os.pathsep}{os.environ.get('PATH', '')}"
    return missing


MISSING = _expose_pythons()
_WHEEL: List[Path] = []


def _wheel(session: nox.Session) -> Path:
    """Build gpuboot's wheel from this checkout once per nox run."""
    if not _WHEEL:
        out = ROOT / ".nox" / "dist"
        shutil.rmtree(out, ignore_errors=True)
        session.run("uv", "build", "--wheel", "--out-dir", str(out), str(ROOT), external=True, silent=True)
        (wheel,) = out.glob("gpuboot-*.whl")
        _WHEEL.append(wheel)
    return _WHEEL[0]


@nox.session(python=PYTHONS)
def smoke(session: nox.Session) -> None:
    """Install the built wheel with [demo,cuda12] and run the smoke checks."""
    if session.python in MISSING:
        session.error(f"Python {session.python} not found (looked for python{session.python} on PATH, in "
                      f"$PYENV_ROOT/versions/{session.python}.*, and with `uv python find`): "
                      f"install it, e.g. `pyenv install {session.python}`")
    wheel = _wheel(session)
    session.install(f"gpuboot[demo,cuda12] @ {wheel.as_uri()}", "jiwer", "jsonschema")
    env = {"HF_HUB_OFFLINE": "1", "GPUBOOT_REQUIRE_REAL": "1"}
    session.run("python", "scripts/smoke_installed.py", env=env)
    if session.python == PYTHONS[-1]:
        # The newest Python resolves av 19 when unbounded: install it on purpose
        # and check that gpuboot names the incompatibility (not "bad audio").
        session.install("av>=19")
        session.run("python", "scripts/smoke_installed.py", "--expect-av-conflict", env=env)
