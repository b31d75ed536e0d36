"""Resolve catalog names to found files of one CUDA major and one location (the work behind ``locate``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Tuple

from . import catalog as cat
from .platform import check_platform
from .search import Candidate, Search
from .types import Library, MissingLibrary, Resolution
from .wheels import install_command, install_requirement

if TYPE_CHECKING:
    from ..machine.snapshot import Machine

__all__ = ["resolve", "locate"]


def _expand(names: Sequence[str]) -> List[str]:
    """Names plus their dependencies, dependencies first, without repeats."""
    out: List[str] = []

    def visit(name: str, trail: Tuple[str, ...]) -> None:
        s = cat.spec(name)
        if name in out or name in trail:
            return
        for dep in s.depends:
            visit(dep, (*trail, name))
        out.append(name)

    for n in names:
        visit(n, ())
    return out


def _fits(c: Candidate, cuda_major: Optional[int], cudnn_major: Optional[int]) -> bool:
    if cuda_major is not None and cuda_major not in c.majors:
        return False
    if cudnn_major is not None and c.library.name.startswith("cudnn") and c.library.major != cudnn_major:
        return False
    return True


def resolve(machine: Machine, names: Sequence[str], *, cuda_major: Optional[int] = None,
            cudnn_major: Optional[int] = None, optional: Sequence[str] = ()) -> Resolution:
    """``names`` resolved to the files of one CUDA major on ``machine`` (see ``gpuboot.locate.resolve``)."""
    plat = check_platform(machine.platform)
    required = _expand(list(names))
    asked = [n for n in _expand(list(optional)) if n not in required]
    # What the libraries use when present (cuDNN -> nvrtc) comes along, never reported missing.
    users: Dict[str, List[str]] = {}
    for n in required + asked:
        for o in cat.spec(n).optional:
            users.setdefault(o, []).append(n)
    opt = [n for n in _expand(asked + list(users)) if n not in required]
    # A cuDNN request brings its parts (the cuDNN 9 shim dlopens them by name).
    parts: List[str] = []
    for n in required + opt:
        parts.extend(p for p in cat.spec(n).parts if p not in required + opt + parts)
    parts = _expand(parts)
    all_names = required + [n for n in opt if n not in required] + [p for p in parts if p not in required + opt]
    specs = [cat.spec(n) for n in all_names]
    cands = Search(machine).candidates(specs, cuda_major)

    chosen_cuda = cuda_major
    if chosen_cuda is None:
        chosen_cuda = _choose_major(required or all_names, cands)
    chosen_cudnn = cudnn_major
    if chosen_cudnn is None and "cudnn" in all_names:
        found = sorted({c.library.major for c in cands["cudnn"] if _fits(c, chosen_cuda, None)}, reverse=True)
        chosen_cudnn = found[0] if found else None

    fitting = {n: [c for c in cands[n] if _fits(c, chosen_cuda, chosen_cudnn)] for n in all_names}
    # Prefer one location: the root providing the most names.
    score: Dict[Path, int] = {}
    for n in all_names:
        for root in {c.library.root for c in fitting[n]}:
            score[root] = score.get(root, 0) + 1
    picked: Dict[str, Library] = {}
    for n in all_names:
        options = sorted(fitting[n], key=lambda c: (-score.get(c.library.root, 0), c.order))
        if options:
            picked[n] = options[0].library
    for used, by in users.items():  # used only by libraries that are not there: not needed
        if used not in required and used not in asked and not any(u in picked for u in by):
            picked.pop(used, None)

    missing: List[MissingLibrary] = []
    for n in required:
        if n in picked:
            continue
        others = tuple(c.library for c in cands[n])
        major = chosen_cudnn if n.startswith("cudnn") else chosen_cuda
        missing.append(MissingLibrary(name=n, cuda_major=chosen_cuda, major=major, fix=install_command(n, chosen_cuda,
                                                                                                       major, plat),
                                                                                                       other_versions=others,
                                      requirement=install_requirement(n, chosen_cuda, major)))
    ordered = [picked[n] for n in all_names if n in picked]
    return Resolution(libraries=tuple(_load_order(ordered)), missing=tuple(missing), cuda_major=chosen_cuda,
                      cudnn_major=chosen_cudnn)


def _load_order(libs: List[Library]) -> List[Library]:
    """Dependencies first; a library's parts before the library itself."""
    present = {lib.name for lib in libs}
    by_name = {lib.name: lib for lib in libs}
    out: List[Library] = []

    def visit(name: str) -> None:
        lib = by_name.get(name)
        if lib is None or lib in out:
            return
        s = cat.spec(name)
        for dep in s.depends:
            if dep in present:
                visit(dep)
        for part in s.parts:
            if part in present:
                visit(part)
        out.append(lib)

    for lib in libs:
        visit(lib.name)
    return out


def _choose_major(names: Sequence[str], cands: Mapping[str, List[Candidate]]) -> Optional[int]:
    best: Optional[Tuple[int, int, int]] = None
    best_major: Optional[int] = None
    for major in cat.CUDA_MAJORS:
        covered = 0
        first = 1 << 30
        for n in names:
            fits = [c.order for c in cands.get(n, []) if major in c.majors]
            if fits:
                covered += 1
                first = min(first, min(fits))
        if covered == 0:
            continue
        key = (covered, -first, major)
        if best is None or key > best:
            best, best_major = key, major
    return best_major


def locate(machine: Machine, names: Optional[Sequence[str]] = None, *, cuda_major: Optional[int] = None,
           cudnn_major: Optional[int] = None) -> List[Library]:
    """The files of ``names`` on ``machine``, load order; with ``names=None`` every catalog library found at every
    version, search order (see ``gpuboot.locate.locate``)."""
    if names is not None:
        return list(resolve(machine, names, cuda_major=cuda_major, cudnn_major=cudnn_major).libraries)
    specs = [cat.spec(n) for n in cat.WHEEL_LIBRARIES]
    cands = Search(machine).candidates(specs)
    found = [c for n in cat.WHEEL_LIBRARIES for c in cands[n]
             if cuda_major is None or cuda_major in c.majors]
    return [c.library for c in sorted(found, key=lambda c: c.order)]
