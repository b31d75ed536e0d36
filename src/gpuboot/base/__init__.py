"""What every layer uses: the value type, the logger, shell quoting, optional imports, the version, and the one
distribution-name canonicaliser (here, with ``re`` imported on its first call: ``import gpuboot`` imports this
package and stays free of ``re``)."""

from __future__ import annotations

__all__ = ["__version__", "canonical_name"]

#: gpuboot's version (pyproject.toml's); ``gpuboot.__version__`` and ``gpuboot --version`` read it here.
__version__ = "0.1.0"


def canonical_name(name: str) -> str:
    """A distribution name as PEP 503 normalises it (``onnxruntime_gpu`` -> ``onnxruntime-gpu``): the one
    spelling every table and comparison uses (``packaging.utils.canonicalize_name`` does the same)."""
    import re

    return re.sub(r"[-_.]+", "-", name).lower()
