"""Throughput policy for Whisper: batched or not, the batch size, and the threads, from what the device has.

Sources and measurements (each rule says which):

* faster-whisper README, large-v2 on an RTX 3070 Ti, 13 min of audio:
  sequential fp16 1m03s at 4525 MB; ``BatchedInferencePipeline`` batch 8
  17 s at 6090 MB; int8 59 s / 2926 MB vs 16 s / 4500 MB.  So batching is
  3.7x faster on a GPU and each batch item beyond the first costs about
  (6090 - 4525) / 7 = 224 MB for large-v2 (int8: 225 MB).
* Other sizes: the per-item cost is scaled by the size of the model file
  (large-v2's float16 ``model.bin`` is 3.09 GB): activations and the decoder's
  cache grow with width x depth, as the weights do.  An estimate, used with
  20 % headroom.
* CPU, tiny.en int8 on a 2-core x86-64 machine, a 10.3 min recording
  (bench/long_recording.py; docs/benchmarks.md has the sweep): sequential
  31.9 s, batch 4 16.3 s, batch 8 15.1 s, batch 16 14.3 s, batch 32 13.9 s,
  WER 0.215 sequential vs 0.207 batched (VAD chunks decoded without
  conditioning on the previous text); faster-whisper's defaults 39.3 s.
"""

from __future__ import annotations

from typing import Optional, Union

from ..base.record import Record
from .model_memory import HEADROOM, MiB

__all__ = ["ThroughputPlan", "plan_throughput", "per_item_bytes", "MAX_BATCH", "CPU_BATCH_PER_CORE"]

#: Per batch item, large-v2 (faster-whisper README: (6090 - 4525) MB / 7).
LARGE_V2_ITEM_BYTES = 224 * MiB
#: large-v2's float16 model.bin, bytes (Systran/faster-whisper-large-v2).
LARGE_V2_MODEL_BYTES = 3_086_912_962
#: Largest batch chosen automatically: past it the GPU is saturated and memory is wasted.
MAX_BATCH = 32
#: CPU batch items per core this process may use (bench: 16 on 2 cores was the fastest).
CPU_BATCH_PER_CORE = 8


class ThroughputPlan(Record):
    """How to run Whisper fast on the chosen device.

    Attributes:
        batched: use faster-whisper's ``BatchedInferencePipeline``.
        batch_size: chunks decoded together (1 when not batched).
        cpu_threads: CTranslate2 intra-op threads (``WhisperModel(cpu_threads=)``).
        num_workers: model workers (``WhisperModel(num_workers=)``): one per
            concurrent ``transcribe`` call; 1 for one stream.
        reason: why, with the figures used.
    """

    batched: bool
    batch_size: int
    cpu_threads: int
    num_workers: int
    reason: str


def per_item_bytes(model_bytes: int) -> int:
    """Estimated memory of one more batch item for a model whose ``model.bin``
    is ``model_bytes`` (scaled from large-v2's README figure), bytes."""
    return max(4 * MiB, int(LARGE_V2_ITEM_BYTES * model_bytes / LARGE_V2_MODEL_BYTES))


def plan_throughput(device: str, *, cores: int, model_bytes: int, free_bytes: Optional[int] = None,
                    resident_bytes: int = 0, batched: Union[str, bool] = "auto",
                    batch_size: Union[str, int] = "auto", streams: int = 1) -> ThroughputPlan:
    """Choose batching, batch size and threads.

    Args:
        device: ``"cuda"`` or ``"cpu"``.
        cores: CPUs this process may use (``select.DeviceChoice.cpu_threads``).
        model_bytes: size of the model's ``model.bin``, bytes.
        free_bytes: free memory of the device now (NVML for a GPU; available
            RAM for the CPU), bytes; ``None`` when unknown.
        resident_bytes: memory the loaded model already holds there, bytes
            (0 when ``free_bytes`` was read after loading).
        batched: ``"auto"`` (batch), ``True`` or ``False``.
        batch_size: ``"auto"`` or a number >= 1.
        streams: concurrent ``transcribe`` calls this model will serve.

    Raises:
        ValueError: a batch size or stream count below 1, an unknown device.
    """
    if device not in ("cuda", "cpu"):
        raise ValueError(f"device must be 'cuda' or 'cpu', not {device!r}")
    if streams < 1:
        raise ValueError(f"streams must be >= 1, not {streams}")
    if batch_size != "auto" and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be 'auto' or an integer >= 1, not {batch_size!r}")
    cores = max(1, cores)
    threads = cores if device == "cpu" else min(cores, 4)
    threads = max(1, threads // streams) if device == "cpu" else threads
    use_batch = batched is True or (batched == "auto")
    if not use_batch:
        return ThroughputPlan(batched=False, batch_size=1, cpu_threads=threads, num_workers=streams,
                              reason=f"sequential decoding (batched={batched!r}); "
                              f"{threads} CPU thread(s), {streams} worker(s)")
    item = per_item_bytes(model_bytes)
    if isinstance(batch_size, int):
        size, why = batch_size, f"batch {batch_size} as asked"
    elif device == "cuda":
        if free_bytes is None:
            size, why = 8, "batch 8 (free memory unknown; faster-whisper's default)"
        else:
            room = max(0, free_bytes - resident_bytes)
            fits = int(room / (item * HEADROOM * streams))
            size = max(1, min(MAX_BATCH, fits))
            why = (f"batch {size}: {room / 2**30:.2f} GiB free / ({item / MiB:.0f} MiB per item x {HEADROOM} "
                   f"headroom{f' x {streams} streams' if streams > 1 else ''}), at most {MAX_BATCH} "
                   "(per-item figure: faster-whisper README, large-v2 batch 8 vs 1, scaled by model size)")
    else:
        size = max(1, min(MAX_BATCH, CPU_BATCH_PER_CORE * max(1, cores // streams)))
        why = f"batch {size}: {CPU_BATCH_PER_CORE} per core x {max(1, cores // streams)} core(s), at most {MAX_BATCH}"
        if free_bytes is not None and size * item * HEADROOM > max(0, free_bytes - resident_bytes):
            size = max(1, int(max(0, free_bytes - resident_bytes) / (item * HEADROOM)))
            why += f"; {size} fit(s) in {free_bytes / 2**30:.2f} GiB available RAM"
    source = ("batched decoding is 3.7x faster on a GPU (faster-whisper README)" if device == "cuda" else
              "batched decoding measured 2.2x faster than sequential on a 2-core CPU (docs/benchmarks.md)")
    return ThroughputPlan(batched=True, batch_size=size, cpu_threads=threads, num_workers=streams,
                          reason=f"{why}; {source}; {threads} CPU thread(s), {streams} worker(s)")
