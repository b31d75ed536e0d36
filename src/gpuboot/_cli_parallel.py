"""``gpuboot transcribe --workers N|auto`` and ``--ray [ADDRESS]``: many files over every device.

One worker process per visible GPU (``CUDA_VISIBLE_DEVICES`` narrowed to that
GPU's UUID, MIG included, as Ray does for its GPU tasks), or on a CPU-only
machine the number of workers measured fastest for the cores this process may
use.  Each worker runs ``ensure()``, picks its device with
``select_device(worker=rank)``, loads the model once and takes the next file,
largest first.  Workers return rendered transcripts; this process writes them
(each renamed into place whole), counts audio seconds across all workers on
one progress bar, and on Ctrl-C stops the workers and leaves no partial file.
``--ray`` does the same with Ray actors (``num_gpus=1`` each where the cluster
has GPUs): gpuboot in the actor reads the ``CUDA_VISIBLE_DEVICES`` Ray sets.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

from ._record import Record

__all__ = ["WorkerSpec", "plan_workers", "run_parallel", "CPU_CORES_PER_WORKER"]

#: On a CPU, one worker per this many cores: measured on a 2-core x86-64 machine
#: (tiny.en int8, batched; docs/benchmarks.md "Many files"), two 1-thread
#: workers transcribed a folder of four 95 s recordings in 6.6 s where one
#: 2-thread worker took 10.2 s: CTranslate2's batched decoding uses a second
#: thread poorly, a second process well.  Larger machines are not measured; the
#: number is also capped by the RAM each worker's model needs.
CPU_CORES_PER_WORKER = 1


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
    return [WorkerSpec(rank=r, cuda_visible_devices=gpus[r % len(gpus)] if gpus else None,
                       cpu_threads=threads) for r in range(n)]


def _ram_fit(settings: Any) -> Optional[int]:
    """How many CPU workers' models fit in the available RAM (each: its
    weights plus the same again for activations at the planned batch, with
    ``HEADROOM``), or ``None`` when the model cannot be found yet."""
    from ._host import available_ram
    from .whisper.model_memory import HEADROOM
    from .whisper.models import _model_bytes, embedded_model

    source = settings.model or embedded_model()
    if not source or not os.path.isdir(source):
        return None
    ram = available_ram()
    return max(1, int(ram / (2 * _model_bytes(source) * HEADROOM))) if ram else None


def _duration(path: str) -> float:
    """Seconds of audio in ``path`` from its container header (PyAV), 0 when unknown."""
    try:
        import av

        with av.open(path) as c:
            return float(c.duration or 0) / 1e6
    except Exception:  # a bad file is reported by the worker that decodes it
        return 0.0


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _worker(spec: WorkerSpec, settings: Any, tasks: Any, results: Any) -> None:
    """A worker process: its device, one model, files until the sentinel."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if spec.cuda_visible_devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = spec.cuda_visible_devices  # before anything initialises CUDA
    from ._cli_job import json_item, transcribe_one
    from .boot import ensure
    from .errors import AudioError
    from .select import _select
    from .whisper.audio import decode

    ensure()
    choice = _select(worker=spec.rank, reconcile=False)
    about = {"worker": spec.rank, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
             "worker_device": choice.torch_device, "worker_gpu": choice.gpu.uuid if choice.gpu else None}
    model = None
    while True:
        path = tasks.get()
        if path is None:
            break
        try:
            samples = decode(path)
            if model is None:
                model = settings.load(cpu_threads=spec.cpu_threads)
            segments, extra, rendered = transcribe_one(
                model, path, samples, settings, lambda seg, p=path: results.put(("progress", p, float(seg.end))),
                more=about)
        except AudioError as exc:
            results.put(("error", path, str(exc)))
            continue
        except Exception as exc:  # one bad file must not stop the others
            results.put(("error", path, f"{path}: {type(exc).__name__}: {exc}"))
            continue
        item = json_item(segments, extra, settings) if settings.json else None
        plain = "".join(" ".join(s.text.split()) + "\n" for s in segments)
        results.put(("done", path, rendered, item, plain))
    results.put(("exit", spec.rank))


class _Run:
    """The parent's side: outputs written, results kept in input order, progress counted."""

    def __init__(self, paths: Sequence[str], settings: Any, args: argparse.Namespace, out: TextIO,
                 err: TextIO) -> None:
        from ._cli_job import Progress, is_tty

        self.paths, self.settings, self.args, self.out, self.err = list(paths), settings, args, out, err
        self.items: Dict[str, Any] = {}
        self.plain: Dict[str, str] = {}
        self.failures = 0
        self.done_s: Dict[str, float] = {}
        total = sum(_duration(p) for p in self.paths)
        self.progress = Progress(not args.quiet and is_tty(err), err, total or 1.0, f"{len(self.paths)} files")

    def handle(self, msg: Tuple[Any, ...]) -> None:
        from ._cli_job import error_line
        from .errors import GpubootError
        from .whisper.formats import write_rendered

        kind = msg[0]
        if kind == "progress":
            self.done_s[msg[1]] = max(self.done_s.get(msg[1], 0.0), msg[2])
            self.progress.update(sum(self.done_s.values()))
        elif kind == "error":
            self.failures += 1
            error_line(self.err, GpubootError(msg[2]))
        elif kind == "done":
            _, path, rendered, item, plain = msg
            if self.settings.formats:
                try:
                    write_rendered(path, rendered, self.settings.out_dir)
                except OSError as exc:
                    self.failures += 1
                    error_line(self.err, GpubootError(f"{path}: cannot write transcripts to {self.settings.out_dir}: "
                                                  f"{exc.strerror or exc}", "pass --output-dir with a writable "
                                                  "directory"))
                    return
            if item is not None:
                self.items[path] = item
            self.plain[path] = plain

    def finish(self) -> int:
        self.progress.close()
        if self.args.json:
            items = [self.items[p] for p in self.paths if p in self.items]
            if items:
                json.dump(items[0] if len(items) == 1 else items, self.out, indent=2, ensure_ascii=False)
                self.out.write("\n")
        elif not self.settings.formats:
            self.out.write("".join(self.plain.get(p, "") for p in self.paths))
        return 1 if self.failures else 0

    def interrupted(self) -> int:
        self.progress.close()
        done = sum(1 for p in self.paths if p in self.plain)
        self.err.write(f"gpuboot: interrupted: {done} of {len(self.paths)} file(s) done; no partial file was "
                       "left: rerun with --skip-existing to finish the rest\n")
        return 130


def run_parallel(paths: Sequence[str], settings: Any, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Transcribe ``paths`` with worker processes (or Ray with ``args.ray``); the exit code."""
    order = sorted(paths, key=_size, reverse=True)  # largest first: the long tail is short files
    if args.ray is not None:
        return _run_ray(order, paths, settings, args, out, err)
    import multiprocessing

    from ._host import cpu_threads
    from .devices import discover

    gpus = [d.uuid for d in discover().visible]
    specs = plan_workers(args.workers, gpus=gpus, cores=cpu_threads(), files=len(order), ram_fit=_ram_fit(settings))
    ctx = multiprocessing.get_context("spawn")
    tasks: Any = ctx.Queue()
    results: Any = ctx.Queue()
    for p in order:
        tasks.put(p)
    for _ in specs:
        tasks.put(None)
    run = _Run(paths, settings, args, out, err)
    procs = [ctx.Process(target=_worker, args=(spec, settings, tasks, results), daemon=True) for spec in specs]
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
                    err.write(f"gpuboot: error: {len(dead)} worker(s) died (exit {dead[0].exitcode})\n")
                    run.failures += 1
                    break
                continue
            if msg[0] == "exit":
                running -= 1
            else:
                run.handle(msg)
    except KeyboardInterrupt:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(5)
        return run.interrupted()
    for proc in procs:
        proc.join(10)
    return run.finish()


class _RayTranscriber:
    """A Ray actor: gpuboot's start-up and one model, then files sent as bytes."""

    def __init__(self, settings: Any, rank: int, threads: int) -> None:
        from .boot import ensure
        from .select import _select

        ensure()
        self.choice = _select(worker=rank, reconcile=False)  # Ray set CUDA_VISIBLE_DEVICES for this actor
        self.settings, self.rank, self.threads = settings, rank, threads
        self.model: Any = None

    def transcribe(self, path: str, data: bytes) -> Tuple[Any, ...]:
        from ._cli_job import json_item, transcribe_one
        from .whisper.audio import decode_bytes

        try:
            samples = decode_bytes(path, data)
            if self.model is None:
                self.model = self.settings.load(cpu_threads=self.threads)
            about = {"worker": self.rank, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                     "worker_device": self.choice.torch_device,
                     "worker_gpu": self.choice.gpu.uuid if self.choice.gpu else None}
            segments, extra, rendered = transcribe_one(self.model, path, samples, self.settings, more=about)
        except Exception as exc:  # reported per file by the driver
            return ("error", path, f"{path}: {type(exc).__name__}: {exc}")
        item = json_item(segments, extra, self.settings) if self.settings.json else None
        return ("done", path, rendered, item, "".join(" ".join(s.text.split()) + "\n" for s in segments))


def _run_ray(order: Sequence[str], paths: Sequence[str], settings: Any, args: argparse.Namespace, out: TextIO,
             err: TextIO) -> int:
    import logging

    from ._deps import import_optional

    ray = import_optional("ray", "ray", "pip install 'gpuboot[ray]'")
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=None if args.ray == "auto" else args.ray, logging_level=logging.ERROR, log_to_driver=False,
                 include_dashboard=False)
    try:
        res = ray.cluster_resources()
        gpus = int(res.get("GPU", 0))
        cpus = int(res.get("CPU", 1))
        n = (gpus or max(1, cpus // CPU_CORES_PER_WORKER)) if args.workers in ("auto", None) else int(args.workers)
        n = min(n, _ram_fit(settings) or n) if not gpus else n
        n = max(1, min(n, len(order) or 1))
        threads = max(1, cpus // n)
        actor = ray.remote(num_gpus=1 if gpus else 0, num_cpus=min(threads, cpus))(_RayTranscriber)
        actors = [actor.remote(settings, r, threads) for r in range(n)]
        pool = ray.util.ActorPool(actors)
        run = _Run(paths, settings, args, out, err)
        jobs = []
        for path in order:
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                from .errors import GpubootError

                run.failures += 1
                from ._cli_job import error_line

                error_line(err, GpubootError(f"{path}: not readable ({exc.strerror or exc})"))
                continue
            jobs.append((path, data))
        t0 = time.perf_counter()
        try:
            for msg in pool.map_unordered(lambda a, job: a.transcribe.remote(*job), jobs):
                run.handle(msg)
                if msg[0] == "done":
                    run.handle(("progress", msg[1], _duration(msg[1])))
        except KeyboardInterrupt:
            return run.interrupted()
        del t0
        return run.finish()
    finally:
        if started_here:
            ray.shutdown()
