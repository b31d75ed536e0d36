"""Doctor never contradicts itself: following any finding's fix never produces a finding whose fix undoes it.

Each scenario is a machine state (NVIDIA wheels installed from real wheel file
lists, consumer versions, a driver or not); every finding's remedy is applied
to the state as pip or the user would, doctor runs again, and no new remedy
may remove what the first added or add back what it removed.  NVML is the
fake built from pynvml's real shapes; everything else is doctor's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import pytest
from fake_nvml import RTX_3070, FakeNVML, gpu
from helpers import WHEEL_LISTS, gathered, install
from probes import empty, healthy

from gpuboot.doctor import Finding, diagnose


@dataclass(frozen=True)
class State:
    wheels: Tuple[str, ...] = ()  # "project" or "project==9.*"
    consumers: Dict[str, str] = field(default_factory=dict)  # distribution -> version
    driver: bool = False


def _wheel_list(req: str):  # type: ignore[no-untyped-def]
    project, _, spec = req.partition("==")
    prefix = spec.rstrip("*").rstrip(".")
    found = [w for w in WHEEL_LISTS.values() if w.project == project and w.platform == "linux"
             and w.version.startswith(prefix)]
    return sorted(found, key=lambda w: w.version)[-1] if found else None


def findings(state: State, tmp: Path) -> List[Finding]:
    site = tmp / f"site-{abs(hash(state.wheels))}"
    if not site.exists():
        site.mkdir(parents=True)
        for req in state.wheels:
            w = _wheel_list(req)
            if w is not None:
                install(site, w)
    versions = dict(state.consumers)
    meta = {name: (version, []) for name, version in versions.items()}
    nvml = FakeNVML([gpu(RTX_3070, 0)] if state.driver else [])
    ctx = gathered(search_paths=[str(site)], driver=state.driver, metadata=meta, nvml=nvml, loaded=[],
                 environ={}, initial_environ={}, wsl=False, platform="linux",
                 probe=healthy() if state.driver else empty())
    return diagnose(ctx).findings


def _requirements(f: Finding) -> Tuple[Optional[str], List[str]]:
    """('install'|'uninstall', requirements) of a finding's pip step (its structured actions), else (None, [])."""
    for action in reversed(f.actions):
        if action.kind in ("pip-install", "pip-uninstall"):
            return action.kind.split("-")[1], list(action.args)
    return None, []


def _name(req: str) -> str:
    return re.split(r"[=<>!~]", req, maxsplit=1)[0].lower()


def apply(state: State, f: Finding) -> Optional[State]:
    if f.remedy and f.remedy.startswith("install the NVIDIA driver"):
        return replace(state, driver=True)
    verb, reqs = _requirements(f)
    if verb is None:
        return None
    wheels = list(state.wheels)
    consumers = dict(state.consumers)
    index = next((re.search(r"whl/(cu\d+)", o) for a in f.actions for o in a.options if "whl/" in o), None)
    for req in reqs:
        name = _name(req)
        if name in ("ctranslate2", "torch", "onnxruntime-gpu"):
            if verb == "uninstall":
                consumers.pop(name, None)
            elif name == "ctranslate2":
                consumers[name] = "4.8.5"
            else:
                pinned = req.split("==", 1)[1] if "==" in req else "2.6.0"
                consumers[name] = pinned + (f"+{index.group(1)}" if index else "")
            continue
        wheels = [w for w in wheels if _name(w) != name]
        if verb == "install":
            wheels.append(req)
    return replace(state, wheels=tuple(sorted(wheels)), consumers=consumers)


def _effects(f: Finding) -> Tuple[Set[str], Set[str]]:
    verb, reqs = _requirements(f)
    names = {_name(r) for r in reqs}
    return (names, set()) if verb == "install" else (set(), names) if verb == "uninstall" else (set(), set())


SCENARIOS: Dict[str, State] = {
    "no driver, ctranslate2, nothing installed": State((), {"ctranslate2": "4.8.5"}),
    "no driver, ctranslate2, cuBLAS + spare wheels": State(
        ("nvidia-cublas-cu12", "nvidia-cuda-runtime-cu12", "nvidia-cufft-cu12"), {"ctranslate2": "4.8.5"}),
    "driver, ctranslate2, nothing installed": State((), {"ctranslate2": "4.8.5"}, driver=True),
    "driver, ctranslate2 3.x beside CUDA 12 wheels": State(("nvidia-cublas-cu12",), {"ctranslate2": "3.24.0"},
                                                           driver=True),
    "driver, ctranslate2 4.5 without cuDNN 9": State(("nvidia-cublas-cu12", "nvidia-cudnn-cu12==8.*"),
                                                     {"ctranslate2": "4.5.0"}, driver=True),
    "driver, CPU-only torch": State((), {"torch": "2.5.1+cpu"}, driver=True),
    "no driver, CUDA 11 wheels for ctranslate2 4.8": State(("nvidia-cublas-cu11",), {"ctranslate2": "4.8.5"}),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_following_a_fix_never_leads_to_its_undoing(scenario: str, tmp_path: Path) -> None:
    start = SCENARIOS[scenario]
    first = findings(start, tmp_path)
    followed = 0
    for f in first:
        if not f.remedy or f.severity == "ok":
            continue
        after = apply(start, f)
        if after is None:
            continue
        followed += 1
        added, removed = _effects(f)
        for g in findings(after, tmp_path):
            if not g.remedy:
                continue
            again_added, again_removed = _effects(g)
            assert not (added & again_removed), (scenario, f.id, f.remedy, g.id, g.remedy)
            assert not (removed & again_added), (scenario, f.id, f.remedy, g.id, g.remedy)
            if "ctranslate2" in added:
                assert "ctranslate2" not in again_added, (scenario, g.remedy)
    assert followed >= 1, f"no remedy of {scenario!r} changed the state: {[f.remedy for f in first]}"


def test_an_old_ctranslate2_is_upgraded_first(tmp_path: Path) -> None:
    fs = findings(SCENARIOS["driver, ctranslate2 3.x beside CUDA 12 wheels"], tmp_path)
    by_id = {f.id: f for f in fs}
    assert "consumer-too-old" in by_id and by_id["consumer-too-old"].severity == "problem"
    assert by_id["consumer-too-old"].remedy is not None
    assert by_id["consumer-too-old"].remedy == "pip install --upgrade 'ctranslate2>=4.6.3'"
    assert not any(f.remedy and "cu11" in f.remedy for f in fs)


def test_without_a_driver_a_missing_library_is_not_a_problem(tmp_path: Path) -> None:
    fs = findings(SCENARIOS["no driver, ctranslate2, nothing installed"], tmp_path)
    missing = [f for f in fs if f.id == "missing-library"]
    assert missing and all(f.severity == "info" for f in missing)
    assert missing[0].remedy == "pip install nvidia-cublas-cu12"
