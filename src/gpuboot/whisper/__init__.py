"""Whisper, verified: ``load_whisper()`` (a faster-whisper model known to run), ``transcribe()`` and the audio it reads.

Modules: ``load`` (the fallback chain and ``WhisperLoad``), ``models`` (which
model directory), ``audio`` (reading audio), the batched decoding (with
out-of-memory resume: ``decoding``), many recordings in shared batches
(``multibatch``, its packing in ``packing``), ``throughput`` (batch size and threads),
``model_memory`` (which size fits), ``formats`` (txt/srt/vtt/json).
"""

from __future__ import annotations

from .attempts import Attempt, WhisperLoad
from .audio import SAMPLE_RATE, decode, verify_decoder
from .decoding import transcribe
from .load import COMPUTE_TYPES, DEVICES, load_info, load_whisper
from .models import embedded_model

__all__ = ["load_whisper", "load_info", "WhisperLoad", "Attempt", "transcribe", "decode", "verify_decoder",
           "embedded_model", "COMPUTE_TYPES", "DEVICES", "SAMPLE_RATE"]
