"""Where ``gpuboot transcribe`` runs its files: this process, worker processes, or Ray actors -- one interface.

A runner's ``run(paths)`` yields events, which ``transcribe.Outputs`` turns
into files, lines and a progress bar whatever the runner:

* ``("loaded", WhisperLoad)``: this process loaded its model;
* ``("start", path, seconds)``: a file begins (this process: one bar per file);
* ``("segment", path, segment)``: decoded, as it is (this process: live lines);
* ``("progress", path, seconds)``: audio seconds done in that file;
* ``("done", path, rendered outputs, --json item, plain text, subtitles summary line or None)``;
* ``("error", path, message)``: that file failed, the others go on.

Worker processes: one per visible GPU (``CUDA_VISIBLE_DEVICES`` narrowed to
that GPU's UUID, MIG included, as Ray does for its GPU tasks), or on a
CPU-only machine the number measured fastest for the cores this process may
use.  Each runs ``ensure()``, picks its device with ``select_device(worker=
rank)``, loads the model once and takes the next file, largest first; on
Ctrl-C the parent stops them.  Ray: the same with actors (``num_gpus=1`` each
where the cluster has GPUs); gpuboot in the actor reads the
``CUDA_VISIBLE_DEVICES`` Ray sets.
"""

from __future__ import annotations

import os
import queue
import signal
from pathlib import Path
from typing import Any, Iterator, List, Optional, Sequence, Tuple

from .._record import Record

__all__ = ["Event", "InProcess", "Workers", "RayActors", "WorkerSpec", "plan_workers", "CPU_CORES_PER_WORKER",
           "audio_seconds"]

#: One event of a runner (see the module docstring).
Event = Tuple[Any, ...]

#: On a CPU, one worker per this many cores: measured on a 2-core x86-64 machine
#: (tiny.en int8, batched; docs/benchmarks.md "Many files"), two 1-thread
#: workers transcribed a folder of four 95 s recordings in 6.6 s where one
#: 2-thread worker took 10.2 s: CTranslate2's batched decoding uses a second
#: thread poorly, a second process well.  Larger machines are not measured; the
#: number is also capped by the RAM each worker's model needs.
CPU_CORES_PER_WORKER = 1


def audio_seconds(path: str) -> float:
    """Seconds of audio in ``path`` from its container header (PyAV), 0 when unknown."""
    try:
        import av

        with av.open(path) as c:
            return float(c.duration or 0) / 1e6
    except Exception:  # a bad file is reported by whoever decodes it
        return 0.0


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _worker_facts(rank: int, choice: Any) -> dict:  # type: ignore[type-arg]
    return {"worker": rank, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "worker_device": choice.torch_device, "worker_gpu": choice.gpu.uuid if choice.gpu else None}


class InProcess:
    """This process: decode (a bad file is one error, before any model), load the model once, transcribe."""

    per_file = True  # one progress bar per file

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def run(self, paths: Sequence[str]) -> Iterator[Event]:
        from ..errors import AudioError
        from ..whisper.audio import decode
        from ..whisper.load import load_info
        from .job import FileRun, finished

        model: Any = None
        for path in paths:
            try:
                samples = decode(path)  # bad audio fails before a model is loaded
            except AudioError as exc:
                yield ("error", path, exc)
                continue
            if model is None:
                model = self.settings.load()
                yield ("loaded", load_info(model))
            yield ("start", path, len(samples) / 16000)
            run = FileRun(model, path, samples, self.settings)
            for seg in run:
                yield ("segment", path, seg)
                yield ("progress", path, float(seg.end))
            yield finished(path, *run.result(), self.settings)


class WorkerSpec(Record):
    """One worker: its rank, the ``CUDA_VISIBLE_DEVICES`` it gets (``None``: inherited) and its CPU threads."""

    rank: int
    cuda_visible_devices: Optional[str]
    cpu_threads: int


def plan_workers(workers: Any, *, gpus: Sequence[str], cores: int, files: int,
                 ram_fit: Optional[int] = None) -> List[WorkerSpec]:
    """The workers for ``workers`` (``"auto"`` or a number) given the visible
    GPUs' UUIDs (CUDA ordinal order) and the cores: ``auto`` is one per GPU,
    else ``cores // CPU_CORES_PER_WORKER`` capped by ``ram_fit`` (how many
    models fit in RAM); never more workers than files.  GPUs go round-robin;
    the cores are shared out."""
    cpu = max(1, min(cores // CPU_CORES_PER_WORKER, ram_fit if ram_fit is not None else cores))
    n = (len(gpus) or cpu) if workers == "auto" else int(workers)
    n = max(1, min(n, files or 1))
    threads = max(1, cores // n)
    return [WorkerSpec(rank=r, cuda_visible_devices=gpus[r % len(gpus)] if gpus else None, cpu_threads=threads)
            for r in range(n)]


def _ram_fit(settings: Any) -> Optional[int]:
    """How many CPU workers' models fit in the available RAM (each: its
    weights plus the same again for activations at the planned batch, with
    ``HEADROOM``), or ``None`` when the model cannot be found yet."""
    from .._host import available_ram
    from ..whisper.model_memory import HEADROOM
    from ..whisper.models import _model_bytes, embedded_model

    source = settings.model or embedded_model()
    if not source or not os.path.isdir(source):
        return None
    ram = available_ram()
    return max(1, int(ram / (2 * _model_bytes(source) * HEADROOM))) if ram else None


def _worker(spec: WorkerSpec, settings: Any, tasks: Any, results: Any) -> None:
    """A worker process: its device, one model, files until the sentinel."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if spec.cuda_visible_devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = spec.cuda_visible_devices  # before anything initialises CUDA
    from ..boot import ensure
    from ..errors import AudioError
    from ..select import _select
    from ..whisper.audio import decode
    from .job import FileRun, finished

    ensure()
    about = _worker_facts(spec.rank, _select(worker=spec.rank, reconcile=False))
    model = None
    while True:
        path = tasks.get()
        if path is None:
            break
        try:
            samples = decode(path)
            if model is None:
                model = settings.load(cpu_threads=spec.cpu_threads)
            run = FileRun(model, path, samples, settings, more=about)
            for seg in run:
                results.put(("progress", path, float(seg.end)))
            result = run.result()
        except AudioError as exc:
            results.put(("error", path, str(exc)))
            continue
        except Exception as exc:  # one bad file must not stop the others
            results.put(("error", path, f"{path}: {type(exc).__name__}: {exc}"))
            continue
        results.put(finished(path, *result, settings))
    results.put(("exit", spec.rank))


class Workers:
    """Worker processes (``multiprocessing``, spawned), largest file first."""

    per_file = False  # one progress bar over every file

    def __init__(self, settings: Any, workers: Any) -> None:
        self.settings, self.workers = settings, workers

    def run(self, paths: Sequence[str]) -> Iterator[Event]:
        import multiprocessing

        from .._gpus.nvml import discover
        from .._host import cpu_threads

        order = sorted(paths, key=_size, reverse=True)  # largest first: the long tail is short files
        gpus = [d.uuid for d in discover().visible]
        specs = plan_workers(self.workers, gpus=gpus, cores=cpu_threads(), files=len(order),
                             ram_fit=_ram_fit(self.settings))
        ctx = multiprocessing.get_context("spawn")
        tasks: Any = ctx.Queue()
        results: Any = ctx.Queue()
        for p in order:
            tasks.put(p)
        for _ in specs:
            tasks.put(None)
        procs = [ctx.Process(target=_worker, args=(spec, self.settings, tasks, results), daemon=True)
                 for spec in specs]
        finished = False
        try:
            for proc in procs:
                proc.start()
            running = len(procs)
            while running:
                try:
                    msg = results.get(timeout=1.0)
                except queue.Empty:
                    dead = [p for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
                    if dead and all(not p.is_alive() for p in procs):
                        yield ("error", "", f"{len(dead)} worker(s) died (exit {dead[0].exitcode})")
                        break
                    continue
                if msg[0] == "exit":
                    running -= 1
                else:
                    yield msg
            finished = True
        finally:
            if not finished:  # interrupted: stop the workers
                for proc in procs:
                    proc.terminate()
                for proc in procs:
                    proc.join(5)
            else:
                for proc in procs:
                    proc.join(10)


class _RayTranscriber:
    """A Ray actor: gpuboot's start-up and one model, then files sent as bytes."""

    def __init__(self, settings: Any, rank: int, threads: int) -> None:
        from ..boot import ensure
        from ..select import _select

        ensure()
        self.choice = _select(worker=rank, reconcile=False)  # Ray set CUDA_VISIBLE_DEVICES for this actor
        self.settings, self.rank, self.threads = settings, rank, threads
        self.model: Any = None

    def transcribe(self, path: str, data: bytes) -> Tuple[Any, ...]:
        from ..whisper.audio import decode_bytes
        from .job import finished, transcribe_one

        try:
            samples = decode_bytes(path, data)
            if self.model is None:
                self.model = self.settings.load(cpu_threads=self.threads)
            result = transcribe_one(self.model, path, samples, self.settings,
                                    more=_worker_facts(self.rank, self.choice))
        except Exception as exc:  # reported per file by the driver
            return ("error", path, f"{path}: {type(exc).__name__}: {exc}")
        return finished(path, *result, self.settings)


class RayActors:
    """Ray actors on a local Ray (``address="auto"``) or the cluster at ``address``."""

    per_file = False

    def __init__(self, settings: Any, workers: Any, address: str) -> None:
        self.settings, self.workers, self.address = settings, workers, address

    def run(self, paths: Sequence[str]) -> Iterator[Event]:
        import logging

        from .._deps import import_optional

        ray = import_optional("ray", "ray", "pip install 'gpuboot[ray]'")
        order = sorted(paths, key=_size, reverse=True)
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=None if self.address == "auto" else self.address, logging_level=logging.ERROR,
                     log_to_driver=False, include_dashboard=False)
        try:
            res = ray.cluster_resources()
            gpus = int(res.get("GPU", 0))
            cpus = int(res.get("CPU", 1))
            n = ((gpus or max(1, cpus // CPU_CORES_PER_WORKER)) if self.workers in ("auto", None)
                 else int(self.workers))
            n = min(n, _ram_fit(self.settings) or n) if not gpus else n
            n = max(1, min(n, len(order) or 1))
            threads = max(1, cpus // n)
            actor = ray.remote(num_gpus=1 if gpus else 0, num_cpus=min(threads, cpus))(_RayTranscriber)
            actors = [actor.remote(self.settings, r, threads) for r in range(n)]
            pool = ray.util.ActorPool(actors)
            jobs = []
            for path in order:
                try:
                    data = Path(path).read_bytes()
                except OSError as exc:
                    yield ("error", path, f"{path}: not readable ({exc.strerror or exc})")
                    continue
                jobs.append((path, data))
            for msg in pool.map_unordered(lambda a, job: a.transcribe.remote(*job), jobs):
                yield msg
                if msg[0] == "done":
                    yield ("progress", msg[1], audio_seconds(msg[1]))
        finally:
            if started_here:
                ray.shutdown()
