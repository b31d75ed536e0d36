"""One snapshot of the machine: every fact gpuboot reads about it, each read once, when it is first asked for.

A ``Machine`` is the machine at one moment -- the platform, the environment, ``sys.path`` and the directories
distributions are installed in, the file-system root the driver's files are looked for under, the driver
check, NVML, the driver probe, CUDA's own device order, the installed distributions, the shared objects this
process has mapped, the environment it started with, WSL, CPUs, RAM, the system loader's cache and the Windows
API calls.  A fact is read the first time it is asked for (``machine.probe`` runs the probe's child process
then) and kept: a snapshot never changes.  Facts given to the constructor stand in for the real ones: a test
describes another machine, doctor keeps from importing consumers (``ask_consumers=False``).  Values computed
from the facts can be kept on the snapshot too (``memo``): a consumer's binaries are read once per snapshot.

The code that judges the machine takes a ``Machine`` as an argument.  The public functions take what users pass
and judge ``current()``: the snapshot made current in this thread with ``Machine.scope()`` (tests; a call that
makes several, as ``load_whisper`` runs ``ensure()`` and ``select_device()`` on one snapshot), else a fresh
snapshot of this machine.  A test harness that starts child interpreters gives every snapshot of such a child
some facts with ``describe_this_process`` (its ``sitecustomize``).  Importing this module costs ``os``, ``sys``
and ``_thread``.
"""

from __future__ import annotations

import _thread

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, ContextManager, Dict, List, Mapping, Optional, Tuple, TypeVar

    from .driver import DriverInfo
    from .metadata import Distribution, Malformed
    from .probe import DriverProbe

    _T = TypeVar("_T")

__all__ = ["Machine", "Later", "FACTS", "current", "describe_this_process"]

#: The facts a snapshot holds; each can be given to ``Machine(...)`` instead of being read.
FACTS = ("platform", "environ", "search_paths", "sites", "root", "driver", "nvml", "probe", "cuda_order",
         "cpu_threads", "ram", "distributions", "malformed", "loaded", "initial_environ", "wsl", "ldconfig",
         "windows_api", "ask_consumers")


class Later:
    """A fact given as the function that reads it: ``read(machine)`` runs the first time the fact is asked for
    (a harness that describes a driver probe without importing the probe's module at start-up)."""

    __slots__ = ("read",)

    def __init__(self, read: Callable[[Machine], Any]) -> None:
        self.read = read


_THIS = object()  # the origin of every snapshot of this machine as it is
_PROCESS_FACTS: Dict[str, Any] = {}
_NOT_GIVEN = object()
_SCOPES = _thread._local()


class Machine:
    """The machine at one moment; see the module docstring.

    Args:
        **facts: stand-ins for facts (``FACTS``), each typed as the attribute of its name.

    Raises:
        TypeError: a name that is not a fact.
    """

    __slots__ = ("_given", "_read", "_memo", "_lock", "origin")
    _given: Dict[str, Any]
    _read: Dict[str, Any]
    _memo: Dict[Any, Any]
    _lock: Any
    #: Which machine this describes: a snapshot of this machine shares it with every other one (``ensure()``'s
    #: cache is kept per origin), a described machine is its own.
    origin: object

    def __init__(self, **facts: Any) -> None:
        unknown = sorted(set(facts) - set(FACTS))
        if unknown:
            raise TypeError(f"Machine() has no fact(s) {', '.join(unknown)}; the facts are {', '.join(FACTS)}")
        for name, value in (("_given", dict(facts)), ("_read", {}), ("_memo", {}),
                            ("_lock", _thread.RLock()), ("origin", self)):
            object.__setattr__(self, name, value)

    @classmethod
    def now(cls) -> Machine:
        """A snapshot of this machine, nothing read yet (with the facts ``describe_this_process`` gave)."""
        machine = cls(**_PROCESS_FACTS)
        object.__setattr__(machine, "origin", _THIS)
        return machine

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Machine snapshot is immutable")

    def __reduce__(self) -> Tuple[Any, ...]:
        """Pickled and copied as its given facts (what was read is read again where it is unpickled)."""
        return _rebuild, (self._given, self.origin is _THIS)

    def __repr__(self) -> str:
        given = ", ".join(sorted(self._given))
        return f"Machine({'this machine' if self.origin is _THIS else 'described'}; given: {given or 'nothing'})"

    def fact(self, name: str) -> Any:
        """The fact ``name``: given, else read now (once)."""
        given = self._given.get(name, _NOT_GIVEN)
        if given is not _NOT_GIVEN and not isinstance(given, Later):
            return given
        with self._lock:  # reentrant: a reader asks for the facts it depends on
            if name not in self._read:
                from .readers import read

                if isinstance(given, Later):
                    self._read[name] = given.read(self)
                elif name in ("distributions", "malformed"):
                    for key, value in read(name, self.fact).items():  # one scan reads both
                        self._read.setdefault(key, value)
                else:
                    self._read[name] = read(name, self.fact)
            return self._read[name]

    def replace(self, **facts: Any) -> Machine:
        """A snapshot of the same machine with ``facts`` given (nothing read is carried over)."""
        machine = Machine(**{**self._given, **facts})
        if not facts:
            object.__setattr__(machine, "origin", self.origin)
        return machine

    def memo(self, key: Any, compute: Callable[[], _T]) -> _T:
        """``compute()`` once per snapshot: a value that depends only on this snapshot's facts."""
        with self._lock:
            if key not in self._memo:
                self._memo[key] = compute()
            return self._memo[key]  # type: ignore[no-any-return]

    def scope(self) -> ContextManager[Machine]:
        """A context manager that makes this snapshot ``current()`` in this thread."""
        import contextlib

        @contextlib.contextmanager
        def scoped() -> Any:
            stack = _stack()
            stack.append(self)
            try:
                yield self
            finally:
                stack.reverse()
                stack.remove(self)  # the innermost entry of this snapshot
                stack.reverse()

        return scoped()

    # ------------------------------------------------------------------ the facts

    @property
    def platform(self) -> str:
        """``"linux"`` or ``"win32"``: whose library layout and loader apply."""
        return self.fact("platform")  # type: ignore[no-any-return]

    @property
    def environ(self) -> Mapping[str, str]:
        """The environment (``LD_LIBRARY_PATH``, ``CUDA_VISIBLE_DEVICES``, ...): this process's ``os.environ``."""
        return self.fact("environ")  # type: ignore[no-any-return]

    @property
    def search_paths(self) -> Tuple[str, ...]:
        """The wheel roots searched for NVIDIA libraries: ``sys.path``."""
        return tuple(self.fact("search_paths"))

    @property
    def sites(self) -> Tuple[str, ...]:
        """The directories installed distributions (and consumers' binaries) are read from: ``sys.path``."""
        return tuple(self.fact("sites"))

    @property
    def root(self) -> str:
        """The file-system root the driver's files are looked for under: ``/``."""
        return self.fact("root")  # type: ignore[no-any-return]

    @property
    def driver(self) -> DriverInfo:
        """Whether an NVIDIA driver is present (``driver.detect_driver``: a few ``stat`` calls)."""
        return self.fact("driver")  # type: ignore[no-any-return]

    @property
    def nvml(self) -> Any:
        """A module with ``pynvml``'s functions, error classes and return types, or ``None`` (not installed)."""
        return self.fact("nvml")

    @property
    def probe(self) -> Optional[DriverProbe]:
        """What the driver answered (``probe.probe_driver``: a child process), or ``None``: not asked."""
        return self.fact("probe")  # type: ignore[no-any-return]

    @property
    def cuda_order(self) -> Optional[List[str]]:
        """The PCI bus ids of every GPU in the CUDA driver's own order (a child process), or ``None``."""
        return self.fact("cuda_order")  # type: ignore[no-any-return]

    @property
    def cpu_threads(self) -> int:
        """CPUs this process may use (affinity mask, cgroup quota)."""
        return self.fact("cpu_threads")  # type: ignore[no-any-return]

    @property
    def ram(self) -> int:
        """RAM available to new allocations, bytes (0 when unknown)."""
        return self.fact("ram")  # type: ignore[no-any-return]

    @property
    def distributions(self) -> Tuple[Distribution, ...]:
        """Every installed distribution whose metadata is valid (``metadata.scan_distributions``)."""
        return tuple(self.fact("distributions"))

    @property
    def malformed(self) -> Tuple[Malformed, ...]:
        """The installed distributions whose metadata is malformed."""
        return tuple(self.fact("malformed"))

    @property
    def loaded(self) -> Optional[Tuple[str, ...]]:
        """The shared objects this process has mapped (``/proc/self/maps``), or ``None`` where they cannot be
        read (Windows)."""
        found = self.fact("loaded")
        return None if found is None else tuple(found)

    @property
    def initial_environ(self) -> Optional[Mapping[str, str]]:
        """The environment the process started with (``/proc/self/environ``): what the loader read."""
        return self.fact("initial_environ")  # type: ignore[no-any-return]

    @property
    def wsl(self) -> bool:
        """Running under WSL2."""
        return bool(self.fact("wsl"))

    @property
    def ldconfig(self) -> Mapping[str, List[str]]:
        """The system loader's cache: soname -> paths (``ldconfig -p``)."""
        return self.fact("ldconfig")  # type: ignore[no-any-return]

    @property
    def windows_api(self) -> Any:
        """The Windows API calls the Windows loader makes (``winapi.WindowsAPI``)."""
        return self.fact("windows_api")

    @property
    def ask_consumers(self) -> bool:
        """Judging may import an installed consumer to ask it (CTranslate2's supported compute types): not in
        doctor, nor in a worker process before its model is loaded."""
        return bool(self.fact("ask_consumers"))

    def distribution(self, name: str) -> Optional[Distribution]:
        """The first installed distribution called ``name`` (any spelling) whose metadata is valid, or ``None``."""
        from .metadata import canonical_name, read_distribution

        wanted = canonical_name(name)
        if "distributions" in self._given:  # a described machine: its distributions are all there is
            return next((d for d in self.distributions if d.name == wanted), None)

        def read() -> Optional[Distribution]:
            return read_distribution(name, list(self.sites))[0]

        return self.memo(("distribution", wanted), read)


def _rebuild(given: Dict[str, Any], this: bool) -> Machine:
    machine = Machine(**given)
    if this:
        object.__setattr__(machine, "origin", _THIS)
    return machine


def _stack() -> List[Machine]:
    stack: Optional[List[Machine]] = getattr(_SCOPES, "stack", None)
    if stack is None:
        stack = []
        _SCOPES.stack = stack
    return stack


def current() -> Machine:
    """The machine judged now: the snapshot made current in this thread (``Machine.scope``), else a fresh
    snapshot of this machine (``Machine.now``)."""
    stack = getattr(_SCOPES, "stack", None)
    return stack[-1] if stack else Machine.now()


def describe_this_process(**facts: Any) -> None:
    """Give every snapshot of this machine in this process ``facts`` (a test harness's child interpreter).

    Raises:
        TypeError: a name that is not a fact.
    """
    Machine(**facts)  # the names checked
    _PROCESS_FACTS.clear()
    _PROCESS_FACTS.update(facts)
