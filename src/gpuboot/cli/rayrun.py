"""``gpuboot transcribe --ray [--ray-address ADDRESS]``: the files as tasks of Ray actors.

Each actor runs gpuboot's start-up and loads one model (``num_gpus=1`` each
where the cluster has GPUs: Ray sets the actor's ``CUDA_VISIBLE_DEVICES``,
which ``select_device`` reads).  Sizing comes from the nodes, not the cluster
total (``plan_ray``): a GPU actor asks for the CPUs every GPU node can give
each of its GPUs, so a CPU-only head node never blocks scheduling; asking for
more GPU actors than the cluster has GPUs is refused (they would wait for
ever).  Files are read and sent a group at a time (``runners.bundles``),
two groups per actor in flight, never the whole input set; an actor that
dies (``RayActorError``) costs an error line for each file it held, and a
new actor takes its place.  An address is tried first with a TCP connection
and the opening of an HTTP/2 connection (Ray's GCS and Ray Client speak
gRPC: a server answers the client preface with its SETTINGS frame, RFC 9113
3.4), so an unreachable cluster, or a port that accepts and never answers, is
one line within seconds; ``ray.init`` itself runs under a deadline
(``RAY_INIT_TIMEOUT_S``), and its failures are one line too.
"""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from ..base.record import Record
from ..errors import GpubootError
from .events import Event, Failed, Planned, Segment
from .runners import CPU_CORES_PER_WORKER, bundles, ram_fit, run_files, worker_facts

__all__ = ["RayActors", "RayPlan", "plan_ray", "reachable", "RAY_CONNECT_TIMEOUT_S"]

#: Seconds a TCP connection to the cluster's address may take before it is called unreachable.
RAY_CONNECT_TIMEOUT_S = 3.0
#: Seconds the server at the address has to answer the opening of an HTTP/2 (gRPC) connection.
RAY_ANSWER_TIMEOUT_S = 5.0
#: Seconds ``ray.init`` may take (connecting, or starting a local Ray: about 15 s on a loaded 2-core x86-64 CPU).
RAY_INIT_TIMEOUT_S = 180.0
#: The HTTP/2 client connection preface and an empty SETTINGS frame (RFC 9113 3.4, 6.5).
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
#: Ray's default GCS port (``ray start --head`` without ``--port``).
RAY_DEFAULT_PORT = 6379
#: CPUs a GPU actor asks for at most: the decoder's host threads (``throughput.plan_throughput``: 4 on a GPU).
GPU_ACTOR_CPUS = 4


class RayPlan(Record):
    """The actors: how many, the CPUs and GPUs each asks for, and why."""

    actors: int
    num_cpus: int
    num_gpus: int
    reason: str


def plan_ray(nodes: Sequence[Mapping[str, float]], workers: Any, *, files: int,
             ram_fit: Optional[int] = None) -> RayPlan:
    """The actors for ``workers`` (``"auto"``/``None`` or a number) on alive nodes' resources (``CPU``,
    ``GPU``, as ``ray.nodes()[i]["Resources"]``).

    GPUs anywhere: one actor per GPU (``num_gpus=1``), each asking for the CPUs the poorest GPU node has per
    GPU (1 to ``GPU_ACTOR_CPUS``).  No GPU: as many CPU actors as the nodes' CPUs hold (one per
    ``CPU_CORES_PER_WORKER``), capped by ``ram_fit``; each asks for the largest node's CPUs shared among them,
    at least ``CPU_CORES_PER_WORKER``, so that every actor fits on one node.  Never more actors than files.

    Raises:
        ValueError: more actors asked for than the cluster has GPUs, or no node with a CPU.
    """
    gpu_nodes = [n for n in nodes if n.get("GPU", 0) >= 1]
    gpus = int(sum(n.get("GPU", 0) for n in gpu_nodes))
    if gpus:
        per_gpu = min(int(n.get("CPU", 0) // n["GPU"]) for n in gpu_nodes)
        cpus = max(1, min(GPU_ACTOR_CPUS, per_gpu))
        asked = gpus if workers in ("auto", None) else int(workers)
        if asked > gpus:
            raise ValueError(f"--workers {asked} with --ray: the cluster has {gpus} GPU(s) and each actor takes one "
                             f"(more would wait for a GPU for ever); pass --workers {gpus} or fewer")
        n = max(1, min(asked, files or 1))
        return RayPlan(actors=n, num_cpus=cpus, num_gpus=1,
                       reason=f"{n} Ray actor(s), one GPU and {cpus} CPU(s) each (the GPU nodes' CPUs per GPU)")
    slots = int(sum(n.get("CPU", 0) // CPU_CORES_PER_WORKER for n in nodes))
    if slots < 1:
        raise ValueError("the Ray cluster has no node with a CPU to run an actor")
    n = slots if workers in ("auto", None) else int(workers)
    cap = ""
    if ram_fit is not None and n > ram_fit:
        n, cap = ram_fit, f", {ram_fit} model(s) fit in RAM"
    n = max(1, min(n, slots, files or 1))
    biggest = int(max(n.get("CPU", 0) for n in nodes))
    cpus = max(CPU_CORES_PER_WORKER, min(biggest, biggest // n))  # fewer actors than a node's CPUs: more each
    return RayPlan(actors=n, num_cpus=cpus, num_gpus=0,
                   reason=f"{n} Ray actor(s) on CPUs, {cpus} CPU(s) each ({slots} CPU(s) in the cluster, "
                          f"{biggest} on the largest node{cap})")


def _host_port(address: str) -> Optional[Tuple[str, int]]:
    """``(host, port)`` of a Ray address (``host:port``, ``ray://host:port``), ``None`` for ``auto``/``local``.

    Raises:
        ValueError: not an address.
    """
    if address in ("auto", "local"):
        return None
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
        raise ValueError(f"--ray-address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379 or "
                         "ray://10.0.0.5:10001)") from None
    if not parts.hostname or parts.scheme not in ("ray", "http", "https"):
        raise ValueError(f"--ray-address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379 or ray://10.0.0.5:10001)")
    return parts.hostname, port or RAY_DEFAULT_PORT


def reachable(address: str, timeout: float = RAY_CONNECT_TIMEOUT_S,
              answer_timeout: float = RAY_ANSWER_TIMEOUT_S) -> Optional[str]:
    """``None`` when the server at ``address`` accepts a TCP connection and answers the opening of an HTTP/2
    connection with any bytes (or ``address`` is ``auto``/``local``), else why not.

    Raises:
        ValueError: ``address`` is not an address.
    """
    target = _host_port(address)
    if target is None:
        return None
    try:
        conn = socket.create_connection(target, timeout=timeout)
    except socket.timeout:
        return f"no answer within {timeout:.0f} s"
    except OSError as exc:
        return exc.strerror or str(exc)
    with conn:
        try:
            conn.settimeout(answer_timeout)
            conn.sendall(_H2_PREFACE)
            if conn.recv(9):
                return None
            return "it closed the connection without answering (not a Ray cluster's address)"
        except socket.timeout:
            return (f"it accepts connections but did not answer the opening of a gRPC connection within "
                    f"{answer_timeout:.0f} s (not a Ray cluster's address, or a cluster that is stuck)")
        except OSError as exc:
            return f"the connection failed ({exc.strerror or exc})"


#: Never set: the thread that called ``ray.init`` waits on it (``_init``).
_PARKED = threading.Event()


def _init(ray: Any, address: Optional[str], timeout: float = RAY_INIT_TIMEOUT_S) -> None:
    """``ray.init`` at ``address`` (``None``: a local Ray) under a deadline, its failures as ``GpubootError``.

    Raises:
        GpubootError: Ray refused (no Ray running at ``auto``, a version mismatch, ...) or did not finish within
            ``timeout`` seconds.
    """
    outcome: List[BaseException] = []
    done = threading.Event()

    def connect() -> None:
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, include_dashboard=False)
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)
        finally:
            done.set()
        # A local Ray's processes (gcs_server, raylet) get PR_SET_PDEATHSIG from the thread that started them,
        # and Linux sends it when that *thread* ends (prctl(2): "the parent death signal is sent upon subsequent
        # termination of the parent thread"): this thread stays, parked, for the life of the process.  Ray 2.60.0
        # with a thread that returned: GCS gone 1-2 s after the job registered, every call failing after 60 s.
        _PARKED.wait()

    where = f"the Ray cluster at {address}" if address else "a local Ray"
    fix = ("start it (ray start --head) or pass the address `ray status` shows, as --ray-address HOST:PORT"
           if address else "see `ray start --head` for what Ray needs, or run without --ray")
    threading.Thread(target=connect, name="gpuboot-ray-init", daemon=True).start()
    if not done.wait(timeout):
        raise GpubootError(f"cannot connect to {where}: ray.init did not finish within {timeout:.0f} s", fix)
    if outcome:
        exc = outcome[0]
        if isinstance(exc, KeyboardInterrupt):
            raise exc
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise GpubootError(f"cannot connect to {where}: {type(exc).__name__}: {first}", fix)


class _RayTranscriber:
    """A Ray actor: gpuboot's start-up and one model, then groups of files sent as bytes."""

    def __init__(self, settings: Any, rank: int, threads: int) -> None:
        from ..boot import ensure
        from ..machine.snapshot import current
        from ..select import select_device

        ensure()
        with current().replace(ask_consumers=False).scope():  # Ray set CUDA_VISIBLE_DEVICES for this actor
            self.choice = select_device(worker=rank)
        self.settings, self.rank, self.threads = settings, rank, threads
        self.model: Any = None

    def transcribe(self, files: List[Tuple[str, bytes]]) -> List[Event]:
        from ..whisper.audio import decode_bytes

        data = dict(files)
        events: List[Event] = []
        run = run_files(self.settings, [p for p, _ in files],
                        lambda: self.settings.load(cpu_threads=self.threads), rank=self.rank,
                        more=worker_facts(self.rank, self.choice), model=self.model,
                        decoder=lambda path: decode_bytes(path, data[path]))
        while True:
            try:
                events.append(next(run))
            except StopIteration as stop:
                self.model = stop.value
                return [e for e in events if not isinstance(e, Segment)]  # live lines stay on the actor


class RayActors:
    """Ray actors on a local Ray (no address) or the cluster at ``address`` (see the module docstring)."""

    def __init__(self, settings: Any, workers: Any, address: Optional[str], *,
                 seconds: Optional[Dict[str, float]] = None) -> None:
        self.settings, self.workers, self.address = settings, workers, address
        self.seconds = seconds or {}

    def run(self, paths: Sequence[str]) -> Iterator[Event]:
        from ..base.deps import import_optional
        from .runners import audio_seconds

        if self.address:
            why = reachable(self.address)
            if why is not None:
                raise GpubootError(f"cannot reach the Ray cluster at {self.address}: {why}",
                                   "start it (ray start --head) or pass the address `ray status` shows, as "
                                   "--ray-address HOST:PORT")
        ray = import_optional("ray", "ray", "pip install 'gpuboot[ray]'")
        started_here = not ray.is_initialized()
        if started_here:
            _init(ray, self.address or None)
        try:
            nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
            plan = plan_ray(nodes, self.workers, files=len(paths), ram_fit=ram_fit(self.settings)[0])
            yield Planned(line=plan.reason)
            for path in paths:
                if path not in self.seconds:
                    self.seconds[path] = audio_seconds(path)
            yield from self._run(ray, plan, bundles(paths, self.seconds, 30.0 * 16, plan.actors))
        finally:
            if started_here:
                ray.shutdown()

    def _run(self, ray: Any, plan: RayPlan, groups: List[List[str]]) -> Iterator[Event]:
        from ray.exceptions import RayActorError

        actor_class = ray.remote(num_gpus=plan.num_gpus, num_cpus=plan.num_cpus, max_restarts=0)(_RayTranscriber)

        def start(rank: int) -> Any:
            return actor_class.remote(self.settings, rank, plan.num_cpus)

        actors = {rank: start(rank) for rank in range(plan.actors)}
        load: Dict[int, int] = dict.fromkeys(actors, 0)
        flying: Dict[Any, Tuple[int, List[str]]] = {}
        todo = list(groups)
        while todo or flying:
            for rank in actors:
                while todo and load[rank] < 2:
                    group = todo.pop(0)
                    files, events = _read(group)
                    yield from events
                    if not files:
                        continue
                    flying[actors[rank].transcribe.remote(files)] = (rank, [p for p, _ in files])
                    load[rank] += 1
            if not flying:
                continue
            ready, _ = ray.wait(list(flying), num_returns=1, timeout=1.0)
            for ref in ready:
                rank, group = flying.pop(ref)
                load[rank] -= 1
                try:
                    yield from ray.get(ref)
                except RayActorError as exc:
                    why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    for path in group:
                        died = GpubootError(f"{path}: the Ray actor transcribing it died ({why})",
                                            "see `ray logs` on the node; the other files went on")
                        yield Failed(path=path, error=died)
                    for other, (r, g) in list(flying.items()):  # its other task died with it
                        if r == rank:
                            flying.pop(other)
                            todo.insert(0, g)
                    load[rank] = 0
                    actors[rank] = start(rank)
                except Exception as exc:  # the task itself raised: its files, one line each
                    for path in group:
                        yield Failed(path=path, error=f"{path}: {type(exc).__name__}: {exc}")


def _read(group: Sequence[str]) -> Tuple[List[Tuple[str, bytes]], List[Event]]:
    files: List[Tuple[str, bytes]] = []
    events: List[Event] = []
    for path in group:
        try:
            files.append((path, Path(path).read_bytes()))
        except OSError as exc:
            from ..errors import AudioError

            events.append(Failed(path=path, error=AudioError(f"{path}: not readable ({exc.strerror or exc})",
                                                             "check the path and its permissions")))
    return files, events
