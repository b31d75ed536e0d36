"""Fixtures shared by every test; helpers live in tests/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Every process a test starts is ended with the test (tests/reaper.py).
pytest_plugins = ["reaper"]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own gpuboot cache dir and a clean ensure() cache."""
    cache = tmp_path_factory.mktemp("cache")
    cache.chmod(0o700)
    monkeypatch.setenv("GPUBOOT_CACHE_DIR", str(cache))
    for var in ("CONDA_PREFIX", "CUDA_PATH", "CUDA_HOME"):
        monkeypatch.delenv(var, raising=False)
    from gpuboot import boot

    boot._reset_for_tests()
    return cache
