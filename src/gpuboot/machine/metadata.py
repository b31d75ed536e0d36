"""Installed distributions, read as data and validated: a name, version or requirement that ``packaging`` rejects
is reported as malformed, never used.

The metadata on ``sys.path`` is text anyone could have written -- a
``torch-2.3.1.dist-info`` in a cloned repository is on ``sys.path`` when an
app runs from there (``python -m app``, ``python app.py``).  So every value
read here is checked before it can reach a command, a rule or a report:
``Name`` against PEP 508's name grammar (``canonicalize_name``), ``Version``
as a PEP 440 ``Version``, each ``Requires-Dist`` as a ``Requirement``.
METADATA that is missing, a directory or not UTF-8 is malformed too
(``importlib.metadata`` raises ``UnicodeDecodeError`` on the latter, and
answers ``None`` -- with a DeprecationWarning from 3.12 -- for a missing
``Version``).
"""

from __future__ import annotations

import os
import re
from typing import Iterable, List, Optional, Tuple, Union

from ..base import canonical_name
from ..base.record import Record

__all__ = ["Distribution", "Malformed", "canonical_name", "valid_name", "read_distribution", "scan_distributions"]

#: PEP 508 / core metadata: a distribution name.
_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


class Distribution(Record):
    """One installed distribution whose metadata is valid.

    Attributes:
        name: the canonical name (``canonicalize_name``: ``nvidia-cublas-cu12``).
        version: the version as written (a valid PEP 440 version).
        requires: every ``Requires-Dist``, each a valid PEP 508 requirement.
        path: the ``.dist-info`` directory, or ``None`` when the finder gives none.
    """

    name: str
    version: str
    requires: Tuple[str, ...] = ()
    path: Optional[str] = None


class Malformed(Record):
    """An installed distribution whose metadata cannot be trusted.

    Attributes:
        name: what it is called: its valid ``Name``, else the ``.dist-info``
            directory's name (``repr``-escaped when it is not printable ASCII).
        path: the ``.dist-info`` (or ``.egg-info``) directory, when known.
        why: what is wrong (``"no Version"``, ``"METADATA is not UTF-8"``, ...).
    """

    name: str
    path: Optional[str]
    why: str


def valid_name(name: object) -> Optional[str]:
    """``name``'s canonical form when it is a valid distribution name, else ``None``."""
    if not isinstance(name, str) or not _NAME.match(name):
        return None
    return canonical_name(name)


def _shown(text: str) -> str:
    """Text from metadata made safe to print on one line."""
    return text if text.isascii() and text.isprintable() else ascii(text)[1:-1]


def _check(dist: object) -> Union[Distribution, Malformed]:
    from email import message_from_string

    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion, Version

    path = getattr(dist, "_path", None)
    where = os.fspath(path) if path is not None else None
    folder = os.path.basename(where) if where else "?"
    guess = _shown(re.sub(r"\.(dist|egg)-info$", "", folder).split("-")[0]) or "?"
    text: Optional[str] = None
    try:
        for filename in ("METADATA", "PKG-INFO"):
            text = dist.read_text(filename)  # type: ignore[attr-defined]
            if text is not None:
                break
    except UnicodeDecodeError:
        return Malformed(name=guess, path=where, why="METADATA is not UTF-8")
    except (OSError, ValueError) as exc:
        return Malformed(name=guess, path=where, why=f"METADATA cannot be read ({type(exc).__name__})")
    if text is None:
        return Malformed(name=guess, path=where, why="no readable METADATA file (missing, or not a file)")
    msg = message_from_string(text)
    raw_name, raw_version = msg.get("Name"), msg.get("Version")
    name = valid_name(raw_name.strip() if isinstance(raw_name, str) else raw_name)
    if name is None:
        return Malformed(name=guess, path=where,
                         why="no Name" if raw_name is None else f"invalid Name {_shown(str(raw_name))!r}")
    if raw_version is None:
        return Malformed(name=name, path=where, why="no Version")
    version = str(raw_version).strip()
    try:
        Version(version)
    except InvalidVersion:
        return Malformed(name=name, path=where, why=f"invalid Version {_shown(version)!r}")
    requires = []
    for line in msg.get_all("Requires-Dist") or []:
        try:
            requires.append(str(Requirement(str(line))))
        except InvalidRequirement:
            return Malformed(name=name, path=where, why=f"invalid Requires-Dist {_shown(str(line))!r}")
    return Distribution(name=name, version=version, requires=tuple(requires), path=where)


def read_distribution(name: str, path: Optional[List[str]] = None) -> Tuple[Optional[Distribution], List[Malformed]]:
    """The first valid installed distribution called ``name`` on ``path``
    (default ``sys.path``), and the malformed ones found before it.

    Returns:
        ``(distribution or None, malformed)``; never raises for what the
        metadata says.
    """
    from importlib import metadata

    bad: List[Malformed] = []
    wanted = valid_name(name)
    if wanted is None:
        return None, bad
    try:
        found: Iterable[object] = list(metadata.distributions(name=name, path=path) if path else
                                       metadata.distributions(name=name))
    except Exception as exc:  # a finder on sys.path that fails: not a distribution gpuboot can read
        return None, [Malformed(name=wanted, path=None,
                                why=f"the metadata finders failed: {type(exc).__name__}: {exc}")]
    for dist in found:
        checked = _check(dist)
        if isinstance(checked, Distribution):
            return checked, bad
        bad.append(checked._replace(name=wanted) if checked.name in ("?", "") else checked)
    return None, bad


def scan_distributions(path: Optional[List[str]] = None) -> Tuple[List[Distribution], List[Malformed]]:
    """Every distribution on ``path`` (default ``sys.path``): ``(valid, malformed)``."""
    from importlib import metadata

    good: List[Distribution] = []
    bad: List[Malformed] = []
    try:
        found = list(metadata.distributions(path=path) if path else metadata.distributions())
    except Exception as exc:
        return good, [Malformed(name="?", path=None, why=f"the metadata finders failed: {type(exc).__name__}: {exc}")]
    for dist in found:
        checked = _check(dist)
        (good if isinstance(checked, Distribution) else bad).append(checked)  # type: ignore[arg-type]
    return good, bad
