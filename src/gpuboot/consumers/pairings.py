"""Consumer versions known to work together when their library needs conflict, and the conflict checks
a remedy runs against every installed distribution's ``Requires-Dist`` (``packaging``)."""

from __future__ import annotations

import re
from typing import Any, List, Optional, Sequence, Tuple

from ..base.record import Record
from .readers import canonical as _canonical

__all__ = ["Pairing", "PAIRINGS", "SharedPairing", "SHARED_PAIRINGS", "Installed", "installed_distributions",
           "malformed_distributions", "conflicts_with_installed", "consumer_change"]


class Pairing(Record):
    """Consumer versions known to work together when their library needs conflict.

    When a library fix for ``consumer`` (``library`` at cuDNN/CUDA ``major``)
    would break ``pinned_by`` (whose version matches ``pinned_spec`` and pins
    another major), the fix is a consumer change instead: ``consumer_fix``, or
    ``other_fix`` for the other side.
    """

    library: str
    major: int
    consumer: str
    pinned_by: str
    pinned_spec: str
    consumer_fix: str
    other_fix: str
    source: str


#: torch < 2.4 pins cuDNN 8 (torch 2.3.1: ``nvidia-cudnn-cu12==8.9.2.26``);
#: ctranslate2 4.5.0-4.6.2 needs cuDNN 9; ctranslate2 4.4.0 is the last on
#: cuDNN 8 and torch 2.4 the first on cuDNN 9 (faster-whisper #1086;
#: CTranslate2 CHANGELOG 4.5.0; torch 2.4.0 Requires-Dist).
PAIRINGS: Tuple[Pairing, ...] = (
    Pairing(library="nvidia-cudnn-cu12", major=9, consumer="ctranslate2", pinned_by="torch", pinned_spec="<2.4",
            consumer_fix="ctranslate2==4.4.0", other_fix="torch>=2.4",
            source="faster-whisper #1086; CTranslate2 CHANGELOG 4.5.0 (cuDNN 9)"),
)

class SharedPairing(Record):
    """A consumer version that stops requiring a library whose soname two CUDA majors share, so it can live in one
    process with a consumer built for the other major (``process.check_process``'s ``shared-soname``).

    Attributes:
        consumer: the distribution that can move.
        library: the catalog name it stops requiring.
        requirement: the pip requirement that moves it.
        source: where the fact comes from.
    """

    consumer: str
    library: str
    requirement: str
    source: str


#: ctranslate2 4.6.3 made cuDNN optional (a pure-CUDA Conv1d): beside torch's CUDA 13 build, whose cuDNN 9 is
#: nvidia-cudnn-cu13's libcudnn.so.9, a CUDA 12 ctranslate2 then needs no libcudnn.so.9 of its own.
SHARED_PAIRINGS: Tuple[SharedPairing, ...] = (
    SharedPairing(consumer="ctranslate2", library="cudnn", requirement="ctranslate2>=4.6.3",
                  source="CTranslate2 CHANGELOG 4.6.3: cuDNN optional (pure-CUDA Conv1d)"),
)

#: (name, version, Requires-Dist) of every installed distribution.
Installed = Sequence[Tuple[str, str, Sequence[str]]]


def installed_distributions() -> List[Tuple[str, str, Sequence[str]]]:
    """``(name, version, Requires-Dist)`` of every distribution on ``sys.path``
    whose metadata is valid (``_metadata.scan_distributions``)."""
    from ..machine.metadata import scan_distributions
    from ..machine.snapshot import current

    given = current().distributions
    if given is not None:
        return list(given())
    good, _bad = scan_distributions()
    return [(d.name, d.version, list(d.requires)) for d in good]


def malformed_distributions() -> List[Any]:
    """Every distribution on ``sys.path`` whose metadata is malformed (``_metadata.Malformed``)."""
    from ..machine.metadata import scan_distributions
    from ..machine.snapshot import current

    given = current().malformed
    if given is not None:
        return list(given())
    return list(scan_distributions()[1])


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
    """When ``requirement`` (a library fix for ``consumer``) conflicts with an
    installed pin, the consumer change from ``PAIRINGS`` that satisfies both:
    ``(pip requirement, alternative, source)``, else ``None``."""
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    want = Requirement(requirement)
    versions = {_canonical(n): v for n, v, _ in installed}
    for p in PAIRINGS:
        if _canonical(p.library) != _canonical(want.name) or p.consumer != consumer:
            continue
        pinned = versions.get(_canonical(p.pinned_by))
        if pinned is None or not SpecifierSet(p.pinned_spec).contains(pinned.split("+")[0], prereleases=True):
            continue
        if conflicts_with_installed(p.consumer_fix, installed):
            continue
        return p.consumer_fix, p.other_fix, p.source
    return None
