"""Dependencies: the bounds in pyproject.toml re-checked against what is
installed, and errors that name the package that really failed."""

from __future__ import annotations

import importlib.machinery
import inspect
import io
import logging
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Dict, Optional

import pytest
from helpers import child_env, compile_stub, injected, run_child, skip_or_fail
from marks import needs_model
from packaging.requirements import Requirement
from probes import healthy
from speech import SAMPLE, SAMPLE_SECONDS

import gpuboot
from gpuboot.base import deps as _deps
from gpuboot.whisper import decode, verify_decoder
from gpuboot.whisper.audio import _decode_failure, _wav_bytes

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

fw = pytest.importorskip("faster_whisper")


def gpuboot_cli(*args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuboot", *args], capture_output=True,
                          text=True, timeout=300, env=child_env(env))


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("gpuboot: error: ")
    return lines[0]


# --------------------------------------------------------------------------- the av bound

def _declared(extra: str, name: str) -> Requirement:
    for line in metadata.requires("gpuboot") or []:
        req = Requirement(line)
        if req.name == name and req.marker is not None and req.marker.evaluate({"extra": extra}):
            return req
    raise AssertionError(f"gpuboot[{extra}] declares no {name} requirement")


def test_faster_whisper_decodes_the_committed_recording() -> None:
    """The check behind the ``av<19`` bound: faster-whisper's own decoder, with
    the av this environment resolved, reads the committed WAV."""
    samples = fw.decode_audio(str(SAMPLE))
    assert abs(len(samples) / 16000 - SAMPLE_SECONDS) < 0.01
    assert samples.dtype.name == "float32" and 0 < float(abs(samples).max()) <= 1.0


@pytest.mark.parametrize("extra", ["whisper", "demo"])
def test_av_bound_is_declared_while_faster_whisper_needs_it(extra: str) -> None:
    """faster-whisper passes ``metadata_errors=`` to ``av.open`` (1.2.1 does);
    av 19 removed it.  While the installed faster-whisper still does, the
    extras must keep av below 19; once it no longer does, this test says the
    bound can be lifted."""
    passes_it = "metadata_errors" in inspect.getsource(fw.audio.decode_audio)
    av = _declared(extra, "av")
    if passes_it:
        assert not av.specifier.contains("19.0.0"), f"gpuboot[{extra}] must keep av<19: {av}"
        assert av.specifier.contains(metadata.version("av"))
    else:
        pytest.fail(f"faster-whisper {metadata.version('faster-whisper')} no longer passes metadata_errors: "
                    f"lift the av bound ({av}) in pyproject.toml")


# --------------------------------------------------------------------------- decode errors

def test_an_api_mismatch_is_named_as_such_not_as_bad_audio() -> None:
    """A real TypeError from av.open (an unknown keyword, as av 19 gives for
    metadata_errors) is a dependency incompatibility, not bad audio."""
    import av

    with pytest.raises(TypeError) as raised:
        av.open(io.BytesIO(_wav_bytes()), mode="r", metadata_errors_removed_in_this_test="ignore")
    err = _decode_failure("x.wav", raised.value)
    assert isinstance(err, gpuboot.IncompatibleDependencyError)
    assert f"faster-whisper {metadata.version('faster-whisper')}" in str(err)
    assert f"av {metadata.version('av')}" in str(err)
    assert "audio" not in err.fix


def test_the_known_av19_conflict_gets_its_fix() -> None:
    err = _deps.decoder_conflict(TypeError("open() got an unexpected keyword argument 'metadata_errors'"))
    assert isinstance(err, gpuboot.IncompatibleDependencyError)
    assert err.fix == "pip install 'av<19'"
    assert "av 19 removed" in str(err)


def test_ffmpeg_refusing_a_file_is_bad_audio(tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    with pytest.raises(gpuboot.AudioError, match="could not be decoded as audio"):
        decode(str(bad))


def test_verify_decoder_passes_with_the_installed_versions() -> None:
    verify_decoder()  # raises IncompatibleDependencyError when faster-whisper and av disagree


def test_path_too_long_is_one_line() -> None:
    proc = gpuboot_cli("transcribe", "a" * 300 + ".wav")
    assert proc.returncode == 1
    assert "File name too long" in one_error_line(proc)


def test_a_folder_without_audio_is_one_line(tmp_path: Path) -> None:
    """A folder is walked for recordings; one holding none is one line naming the suffixes looked for."""
    (tmp_path / "notes.txt").write_text("not audio")
    proc = gpuboot_cli("transcribe", str(tmp_path))
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert "holds no audio files" in line and "*.wav" in line and "*.mp3" in line, line


def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    """A file this process may not read.  Root reads everything, so as root
    the child runs without the two capabilities that bypass file permissions
    (``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH``) but keeps uid 0: it still
    reaches a checkout under a 0700 home (``/root``), and the 0000 file is
    unreadable to it as to any user."""
    audio = tmp_path / "locked.wav"
    shutil.copy(SAMPLE, audio)
    audio.chmod(0o000)
    try:
        cmd = [sys.executable, "-m", "gpuboot", "transcribe", str(audio)]
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                skip_or_fail("running as root without setpriv: cannot drop the capabilities that bypass permissions")
            cmd = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=child_env())
        assert proc.returncode == 1, proc.stderr
        assert "not readable" in one_error_line(proc)
    finally:
        audio.chmod(0o600)


# --------------------------------------------------------------------------- import failures

def _broken_package(site: Path, name: str, version: str) -> Path:
    """A package ``name`` whose extension module really fails to load: its
    DT_NEEDED names a library that is gone (compiled, linked against, deleted)."""
    work = site.parent / "build"
    gone = compile_stub(work / "libgpuboot_gone.so.1", "libgpuboot_gone.so.1")
    ext = f"{name}{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    compile_stub(work / ext, ext, [gone.name])
    pkg = site / name
    pkg.mkdir(parents=True)
    shutil.move(str(work / ext), str(pkg / ext))
    shutil.rmtree(work)
    (pkg / "__init__.py").write_text(f"from .{name} import *\n")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text(f"{name}/__init__.py,,\n{name}/{ext},,\n")
    return site


def test_a_dependency_that_fails_to_load_is_named_with_its_version(tmp_path: Path) -> None:
    """tokenizers (which faster-whisper imports) replaced by a copy whose
    shared object cannot load: the error names tokenizers, its version and the
    loader's message -- not "faster-whisper is not installed", not bad audio."""
    site = _broken_package(tmp_path / "site", "tokenizers", "0.0.1")
    proc = gpuboot_cli("transcribe", str(SAMPLE), env={"PYTHONPATH": f"{site}{os.pathsep}{SRC}"})
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert "tokenizers 0.0.1 (needed by faster-whisper" in line
    assert "libgpuboot_gone.so.1" in line
    assert "not installed" not in line and "decoded" not in line
    assert "pip install --force-reinstall --no-deps 'tokenizers==0.0.1'" in line


def test_load_whisper_raises_the_broken_dependency(tmp_path: Path) -> None:
    site = _broken_package(tmp_path / "site", "tokenizers", "0.0.1")
    proc = run_child("""
        import gpuboot
        try:
            gpuboot.load_whisper("tiny")
        except gpuboot.BrokenDependencyError as exc:
            print(type(exc).__name__, exc.fix)
    """, env={"PYTHONPATH": f"{site}{os.pathsep}{SRC}"})
    assert proc.stdout.strip() == "BrokenDependencyError pip install --force-reinstall --no-deps 'tokenizers==0.0.1'"


# --------------------------------------------------------------------------- models, drivers, pipes, logging

def test_a_size_not_in_the_cache_offline_says_how_to_get_it(tmp_path: Path) -> None:
    proc = gpuboot_cli("transcribe", str(SAMPLE), "--model", "large-v3",
                       env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert "'large-v3' (Systran/faster-whisper-large-v3) is not in the local Hugging Face cache" in line
    assert "HF_HUB_OFFLINE" in line and "--model DIR" in line


def test_cuda_without_a_driver_is_said_by_gpuboot() -> None:
    proc = gpuboot_cli("transcribe", str(SAMPLE), "--device", "cuda")
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert "no NVIDIA driver" in line and "insufficient" not in line


@pytest.mark.parametrize("reader", ["true", "head -c 10 >/dev/null"])
def test_doctor_json_into_a_closed_pipe_has_no_traceback(tmp_path: Path, reader: str) -> None:
    err = tmp_path / "stderr"
    proc = subprocess.run(["bash", "-c", f"'{sys.executable}' -m gpuboot doctor --json 2>'{err}' | {reader}; "
                           "echo ${PIPESTATUS[0]}"], capture_output=True, text=True, timeout=120)
    assert err.read_text() == ""
    assert proc.stdout.strip() in ("0", "1", "141")


def test_the_library_logs_nothing_unless_the_app_configures_logging(tmp_path: Path) -> None:
    """A needed library is missing (a warning record), yet an app that set up
    no logging sees nothing on stderr: the gpuboot logger has a NullHandler."""
    proc = run_child(f"""
        import logging
        import gpuboot
        from gpuboot.machine.driver import DriverInfo
        from gpuboot.machine.snapshot import Machine
        with Machine(driver=DriverInfo(present=True, evidence="given"), search_paths=[{str(tmp_path)!r}]).scope():
            report = gpuboot.ensure(consumers=["ctranslate2"])
        assert report.warnings, report
        assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("gpuboot").handlers)
        print(len(report.warnings))
    """)
    assert int(proc.stdout) >= 1
    assert proc.stderr == ""


@needs_model
def test_cli_fallback_lines_are_log_records() -> None:
    """NVML described (RTX 3070) and a driver whose probe says CUDA answered, so the GPU is chosen: CTranslate2
    really fails on CUDA here, falls back to the CPU, and the CLI prints those steps as labelled log records,
    never as error lines."""
    from fake_nvml import RTX_3070, FakeNVML, gpu

    from gpuboot import cli

    out, err = io.StringIO(), io.StringIO()
    with injected(nvml=FakeNVML([gpu(RTX_3070, 0)]), probe=healthy()):
        assert cli.main(["transcribe", str(SAMPLE)], stdout=out, stderr=err) == 0
    lines = err.getvalue().strip().splitlines()
    fallbacks = [x for x in lines if "trying the next choice" in x]
    assert len(fallbacks) == 2
    assert all(x.startswith("gpuboot: warning: ") for x in fallbacks)
    assert not any(x.startswith("gpuboot: error") for x in lines)
    assert out.getvalue().strip()
    assert not any(getattr(h, "stream", None) is err for h in logging.getLogger().handlers)  # removed after the run
