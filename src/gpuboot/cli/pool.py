"""``gpuboot transcribe --workers``: worker processes that end -- ``concurrent.futures.ProcessPoolExecutor``.

One worker per GPU the run uses (``CUDA_VISIBLE_DEVICES`` narrowed to that
GPU's UUID, MIG included, as Ray does for its GPU tasks), or on the CPU the
number measured fastest for the cores this process may use, capped by how
many models fit in RAM (``runners.plan_workers``, ``runners.ram_fit``).  Each
worker (spawned) runs ``ensure()``, picks its device with
``select_device(worker=rank)``, loads its model once and takes tasks: groups
of files, longest first, short ones grouped so their speech fills its
batches (``runners.bundles``).  Progress, segments and results come back on
a ``multiprocessing`` manager queue (each worker has its own connection to
it: a killed worker cannot leave a lock held) and go out as the events of
``runners``.

Ends, whatever happens:

* at most two tasks per worker are submitted at a time, so Ctrl-C or SIGTERM with thousands of files queued
  cancels the few in flight and exits at once (no feeder thread holding a pipe's worth of paths);
* workers ignore SIGINT (the parent's to handle), are sent SIGTERM when the run stops, and on Linux get
  SIGTERM from the kernel when the parent dies (``PR_SET_PDEATHSIG``): none outlives the command;
* a worker that dies (killed, out of memory, a crash in native code) breaks the pool: the files it had
  started are retried, each alone, in a fresh pool; a file whose worker dies a second time is one error line
  and the run goes on.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set

from ..base.record import Record
from .events import Done, Event, Failed, Planned
from .runners import WorkerSpec, bundles, plan_workers, ram_fit, run_files, worker_facts

__all__ = ["Workers", "WorkerDied"]

#: Tasks submitted per worker at a time: one running, one ready.
IN_FLIGHT_PER_WORKER = 2
#: A pool that breaks this many times in a row without finishing a file is given up.
MAX_BARREN_BREAKS = 3

_STATE: Dict[str, Any] = {}


class _Hello(Record):
    """A worker started: its rank and pid (its parent ends it by pid)."""

    rank: int
    pid: int


class _Began(Record):
    """A worker began transcribing ``path``."""

    path: str
    pid: int


def _die_with_parent() -> None:
    """Linux: SIGTERM from the kernel when the parent process dies (``prctl(PR_SET_PDEATHSIG)``)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1 (linux/prctl.h)
    except (OSError, AttributeError):
        pass


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the whole process group: the parent decides
    _die_with_parent()


def _init(settings: Any, specs: Any, events: Any, parent: int) -> None:
    """A worker starts: no Ctrl-C, dies with the parent, takes its spec, narrows CUDA_VISIBLE_DEVICES."""
    _ignore_interrupts()
    if os.getppid() != parent:  # the parent died before the kernel could be told
        os._exit(1)
    spec: WorkerSpec = specs.get(timeout=120)
    if spec.cuda_visible_devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = spec.cuda_visible_devices  # before anything initialises CUDA
    _STATE.update(spec=spec, settings=settings, events=events, model=None, about=None)
    events.put(_Hello(rank=spec.rank, pid=os.getpid()))


def _task(paths: List[str]) -> int:
    """A worker transcribes ``paths``; events go on the queue; the model stays for the next task."""
    from ..boot import ensure
    from ..machine.snapshot import current
    from ..select import select_device

    spec: WorkerSpec = _STATE["spec"]
    settings, events = _STATE["settings"], _STATE["events"]
    if _STATE["about"] is None:
        ensure()
        with current().replace(ask_consumers=False).scope():  # the model is not loaded yet: CTranslate2 unasked
            _STATE["about"] = worker_facts(spec.rank, select_device(worker=spec.rank))
    for path in paths:
        events.put(_Began(path=path, pid=os.getpid()))
    run = run_files(settings, paths, lambda: settings.load(cpu_threads=spec.cpu_threads), rank=spec.rank,
                    more=_STATE["about"], model=_STATE["model"])
    while True:
        try:
            event = next(run)
        except StopIteration as stop:
            _STATE["model"] = stop.value
            break
        events.put(event)
    return len(paths)


class WorkerDied(Exception):
    """The pool broke (a worker process ended abruptly)."""


class Workers:
    """Worker processes (spawned; see the module docstring)."""

    def __init__(self, settings: Any, workers: Any, *, seconds: Optional[Dict[str, float]] = None) -> None:
        self.settings, self.workers = settings, workers
        self.seconds = seconds or {}

    def _gpus(self) -> List[str]:
        """The GPUs this run uses: none with ``--device cpu`` or when the device chosen is the CPU."""
        if self.settings.device == "cpu":
            return []
        from ..machine.snapshot import current
        from ..select import select_device

        with current().replace(ask_consumers=False).scope():
            choice = select_device()
        if choice.ct2_device != "cuda" and self.settings.device != "cuda":
            return []
        return [d.uuid for d in choice.candidates]

    def plan(self, files: int, audio_s: Optional[float] = None) -> List[WorkerSpec]:
        """The workers for ``files`` files of ``audio_s`` seconds of audio in all; ``self.line`` says why, and
        ``self.in_process`` is set when ``auto`` on a CPU leaves so little audio that this process runs it."""
        from ..machine.snapshot import current
        from .runners import AUTO_IN_PROCESS_BELOW_S

        cores = current().cpu_threads
        gpus = self._gpus()
        fit, self.ram_why = ram_fit(self.settings) if not gpus else (None, "")
        specs = plan_workers(self.workers, gpus=gpus, cores=cores, files=files, ram_fit=fit, audio_s=audio_s)
        self.in_process = self.workers == "auto" and not gpus and len(specs) == 1
        if self.in_process:
            few = audio_s is not None and audio_s < AUTO_IN_PROCESS_BELOW_S
            why = (f"{audio_s:.0f} s of audio is under {AUTO_IN_PROCESS_BELOW_S:.0f} s, less than a worker's "
                   "start-up gains" if few else "one worker is all the CPU and RAM allow")
            self.line = f"this process ({why})"
            return specs
        where = f"one per GPU ({len(gpus)})" if gpus else f"CPU, {specs[0].cpu_threads} thread(s) each"
        wanted = cores if self.workers == "auto" else int(self.workers)
        cap = f"; RAM: {self.ram_why}" if fit is not None and fit < min(wanted, files) else ""
        asked = "" if self.workers == "auto" else f" (asked {self.workers})"
        self.line = f"{len(specs)} worker process(es){asked}: {where}{cap}"
        return specs

    def run(self, paths: Sequence[str]) -> Iterator[Event]:
        from .runners import audio_seconds

        for path in paths:
            if path not in self.seconds:
                self.seconds[path] = audio_seconds(path)
        specs = self.plan(len(paths), sum(self.seconds.get(p, 0.0) or 30.0 for p in paths))
        yield Planned(line=self.line)
        if self.in_process:
            from .runners import InProcess

            yield from InProcess(self.settings).run(paths)
            return
        queue = [list(b) for b in bundles(paths, self.seconds, 30.0 * 16, len(specs))]
        isolate: List[str] = []  # files a worker died on: each alone, one at a time, so a death names its file
        barren = 0
        while queue or isolate:
            left: List[List[str]] = []
            alone = bool(isolate)
            tasks, isolate = ([[p] for p in isolate], []) if alone else (queue, [])
            try:
                yield from self._pool(specs, tasks, left, limit=1 if alone else None)
                if not alone:
                    queue = []
                barren = 0
                continue
            except WorkerDied as died:
                started, progressed = died.args
            if alone:  # it died again with this file alone in flight: this file kills its worker
                for path in sorted(started):
                    yield Failed(path=path, error=f"{path}: its worker process ended abruptly while transcribing it, "
                                                  "twice (killed, out of memory, or a crash in native code)")
                isolate = [p for group in left for p in group]
            else:
                queue = left
                isolate = sorted(started)
            barren = 0 if progressed else barren + 1
            if barren >= MAX_BARREN_BREAKS:
                from ..errors import GpubootError

                for path in [*isolate, *(p for group in queue for p in group)]:
                    yield Failed(path=path, error=GpubootError(
                        f"{path}: not transcribed: worker processes keep ending before finishing a file",
                        "run without --workers to see the error"))
                return

    def _pool(self, specs: List[WorkerSpec], queue: List[List[str]], left: List[List[str]], *,
              limit: Optional[int] = None) -> Iterator[Event]:
        """One pool over ``queue`` (``limit`` tasks in flight, default ``IN_FLIGHT_PER_WORKER`` per worker); on a
        break raises ``WorkerDied((started files, progress made))`` with the tasks not yet done put in
        ``left``."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing.managers import SyncManager

        ctx = multiprocessing.get_context("spawn")
        manager = SyncManager(ctx=ctx)  # its own process: ignores Ctrl-C, dies with this one
        manager.start(_die_with_parent)
        flight = _Flight()
        executor: Any = None
        try:
            specs_q = manager.Queue()
            flight.events = manager.Queue()
            for spec in specs:
                specs_q.put(spec)
            executor = ProcessPoolExecutor(max_workers=len(specs), mp_context=ctx, initializer=_init,
                                           initargs=(self.settings, specs_q, flight.events, os.getpid()))
            yield from flight.run(executor, list(queue), left, limit or IN_FLIGHT_PER_WORKER * len(specs))
        finally:
            _stop(executor, flight.pids, flight.events)
            manager.shutdown()


class _Flight:
    """The tasks of one pool in flight: which files began (in which worker), which finished, the workers' pids."""

    def __init__(self) -> None:
        self.events: Any = None
        self.pids: Set[int] = set()
        self.begun: Dict[str, int] = {}
        self.finished: Set[str] = set()
        self.progressed = False

    def run(self, executor: Any, todo: List[List[str]], left: List[List[str]], limit: int) -> Iterator[Event]:
        from .terminal import DeferredStop

        with DeferredStop() as stop:
            yield from self._run(executor, todo, left, limit, stop)

    def _run(self, executor: Any, todo: List[List[str]], left: List[List[str]], limit: int, stop: Any
             ) -> Iterator[Event]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        running: Dict[Any, List[str]] = {}
        while todo or running:
            while todo and len(running) < limit:
                group = todo.pop(0)
                running[executor.submit(_task, group)] = group
            done, _ = wait(list(running), timeout=0.05, return_when=FIRST_COMPLETED)
            stop.check()  # a Ctrl-C or SIGTERM raised here, not inside wait()'s lock
            yield from self.drain()
            broken = False
            for future in done:
                group = running.pop(future)
                try:
                    future.result()
                except BrokenProcessPool:
                    broken = True
                    left.append([p for p in group if p not in self.finished])
                except Exception as exc:  # a task that raised: its files that had no result
                    for path in group:
                        if path not in self.finished:
                            yield Failed(path=path, error=f"{path}: {type(exc).__name__}: {exc}")
            if broken:
                time.sleep(0.1)
                yield from self.drain()
                self.broke(running, todo, left)

    def drain(self) -> Iterator[Event]:
        """The events the workers sent since the last look; their hellos and beginnings are noted here."""
        for event in _drain(self.events):
            if isinstance(event, _Hello):
                self.pids.add(event.pid)
            elif isinstance(event, _Began):
                self.begun[event.path] = event.pid
            else:
                if isinstance(event, (Done, Failed)):
                    self.finished.add(event.path)
                    self.progressed = True
                yield event

    def broke(self, running: Dict[Any, List[str]], todo: List[List[str]], left: List[List[str]]) -> None:
        """The pool broke: what is not finished goes to ``left`` -- a file that had begun alone (it may be the
        one that kills its worker), the rest of its group as it was -- and ``WorkerDied`` is raised."""
        for group in running.values():
            left.append([p for p in group if p not in self.finished])
        running.clear()
        left.extend(todo)
        started = {p for p in self.begun if p not in self.finished}
        left[:] = [g for g in ([p for p in g if p not in self.finished and p not in started] for g in left) if g]
        raise WorkerDied(started, self.progressed)


def _drain(events: Any) -> Iterator[Event]:
    import queue as queues

    while True:
        try:
            yield events.get_nowait()
        except queues.Empty:
            return
        except (EOFError, OSError, BrokenPipeError):  # the manager is gone: nothing more will come
            return


def _stop(executor: Any, pids: Set[int], events: Any) -> None:
    """Stop the pool now: cancel what has not started, SIGTERM every worker, wait for them."""
    if executor is None:
        return
    executor.shutdown(wait=False, cancel_futures=True)
    try:
        for event in _drain(events):  # workers that said hello since the last look
            if isinstance(event, _Hello):
                pids.add(event.pid)
    except Exception:  # the manager's connection was cut mid-call (Ctrl-C): the process table below suffices
        pass
    # Workers still starting have not said hello, and tasks already handed to the call queue cannot be
    # cancelled: the executor's own process table (CPython's, since 3.2) reaches them too.
    pids.update(getattr(executor, "_processes", None) or {})
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    executor.shutdown(wait=True)
