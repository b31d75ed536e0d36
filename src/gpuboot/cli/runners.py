"""Where ``gpuboot transcribe`` runs its files: this process, worker processes (``pool.py``) or Ray actors
(``rayrun.py``) -- one interface, one piece of work (``run_files``).

A runner's ``run(paths)`` yields events (``events.py``: ``Loaded``, ``Planned``, ``Segment``, ``Progress``,
``Done``, ``Failed``), which ``transcribe.Outputs`` turns into files, lines and one progress bar whatever the
runner.

Batched decoding packs each file's speech into its own windows and fills every batch with the windows of many
files (``whisper.multibatch``): a folder of short clips fills every batch, and a file's words do not depend on
the runner, the workers or the other files.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Generator, Iterator, List, Optional, Sequence, Set, Tuple

from ..base.record import Record
from .events import Done, Event, Failed, Loaded

__all__ = ["Event", "InProcess", "WorkerSpec", "plan_workers", "run_files", "CPU_CORES_PER_WORKER",
           "audio_seconds", "bundles", "ram_fit", "AUTO_IN_PROCESS_BELOW_S",
           "DECODE_THREAD", "decoding_threads"]

#: On a CPU, one worker per this many cores: measured on a 2-core x86-64 machine
#: (tiny.en int8, batched; docs/benchmarks.md "Many files"), two 1-thread
#: workers transcribed a folder of four 95 s recordings in 6.6 s where one
#: 2-thread worker took 10.2 s: CTranslate2's batched decoding uses a second
#: thread poorly, a second process well.  Larger machines are not measured; the
#: number is also capped by the RAM each worker's model needs (``ram_fit``).
CPU_CORES_PER_WORKER = 1


def audio_seconds(path: str) -> float:
    """Seconds of audio in ``path`` from its container header (PyAV), 0 when unknown."""
    try:
        import av

        with av.open(path) as c:
            return max(0.0, float(c.duration or 0) / 1e6)
    except Exception:  # a bad file is reported by whoever decodes it
        return 0.0


def run_files(settings: Any, paths: Sequence[str], load: Callable[[], Any], *, rank: Optional[int] = None,
              more: Optional[Dict[str, Any]] = None, model: Any = None,
              decoder: Optional[Callable[[str], Any]] = None) -> Generator[Event, None, Any]:
    """Transcribe ``paths`` with the model ``load()`` gives (loaded at the first file that decodes; ``model``
    when one is loaded already): the events of ``events.py``.  ``decoder`` turns a path into samples (default
    ``audio.decode``; Ray actors decode the bytes sent).  A file that cannot be decoded, or a batch that fails,
    is a ``Failed`` event for the files it held, and the rest go on.  The model is the generator's return value
    (``StopIteration.value``: workers keep it for their next task)."""
    from ..whisper.audio import decode

    source = _Source(paths, decoder or decode, load, rank, model)
    first = next(source, None)
    yield from source.drain()
    if first is None:
        return source.model
    try:
        for event in settings.work(source.model, more).run(_chain(first, source)):
            yield from source.drain()
            if isinstance(event, (Done, Failed)):
                source.ended.add(event.path)
            yield event
        yield from source.drain()
    except Exception as exc:  # a batch failed: the files it held get the error, the others go on
        for path in source.given:
            if path not in source.ended:
                source.ended.add(path)
                yield Failed(path=path, error=f"{path}: {type(exc).__name__}: {exc}")
    return source.model


class _Source:
    """``(path, samples)`` of the files that decode, in order; a file that does not is a ``Failed`` event (in
    ``drain``); the model is loaded at the first file that decodes (a ``Loaded`` event)."""

    def __init__(self, paths: Sequence[str], decode_one: Callable[[str], Any], load: Callable[[], Any],
                 rank: Optional[int], model: Any) -> None:
        self.paths, self.decode_one, self.load, self.rank, self.model = iter(paths), decode_one, load, rank, model
        self.events: List[Event] = []
        self.given: List[str] = []
        self.ended: Set[str] = set()

    def __iter__(self) -> _Source:
        return self

    def __next__(self) -> Tuple[str, Any]:
        from ..errors import AudioError
        from ..whisper.load import load_info

        for path in self.paths:
            try:
                samples = self.decode_one(path)
            except AudioError as exc:
                self.events.append(Failed(path=path, error=exc))
                self.ended.add(path)
                continue
            if self.model is None:
                self.model = self.load()
                self.events.append(Loaded(info=load_info(self.model), rank=self.rank))
            self.given.append(path)
            return path, samples
        raise StopIteration

    def drain(self) -> Iterator[Event]:
        while self.events:
            yield self.events.pop(0)


def _chain(first: Tuple[str, Any], rest: Iterator[Tuple[str, Any]]) -> Iterator[Tuple[str, Any]]:
    yield first
    yield from rest


#: The name of the thread ``InProcess`` decodes on (``decoding_threads``).
DECODE_THREAD = "gpuboot-decode"


class InProcess:
    """This process: decode (a bad file is one error, before any model), load the model once, transcribe.

    The work runs on a thread of its own (``DECODE_THREAD``) and its events come to the caller through a queue,
    so that Ctrl-C or SIGTERM reach the main thread at once even while CTranslate2 decodes a batch (a call that
    holds Python for seconds on a CPU): the run stops within a second, the thread is told to stop after its
    batch, and the command leaves without waiting for it (``cli.main``: ``decoding_threads``)."""

    #: Seconds between the main thread's looks at a pending signal while it waits for an event.
    POLL_S = 0.2

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def run(self, paths: Sequence[str]) -> Iterator[Event]:
        import queue
        import threading

        events: Any = queue.Queue()
        stop = threading.Event()
        end = object()

        from ..machine.snapshot import current

        machine = current()  # the caller's machine (one made current with ``scope()``) is the work's too

        def work() -> None:
            try:
                with machine.scope():
                    for event in run_files(self.settings, paths, self.settings.load):
                        events.put(event)
                        if stop.is_set():
                            return
            except BaseException as exc:  # handed to the main thread, raised there
                events.put(_Raised(exc))
            finally:
                events.put(end)

        from .terminal import DeferredStop

        thread = threading.Thread(target=work, name=DECODE_THREAD, daemon=True)
        thread.start()
        try:
            with DeferredStop() as stopped:
                yield from self._events(events, end, stopped)
        finally:
            stop.set()

    def _events(self, events: Any, end: object, stopped: Any) -> Iterator[Event]:
        """The decoding thread's events; a Ctrl-C or SIGTERM is raised between two waits (``DeferredStop``)."""
        import queue

        while True:
            try:
                event = events.get(timeout=self.POLL_S)
            except queue.Empty:
                event = None
            stopped.check()
            if event is None:
                continue
            if event is end:
                return
            if isinstance(event, _Raised):
                raise event.error
            yield event


class _Raised:
    """An exception of the decoding thread, on its way to the main thread."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def decoding_threads() -> List[Any]:
    """``InProcess`` threads still decoding (after a Ctrl-C: inside a CTranslate2 call that cannot be stopped)."""
    import threading

    return [t for t in threading.enumerate() if t.name == DECODE_THREAD and t.is_alive()]


class WorkerSpec(Record):
    """One worker: its rank, the ``CUDA_VISIBLE_DEVICES`` it gets (``None``: inherited) and its CPU threads."""

    rank: int
    cuda_visible_devices: Optional[str]
    cpu_threads: int


#: ``--workers auto`` on a CPU runs a folder with less audio than this in this process: a worker's start-up
#: (a spawned interpreter, imports, its own model) costs more than a second process gains on so little audio.
#: Measured on a 2-core x86-64 CPU, tiny.en int8, whole commands (one process vs two 1-thread workers): 10 clips
#: of 67 s in all 3.5 vs 5.4 s; 40 clips, 254 s: 12.1 vs 11.4 s; three 141 s recordings and 10 clips, 476 s:
#: 26.2 vs 25.2 s.
AUTO_IN_PROCESS_BELOW_S = 300.0


def plan_workers(workers: Any, *, gpus: Sequence[str], cores: int, files: int,
                 ram_fit: Optional[int] = None, audio_s: Optional[float] = None) -> List[WorkerSpec]:
    """The workers for ``workers`` (``"auto"`` or a number) given the GPUs the run uses (their UUIDs, CUDA
    ordinal order; none when it runs on the CPU) and the cores: ``auto`` is one per GPU, else
    ``cores // CPU_CORES_PER_WORKER`` -- one when the run's audio (``audio_s``, s) is under
    ``AUTO_IN_PROCESS_BELOW_S``; CPU workers are capped by ``ram_fit`` (how many models fit in RAM) whether
    counted or asked for; never more workers than files.  GPUs go round-robin; the cores are shared out."""
    cpu = max(1, cores // CPU_CORES_PER_WORKER)
    if audio_s is not None and audio_s < AUTO_IN_PROCESS_BELOW_S:
        cpu = 1
    n = (len(gpus) or cpu) if workers == "auto" else int(workers)
    if not gpus and ram_fit is not None:
        n = min(n, max(1, ram_fit))
    n = max(1, min(n, files or 1))
    threads = max(1, cores // n)
    return [WorkerSpec(rank=r, cuda_visible_devices=gpus[r % len(gpus)] if gpus else None, cpu_threads=threads)
            for r in range(n)]


def ram_fit(settings: Any, ram: Optional[int] = None) -> Tuple[Optional[int], str]:
    """How many CPU workers' models fit in the available RAM, and the figure used: a measured peak where
    ``model_memory.WHISPER_MEMORY`` has one for the model and precision, else twice its weights (a model
    directory's ``model.bin``, or ``model_memory.MODEL_BYTES`` for a size name) with ``HEADROOM``.
    ``(None, why)`` when RAM or the model's size is unknown."""
    from ..machine.snapshot import current
    from ..whisper.model_memory import cpu_model_peak
    from ..whisper.models import embedded_model

    source = settings.model or embedded_model() or "small"
    ram = current().ram if ram is None else ram
    peak = cpu_model_peak(source, settings.compute_type)
    if not ram or peak is None:
        return None, "RAM or the model's size unknown"
    need, why = peak
    fit = max(1, int(ram / need))
    return fit, f"{ram / 2**30:.1f} GiB available RAM / {need / 2**30:.2f} GiB per model ({why}) = {fit}"


def bundles(paths: Sequence[str], seconds: Dict[str, float], window_s: float, workers: int = 1) -> List[List[str]]:
    """``paths`` in tasks for ``workers`` workers: longest first, short files grouped until their audio fills
    ``window_s`` seconds (a worker packs a group's speech into full batches) -- less when that would leave one
    of several workers without work: each gets two tasks at least, of four 30 s windows at least -- and at most
    256 files a task.  A file of unknown length counts as 30 s."""
    order = sorted(paths, key=lambda p: seconds.get(p, 0.0), reverse=True)
    total_s = sum(seconds.get(p, 0.0) or 30.0 for p in paths)
    target = window_s if workers <= 1 else max(120.0, min(window_s, total_s / (2 * workers)))
    out: List[List[str]] = []
    group: List[str] = []
    total = 0.0
    for path in order:
        group.append(path)
        total += seconds.get(path, 0.0) or 30.0
        if total >= target or len(group) >= 256:
            out.append(group)
            group, total = [], 0.0
    if group:
        out.append(group)
    return out


def worker_facts(rank: int, choice: Any) -> Dict[str, Any]:
    """What a worker adds to each file's JSON: its rank, ``CUDA_VISIBLE_DEVICES`` and device."""
    return {"worker": rank, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "worker_device": choice.torch_device, "worker_gpu": choice.gpu.uuid if choice.gpu else None}
