"""Whether a requirement conflicts with what is installed (every distribution's ``Requires-Dist``, read by
``packaging``), and the consumer change a row's ``pairings`` know when it does."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from ..machine.metadata import canonical_name as _canonical
from .table import consumer as _row

if TYPE_CHECKING:
    from ..machine.snapshot import Machine

__all__ = ["Installed", "installed_distributions", "conflicts_with_installed", "consumer_change"]

#: (name, version, Requires-Dist) of every installed distribution.
Installed = Sequence[Tuple[str, str, Sequence[str]]]


def installed_distributions(machine: Machine) -> List[Tuple[str, str, Sequence[str]]]:
    """``(name, version, Requires-Dist)`` of every distribution on ``machine`` whose metadata is valid."""
    return [(d.name, d.version, list(d.requires)) for d in machine.distributions]


def _may_meet(wanted: str, required: str) -> bool:
    """Could one version satisfy both specifier sets?  Tried on the versions
    either names (``==9.*`` also as 9.0 and 9.999)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        a, b = SpecifierSet(wanted), SpecifierSet(required)
    except InvalidSpecifier:
        return True
    if not str(a) or not str(b):
        return True
    candidates = set()
    for spec in (*a, *b):
        v = spec.version.rstrip(".*")
        candidates.update({v, f"{v}.0", f"{v}.999", f"{v}.999.999"})
    return any(a.contains(c, prereleases=True) and b.contains(c, prereleases=True) for c in candidates
               if re.fullmatch(r"[0-9]+(\.[0-9]+)*", c))


def conflicts_with_installed(requirement: str, installed: Installed) -> List[str]:
    """The installed distributions whose Requires-Dist ``requirement`` (a pip
    requirement such as ``nvidia-cudnn-cu12==9.*``) would break, as
    ``"torch 2.3.1 requires nvidia-cudnn-cu12==8.9.2.26"``; ``[]`` when none."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        want = Requirement(requirement)
    except InvalidRequirement:
        return []
    target = _canonical(want.name)
    out = []
    for name, version, requires in installed:
        if _canonical(name) == target:
            continue
        for line in requires:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if _canonical(req.name) != target or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
                continue
            if not _may_meet(str(want.specifier), str(req.specifier)):
                out.append(f"{name} {version} requires {req.name}{req.specifier}")
    return out


def consumer_change(requirement: str, consumer: str, installed: Installed) -> Optional[Tuple[str, str, str]]:
    """When ``requirement`` (a library fix for ``consumer``) conflicts with an installed pin, the consumer change
    from the consumer's row (``Consumer.pairings``) that satisfies both: ``(pip requirement, alternative,
    source)``, else ``None``."""
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    row = _row(consumer)
    want = Requirement(requirement)
    versions = {_canonical(n): v for n, v, _ in installed}
    for p in row.pairings if row is not None else ():
        if _canonical(p.library) != _canonical(want.name):
            continue
        pinned = versions.get(_canonical(p.pinned_by))
        if pinned is None or not SpecifierSet(p.pinned_spec).contains(pinned.split("+")[0], prereleases=True):
            continue
        if conflicts_with_installed(p.consumer_fix, installed):
            continue
        return p.consumer_fix, p.other_fix, p.source
    return None
