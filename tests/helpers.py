"""Test helpers (tests and bench/ import them): site directories built from
REAL wheel file lists, real shared objects compiled with the real sonames,
child interpreters, and the NVML choice helper.

``tests/data/wheels/*.txt`` are the file lists of real wheels on PyPI, read
with ``tools/wheel_filelist.py`` (zip central directory only).  A fixture site
reproduces a wheel's files and its ``.dist-info`` (METADATA + RECORD), so
``importlib.metadata`` reads it as pip would have installed it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

DATA = Path(__file__).parent / "data"
WHEELS = DATA / "wheels"
SAMPLE = Path(__file__).parent.parent / "samples" / "speech-en.wav"

_WHEEL_RE = re.compile(r"^(?P<dist>[^-]+)-(?P<version>[^-]+)-[^-]+-[^-]+-(?P<plat>.+)\.whl\.txt$")


@dataclass(frozen=True)
class WheelList:
    filename: str
    project: str  # canonical, e.g. nvidia-cublas-cu12
    version: str
    platform: str  # "linux" or "win32"
    files: tuple

    @property
    def libraries(self) -> List[str]:
        return [f for f in self.files if re.search(r"\.so(\.|$)|\.dll$", f)]


def _read_lists() -> Dict[str, WheelList]:
    out = {}
    for p in sorted(WHEELS.glob("*.whl.txt")):
        m = _WHEEL_RE.match(p.name)
        assert m, p.name
        project = m.group("dist").replace("_", "-")
        plat = "win32" if "win" in m.group("plat") else "linux"
        files = tuple(line for line in p.read_text().splitlines() if line)
        out[p.name] = WheelList(p.name, project, m.group("version"), plat, files)
    return out


WHEEL_LISTS: Dict[str, WheelList] = _read_lists()


def wheel(project: str, platform: str = "linux", version_prefix: str = "") -> WheelList:
    """The recorded wheel of ``project`` for ``platform`` (and version prefix)."""
    found = [w for w in WHEEL_LISTS.values()
             if w.project == project and w.platform == platform and w.version.startswith(version_prefix)]
    assert len(found) == 1, (project, platform, version_prefix, [w.filename for w in found])
    return found[0]


def install(site: Path, w: WheelList, *, real_so: bool = False, dist_info: bool = True,
            needed: Optional[Dict[str, Sequence[str]]] = None) -> Path:
    """Reproduce wheel ``w`` under ``site``: its files (empty, or for Linux
    shared objects with ``real_so`` a compiled stub with the real soname) and
    its .dist-info.  Returns ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    needed = needed or {}
    # Dependencies first: a stub is linked against the stubs it needs.
    files = sorted(w.files, key=lambda rel: bool(needed.get(rel.rsplit("/", 1)[-1])))
    for rel in files:
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".dist-info/METADATA"):
            path.write_text(f"Metadata-Version: 2.1\nName: {w.project}\nVersion: {w.version}\n")
        elif rel.endswith(".dist-info/RECORD"):
            path.write_text("".join(f"{f},,\n" for f in w.files))
        elif real_so and re.search(r"\.so(\.\d+)+$", rel):
            compile_stub(path, path.name, needed.get(path.name, ()))
        else:
            path.write_bytes(b"")
    if not dist_info:
        for d in site.glob("*.dist-info"):
            shutil.rmtree(d)
    return site


_STUB_C = textwrap.dedent("""
    #include <stdio.h>
    #include <stdlib.h>
    __attribute__((constructor)) static void gpuboot_stub_loaded(void) {
        const char *log = getenv("GPUBOOT_STUB_LOG");
        if (log) { FILE *f = fopen(log, "a"); if (f) { fputs("%s\\n", f); fclose(f); } }
    }
    int %s_stub_marker(void) { return %d; }
""")


def compile_stub(path: Path, soname: str, needed: Iterable[str] = ()) -> Path:
    """Compile a real shared object at ``path`` whose SONAME is ``soname`` and
    whose DT_NEEDED lists ``needed`` (resolved by the loader at load time,
    no RPATH).  Its constructor appends the soname to ``$GPUBOOT_STUB_LOG``."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        import pytest

        pytest.skip("no C compiler")
    path.parent.mkdir(parents=True, exist_ok=True)
    ident = re.sub(r"\W", "_", soname)
    src = path.parent / f".{path.name}.c"
    src.write_text(_STUB_C % (soname, ident, len(soname)))
    cmd = [cc, "-shared", "-fPIC", "-o", str(path), str(src), f"-Wl,-soname,{soname}"]
    needed = list(needed)
    if needed:
        # Link against the real dependency by its file name, then drop the search dir
        # so that the loader has to find it at run time (like a wheel without RPATH).
        cmd += ["-Wl,--no-as-needed", f"-L{path.parent}"]  # Debian's gcc links --as-needed
        cmd += [f"-l:{dep}" for dep in needed]
    subprocess.run(cmd, check=True, capture_output=True)
    src.unlink()
    return path


#: A directory whose sitecustomize.py points gpuboot's driver check at a root
#: without an NVIDIA driver (tests/host_without_driver/sitecustomize.py).
NO_DRIVER_SHIM = Path(__file__).parent / "host_without_driver"


def child_env(env: Optional[Dict[str, str]] = None, *, driver: bool = False,
              base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """``base`` (``os.environ``) plus ``env`` for a child interpreter.  ``driver=False``
    (the default) injects a host without an NVIDIA driver through
    ``NO_DRIVER_SHIM``, so the child behaves the same on every machine;
    ``driver=True`` leaves the host's own driver check in place."""
    full_env = dict(os.environ if base is None else base)
    full_env.update(env or {})
    if not driver:
        rest = full_env.get("PYTHONPATH", "")
        full_env["PYTHONPATH"] = str(NO_DRIVER_SHIM) + (os.pathsep + rest if rest else "")
    return full_env


def no_driver_machine(root: Path, **facts: Any) -> Any:
    """A described machine whose driver files are read under an empty ``root``: a host without an NVIDIA
    driver (the real check, on another file system), its driver probe answering as on a host with nothing
    NVIDIA."""
    from probes import empty

    root.mkdir(parents=True, exist_ok=True)
    return machine(root=str(root), probe=empty(), **facts)


def ctrl_c_default() -> None:
    """``preexec_fn`` of a child that a test stops with SIGINT: a runner started in the background of a
    non-interactive shell (``cmd &``) has SIGINT ignored, and its children inherit that (signal(7)), so the
    child would never see Ctrl-C.  The child gets SIGINT at its default, as a terminal's foreground job has."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_child(code: str, env: Optional[Dict[str, str]] = None, cwd: Optional[Path] = None,
              check: bool = True, driver: bool = False) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (loader state is per process), on
    a host without an NVIDIA driver unless ``driver`` (``child_env``)."""
    base = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    full_env = child_env(env, driver=driver, base=base)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def require_real(what: str) -> None:
    """Skip, or fail under CI (GPUBOOT_REQUIRE_REAL=1), when real material is absent."""
    skip_or_fail(f"{what} not installed")


def skip_or_fail(why: str) -> None:
    """Skip for ``why``, or fail under CI (GPUBOOT_REQUIRE_REAL=1), where every test runs: no skip there."""
    import pytest

    if os.environ.get("GPUBOOT_REQUIRE_REAL") == "1":
        pytest.fail(f"{why}: every test must run in this run (GPUBOOT_REQUIRE_REAL=1)")
    pytest.skip(why)


def machine(**facts: Any) -> Any:
    """A ``Machine`` snapshot described by ``facts`` (``gpuboot.machine.snapshot.FACTS``), the rest read from this
    one, with shorthands: ``driver=True``/``False`` (a ``DriverInfo``); ``metadata={name: (version,
    Requires-Dist)}`` (installed distributions, without files); ``distributions`` and ``malformed`` as callables
    too.  A machine whose NVML is described (``nvml=FakeNVML(...)``) has a driver, and its driver probe and CUDA
    device order are not asked unless given: the real ones belong to the machine running the tests."""
    from gpuboot.machine.driver import DriverInfo
    from gpuboot.machine.metadata import Distribution, canonical_name
    from gpuboot.machine.snapshot import Later, Machine

    if isinstance(facts.get("driver"), bool):
        facts["driver"] = DriverInfo(present=facts["driver"], evidence="given by the caller")
    given = facts.pop("distributions", None)
    given = given() if callable(given) else given
    metadata = facts.pop("metadata", None)
    if metadata is not None or given is not None:
        dists = [Distribution(name=canonical_name(n), version=v, requires=tuple(r))
                 for n, (v, r) in (metadata or {}).items()]
        dists += [d if isinstance(d, Distribution) else
                  Distribution(name=canonical_name(d[0]), version=d[1], requires=tuple(d[2])) for d in given or ()]
        facts["distributions"] = tuple(dists)
    if callable(facts.get("malformed")):
        facts["malformed"] = tuple(facts["malformed"]())
    for name in ("order_probe", "cuda_order"):
        if callable(facts.get(name)):
            read = facts.pop(name)
            facts["cuda_order"] = Later(lambda _m, read=read: read())
    if "nvml" in facts:
        facts.setdefault("driver", DriverInfo(present=True, evidence="given by the caller"))
        facts.setdefault("probe", None)
        facts.setdefault("cuda_order", None)
    for name in ("search_paths", "sites", "loaded"):
        if facts.get(name) is not None:
            facts[name] = tuple(str(p) for p in facts[name])
    return Machine(**facts)


def injected(**facts: Any) -> Any:
    """``machine(**facts).scope()``: that described machine is ``current()`` in this thread."""
    return machine(**facts).scope()


def choose(gpus: list, env: Optional[Dict[str, str]] = None, ct2: Optional[str] = None, *,
           cpu_threads: Optional[int] = None, driver_cuda: int = 12040, **kw: Any) -> Any:
    """``select_device`` over a fake NVML serving ``gpus`` (tests/fake_nvml.py) with a driver for CUDA
    ``driver_cuda`` (cuda.h's encoding: 12040 is 12.4), without asking CTranslate2 itself; the installed
    consumers and their binaries are the real ones, or with ``ct2`` a described ctranslate2 of that version
    (and no other consumer, no binaries)."""
    from fake_nvml import FakeNVML

    from gpuboot.select import select_device

    facts: Dict[str, Any] = {"nvml": FakeNVML(gpus, cuda_version=driver_cuda), "ask_consumers": False}
    if cpu_threads is not None:
        facts["cpu_threads"] = cpu_threads
    if ct2 is not None:
        facts["metadata"] = {"ctranslate2": (ct2, [])}
    with injected(**facts):
        return select_device(environ=env or {}, **kw)


def gathered(consumers: Optional[Sequence[str]] = None, **host: Any) -> Any:
    """doctor's ``Context`` of a described machine (``machine(**host)``: ``nvml``, ``driver``, ``probe``,
    ``search_paths``, ``metadata``, ...), everything else read from this one."""
    from gpuboot.doctor import gather

    with injected(**host):
        return gather(consumers=consumers)


def hosted(function: Any, **host: Any) -> Any:
    """``function`` called on a described machine: ``hosted(discover, nvml=FakeNVML([...]))(environ={})``
    (``machine(**host)``)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        with injected(**host):
            return function(*args, **kwargs)

    return call


def marked_processes(mark: str) -> List[int]:
    """Processes whose environment carries ``GPUBOOT_TEST_MARK=mark`` (the command and everything it started)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if f"GPUBOOT_TEST_MARK={mark}".encode() in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def processes_gone(mark: str, within: float) -> bool:
    """Whether every process marked ``mark`` has ended within ``within`` seconds (polled every 0.1 s)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not marked_processes(mark):
            return True
        time.sleep(0.1)
    return not marked_processes(mark)
