"""Old spellings kept working: one ``DeprecationWarning`` helper for renamed arguments and attributes."""

from __future__ import annotations

import warnings

__all__ = ["renamed"]


def renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` is now spelled ``new`` (it still works)."""
    warnings.warn(f"{old} is deprecated: use {new} (same meaning)", DeprecationWarning, stacklevel=stacklevel)
