"""Driver detection: a few stat calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuboot._gpus import driver as _driver


def test_driver_detection_on_windows_looks_for_nvcuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SystemRoot", str(tmp_path))
    assert not _driver.detect_driver("win32").present
    (tmp_path / "System32").mkdir()
    (tmp_path / "System32" / "nvcuda.dll").write_bytes(b"")
    info = _driver.detect_driver("win32")
    assert info.present and info.evidence.endswith("nvcuda.dll")
