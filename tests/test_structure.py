"""The package's shape, read from its source: module sizes, the import graph (no cycle, bench's included; every
module on a floor, importing only down), the root holding the faces alone, consumers named in their rows alone,
no private twin of a public function, and one object per public name."""

from __future__ import annotations

import ast
import importlib
import pickle
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import gpuboot

SRC = Path(gpuboot.__file__).parent
#: ARCHITECTURE.md's "no module over 350 lines".
MAX_LINES = 350


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> Dict[str, Set[str]]:
    """module -> the gpuboot modules it imports (at any depth of the file: lazy imports count)."""
    graph: Dict[str, Set[str]] = {}
    for path in SRC.rglob("*.py"):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        out: Set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith("gpuboot"):
                    continue
                for alias in node.names:  # "from . import x" imports the submodule x
                    sub = f"{target}.{alias.name}"
                    out.add(sub if (SRC.parent / (sub.replace(".", "/") + ".py")).exists() else target)
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name.startswith("gpuboot"))
        graph[name] = {t for t in out if t != name}
    return graph


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {_module_name(p): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def test_the_import_graph_has_no_cycle() -> None:
    graph = _imports()
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if t.startswith("gpuboot.") and t.rsplit(".", 1)[0] == m:
                continue  # a package importing its own submodule (its face) is no cycle
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(t):], t]))
            if state.get(t) is None:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


#: The floors of the package, ground first (ARCHITECTURE.md draws them): a module imports only modules of a
#: lower floor, or of its own group (folder) on its floor.
FLOORS: Tuple[Tuple[str, ...], ...] = (
    ("gpuboot.errors",),
    ("gpuboot.base",),
    ("gpuboot.machine", "gpuboot.binaries"),
    ("gpuboot.consumers",),
    ("gpuboot._libs", "gpuboot._gpus", "gpuboot._code", "gpuboot.subtitles"),
    ("gpuboot.locate", "gpuboot.dllpath"),
    ("gpuboot.placement", "gpuboot.boot", "gpuboot.mix", "gpuboot.startup"),
    ("gpuboot.select",),
    ("gpuboot.whisper", "gpuboot.doctor"),
    ("gpuboot.streaming", "gpuboot.serve"),
    ("gpuboot.cli",),
    ("gpuboot",),  # the package's lazy face: it imports only locate (the rest when a name is first used; its
    # docstring's list of commands from cli.COMMANDS when help() reads it)
    ("gpuboot.__main__",),
)
#: The modules at the package's root: the faces the README shows, the package and ``python -m gpuboot``.
FACES = {"__init__", "__main__", "locate", "dllpath", "select", "boot", "errors"}


def _group(module: str) -> Tuple[int, str]:
    """(floor, group) of ``module``: the longest group of ``FLOORS`` it is, or is inside."""
    best: Optional[Tuple[int, str]] = None
    for floor, groups in enumerate(FLOORS):
        for group in groups:
            if (module == group or module.startswith(group + ".")) and (best is None or len(group) > len(best[1])):
                best = (floor, group)
    assert best is not None, f"{module} is on no floor of FLOORS"
    return best


def test_every_module_is_on_a_floor_and_imports_only_down() -> None:
    up = set()
    for module, targets in _imports().items():
        floor, group = _group(module)
        for target in targets:
            if not target.startswith("gpuboot"):
                continue
            t_floor, t_group = _group(target)
            if t_floor > floor or (t_floor == floor and t_group != group):
                up.add((module, target))
    assert up == set()


def test_the_root_keeps_the_faces_alone() -> None:
    assert {p.stem for p in SRC.glob("*.py")} == FACES


def _bench_imports() -> Dict[str, Set[str]]:
    """bench/ module -> the bench/ modules it imports (they import each other by name, bench/ on sys.path)."""
    bench = SRC.parent.parent / "bench"
    names = {p.stem for p in bench.glob("*.py")}
    graph: Dict[str, Set[str]] = {}
    for path in bench.glob("*.py"):
        found: Set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in names and not node.level:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in names)
        graph[path.stem] = found - {path.stem}
    return graph


def test_bench_has_no_import_cycle() -> None:
    graph = _bench_imports()
    assert graph, "bench/ not found beside src/"
    done: Set[str] = set()

    def visit(m: str, trail: Tuple[str, ...]) -> None:
        assert m not in trail, "bench import cycle: " + " -> ".join((*trail, m))
        if m not in done:
            for t in sorted(graph[m]):
                visit(t, (*trail, m))
            done.add(m)

    for m in sorted(graph):
        visit(m, ())


def test_consumers_are_named_in_their_rows_alone() -> None:
    """A consumer's name appears as a quoted literal only in ``consumers/`` (its row) and ``whisper/`` (which is
    faster-whisper's, so CTranslate2's): every other module asks the rows."""
    import re

    from gpuboot.consumers.table import CONSUMER_TABLE

    names = {n for row in CONSUMER_TABLE for n in (row.name, row.for_name, *row.imports)}
    quoted = re.compile("|".join(f'"{re.escape(n)}"' for n in sorted(names)))
    found = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(("consumers/", "whisper/")):
            continue
        hits = quoted.findall(path.read_text())
        if hits:
            found[rel] = sorted(set(hits))
    assert found == {}


def test_public_functions_have_no_private_twin() -> None:
    """No module defines both ``name`` and ``_name``: the public function is the implementation."""
    twins = set()
    for path in SRC.rglob("*.py"):
        defs = {n.name for n in ast.parse(path.read_text()).body
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        twins |= {f"{_module_name(path)}.{d}" for d in defs if not d.startswith("_") and f"_{d}" in defs}
    assert twins == set()


def test_gpuboot_locate_is_one_object_however_it_is_reached() -> None:
    import gpuboot.locate as view
    from gpuboot.locate import Resolution, resolve

    assert importlib.import_module("gpuboot.locate") is gpuboot.locate is view
    assert callable(view) and view.resolve is resolve and view.Resolution is Resolution
    assert pickle.loads(pickle.dumps(gpuboot.locate)) is gpuboot.locate


#: Parameter names that were test seams before they became facts of the ``Machine`` snapshot.
SEAMS = {"nvml", "inventory", "windows_api", "runner", "refusal", "order_probe", "metadata", "loaded",
         "initial_environ", "distributions", "malformed", "free_bytes", "ct2_version", "reconcile", "probe",
         "cpu_threads", "driver", "wsl"}


def _public_callables() -> Dict[str, object]:
    import inspect

    import gpuboot.doctor
    import gpuboot.placement.memory
    import gpuboot.select
    import gpuboot.startup.shellenv

    out: Dict[str, object] = {}
    for module in (gpuboot, gpuboot.doctor, gpuboot.placement.memory, gpuboot.select, gpuboot.startup.shellenv):
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                out[f"{module.__name__}.{name}"] = obj
    return out


def test_no_public_parameter_is_a_test_seam() -> None:
    """Public signatures hold what users pass; a test describes the machine as a ``Machine`` snapshot instead."""
    import inspect
    from dataclasses import is_dataclass

    from gpuboot.base.record import Record

    found = {}
    for name, obj in _public_callables().items():
        if inspect.isclass(obj) and (issubclass(obj, Record) or is_dataclass(obj)):
            continue  # a value's fields are data, not seams
        target = obj.__init__ if inspect.isclass(obj) else obj  # type: ignore[misc]
        try:
            params = inspect.signature(target).parameters
        except (TypeError, ValueError):
            continue
        seams = sorted(p for p in params if p in SEAMS)
        doc = inspect.getdoc(target) or ""
        if seams or "(tests)" in doc:
            found[name] = seams or ["(tests) in its docstring"]
    assert found == {}
