"""What every layer uses: the value type, the logger, shell quoting, optional imports, and the one
distribution-name canonicaliser (here: ``re`` only, so the library search uses it without the metadata reader)."""

from __future__ import annotations

import re

__all__ = ["canonical_name"]


def canonical_name(name: str) -> str:
    """A distribution name as PEP 503 normalises it (``onnxruntime_gpu`` -> ``onnxruntime-gpu``): the one
    spelling every table and comparison uses (``packaging.utils.canonicalize_name`` does the same)."""
    return re.sub(r"[-_.]+", "-", name).lower()  # compiled on first use (re's cache), not on import
