"""Which Whisper model fits a device: measured peak memory by model and precision, with sources."""

from __future__ import annotations

from typing import Iterable, Optional, Tuple

from ..machine.snapshot import current

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..select import DeviceChoice

__all__ = ["WHISPER_MEMORY", "WHISPER_ORDER", "HEADROOM", "MiB", "CPU_MAX_MODEL", "peak_memory",
           "recommend_whisper_model", "PARAMETERS", "CPU_PEAKS", "cpu_model_peak", "is_out_of_memory", "OUT_OF_MEMORY"]

#: What CTranslate2's and the CUDA libraries' out-of-memory errors say (a ``RuntimeError``'s text).
OUT_OF_MEMORY = ("out of memory", "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED", "std::bad_alloc")


def is_out_of_memory(exc: BaseException) -> bool:
    """``exc`` is an out-of-memory error: a ``MemoryError``, or a ``RuntimeError`` whose text says so
    (``OUT_OF_MEMORY``).  The one test every batched decode shares (a smaller batch then retries)."""
    return isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and any(k in str(exc) for k in OUT_OF_MEMORY))


#: Bytes in a mebibyte (the unit of the measured figures below).
MiB = 2**20

#: Peak memory of faster-whisper, bytes, by model and precision, with the source.
#: GPU figures: faster-whisper README benchmarks (13 min of audio, beam 5,
#: RTX 3070 Ti 8 GB) and faster-whisper issue #1030 (large-v3, large-v3-turbo,
#: distil-large-v3).  No measured CTranslate2 figure exists for tiny/base/
#: small/medium on a GPU: openai-whisper's README "Required VRAM" (PyTorch,
#: float16) is used as an upper bound there.  CPU: the README's small on CPU
#: (i7-12700K, 8 threads).
WHISPER_MEMORY: Tuple[Tuple[str, str, int, str], ...] = (
    ("large-v3", "float16", 4521 * MiB, "faster-whisper issue #1030"),
    ("large-v3", "int8", 2953 * MiB, "faster-whisper issue #1030"),
    ("large-v2", "float16", 4525 * MiB, "faster-whisper README (GPU benchmark)"),
    ("large-v2", "int8", 2926 * MiB, "faster-whisper README (GPU benchmark)"),
    ("large-v3-turbo", "float16", 2537 * MiB, "faster-whisper issue #1030"),
    ("distil-large-v3", "float16", 2409 * MiB, "faster-whisper issue #1030"),
    ("distil-large-v3", "int8", 1481 * MiB, "faster-whisper issue #1030"),
    ("medium", "float16", 5 * 1024 * MiB, "openai-whisper README 'Required VRAM' (upper bound)"),
    ("small", "float16", 2 * 1024 * MiB, "openai-whisper README 'Required VRAM' (upper bound)"),
    ("small", "float32", 2257 * MiB, "faster-whisper README (CPU benchmark)"),
    ("small", "int8", 1477 * MiB, "faster-whisper README (CPU benchmark)"),
    ("base", "float16", 1024 * MiB, "openai-whisper README 'Required VRAM' (upper bound)"),
    ("tiny", "float16", 1024 * MiB, "openai-whisper README 'Required VRAM' (upper bound)"),
)
#: Best first: quality order of the models above (large-v3 is the most accurate).
WHISPER_ORDER: Tuple[str, ...] = ("large-v3", "large-v2", "large-v3-turbo", "distil-large-v3", "medium", "small",
                                  "base", "tiny")
#: Free memory kept back beyond a measured peak or an estimate: 20 % (other
#: allocations, fragmentation, longer audio than the benchmark).  Model choice
#: and batch sizing (``throughput.py``) use the same margin.
HEADROOM = 1.2
#: Largest model recommended on a CPU: the README benchmarks only small there.
CPU_MAX_MODEL = "small"


def peak_memory(model: str, compute_type: str) -> Optional[Tuple[int, str]]:
    """(peak bytes, source) of ``model`` at ``compute_type``; float16's figure
    bounds int8 where int8 was not measured; ``None`` when unknown."""
    precision = "int8" if compute_type.startswith("int8") else compute_type
    if precision == "bfloat16":
        precision = "float16"
    rows = {(m, p): (b, s) for m, p, b, s in WHISPER_MEMORY}
    if (model, precision) in rows:
        return rows[(model, precision)]
    if (model, "float16") in rows:  # int8 needs less than float16: a safe upper bound
        return rows[(model, "float16")]
    return None


def recommend_whisper_model(choice: DeviceChoice, *, headroom: float = HEADROOM) -> str:
    """The most accurate Whisper model whose measured peak memory, times
    ``headroom``, fits the chosen device's free memory (CPU: available RAM,
    and at most ``small``).  Falls back to ``"tiny"``.

    Args:
        choice: from ``select_device``.
        headroom: factor over the measured peak (default 1.2).
    """
    from ..base.record import expect
    from ..select import DeviceChoice as Choice

    expect(choice, Choice, "choice", "from gpuboot.select_device()")
    on_gpu = choice.kind == "cuda" and choice.gpu is not None
    free_bytes = choice.gpu.free_memory if on_gpu and choice.gpu is not None else current().ram
    models: Iterable[str] = WHISPER_ORDER
    if not on_gpu:
        models = WHISPER_ORDER[WHISPER_ORDER.index(CPU_MAX_MODEL):]
    for model in models:
        need = peak_memory(model, choice.compute_type)
        if need is not None and need[0] * headroom <= free_bytes:
            return model
    return "tiny"


#: Parameters of each Whisper model by size name: openai-whisper README "Available models and languages"
#: (tiny 39 M, base 74 M, small 244 M, medium 769 M, large 1550 M, turbo 809 M) and the distil-whisper model
#: cards on Hugging Face (distil-large-v2/v3 756 M, distil-medium.en 394 M, distil-small.en 166 M).
PARAMETERS = {
    **dict.fromkeys(("tiny", "tiny.en"), 39_000_000),
    **dict.fromkeys(("base", "base.en"), 74_000_000),
    **dict.fromkeys(("small", "small.en"), 244_000_000),
    **dict.fromkeys(("medium", "medium.en"), 769_000_000),
    **dict.fromkeys(("large", "large-v1", "large-v2", "large-v3"), 1_550_000_000),
    **dict.fromkeys(("turbo", "large-v3-turbo"), 809_000_000),
    **dict.fromkeys(("distil-large-v2", "distil-large-v3", "distil-large-v3.5"), 756_000_000),
    "distil-medium.en": 394_000_000,
    "distil-small.en": 166_000_000,
}
#: Bytes per parameter of the weights CTranslate2 holds at each compute type.
_WEIGHT_BYTES = {"int8": 1, "int16": 2, "float16": 2, "bfloat16": 2, "float32": 4}

#: Peak RAM of one CPU process transcribing, bytes, measured: (model, precision, bytes, source).
CPU_PEAKS: Tuple[Tuple[str, str, int, str], ...] = (
    ("small", "int8", 1477 * MiB, "faster-whisper README CPU benchmark"),
    ("small", "float32", 2257 * MiB, "faster-whisper README CPU benchmark"),
    ("tiny.en", "int8", 1376 * MiB, "measured: batch 16, 80 clips, docs/benchmarks.md"),
)
#: The other models: a fixed part plus 1.07 x the weights, the line through the README's two CPU figures for
#: small (244 M parameters: 976 MB of float32 weights -> 2257 MiB, 244 MB of int8 -> 1477 MiB).
_FIXED = 1216 * MiB
_PER_WEIGHT_BYTE = 1.07


def cpu_model_peak(source: str, compute_type: str) -> Optional[Tuple[int, str]]:
    """Peak RAM of one CPU process running Whisper ``source`` (a size name or a model directory) at
    ``compute_type`` (``"auto"``: int8, what ``load_whisper`` picks on a CPU), bytes, and where the figure comes
    from (``CPU_PEAKS``, else the line through them from ``PARAMETERS`` or a directory's ``model.bin``, stored
    as float16); ``None`` for a name this table does not know."""
    import os

    precision = "int8" if compute_type in ("auto", "default") or compute_type.startswith("int8") else compute_type
    name = os.path.basename(os.path.normpath(source)) if os.path.isdir(source) else source
    for model, kind, peak, why in CPU_PEAKS:
        if model == name and kind == precision:
            return peak, f"{model} {kind}: {why}"
    if os.path.isdir(source):
        try:
            params = os.path.getsize(os.path.join(source, "model.bin")) // 2
        except OSError:
            return None
        origin = "its model.bin"
    elif name.rsplit("/", 1)[-1].replace("faster-whisper-", "") in PARAMETERS:
        params = PARAMETERS[name.rsplit("/", 1)[-1].replace("faster-whisper-", "")]
        origin = "openai-whisper README parameters"
    else:
        return None
    weights = params * _WEIGHT_BYTES.get(precision, 4)
    peak = int(_FIXED + _PER_WEIGHT_BYTE * weights)
    return peak, f"{params / 1e6:.0f} M parameters ({origin}) at {precision}: 1216 MiB + 1.07 x weights, " \
                 "fitted to the faster-whisper README CPU figures"
