"""The package's shape, read from its source: module sizes, the import graph
(no cycle, systems never import up), and one object per public name."""

from __future__ import annotations

import ast
import importlib
import pickle
from pathlib import Path
from typing import Dict, List, Set

import pytest

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


@pytest.mark.parametrize(("low", "never"), [
    ("gpuboot._libs", ("gpuboot.whisper", "gpuboot.doctor", "gpuboot.select", "gpuboot.boot", "gpuboot.cli",
                       "gpuboot._gpus", "gpuboot._code", "gpuboot.devices", "gpuboot.placement.memory")),
    ("gpuboot._gpus", ("gpuboot.whisper", "gpuboot.doctor", "gpuboot.select", "gpuboot.boot", "gpuboot.cli",
                       "gpuboot._libs", "gpuboot._code", "gpuboot.dllpath", "gpuboot.locate")),
    ("gpuboot._code", ("gpuboot.whisper", "gpuboot.doctor", "gpuboot.select", "gpuboot.boot", "gpuboot.cli")),
    ("gpuboot.whisper", ("gpuboot.doctor", "gpuboot.cli")),
    ("gpuboot.doctor", ("gpuboot.whisper", "gpuboot.cli")),
])
def test_a_system_never_imports_up(low: str, never: tuple) -> None:
    bad = {(m, t) for m, targets in _imports().items() if m == low or m.startswith(low + ".")
           for t in targets if t.startswith(never)}
    assert bad == set()


def test_gpuboot_locate_is_one_object_however_it_is_reached() -> None:
    import gpuboot.locate as view
    from gpuboot.locate import Resolution, resolve

    assert importlib.import_module("gpuboot.locate") is gpuboot.locate is view
    assert callable(view) and view.resolve is resolve and view.Resolution is Resolution
    assert pickle.loads(pickle.dumps(gpuboot.locate)) is gpuboot.locate


#: Parameter names that were test seams before they moved to the machine's snapshot (or to private functions).
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
    """Public signatures hold what users pass; the machine is injected through ``gpuboot.machine.snapshot`` instead."""
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
