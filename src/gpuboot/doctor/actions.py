"""A finding's remedy as structured steps: argv words and the kind of change, never text to be re-parsed.

Every name and version that reaches a step was validated when the step was
made (``packaging``: ``Requirement``, ``Version``, ``canonicalize_name``), and
a step is shown to people only after it is built, quoted for the shell of the
platform (``shlex.join`` for POSIX shells, ``subprocess.list2cmdline`` for
``cmd.exe``).  ``--fix`` runs ``pip-install``, ``pip-uninstall`` and
``remove-link`` steps in its own environment and explains ``host`` steps.

A reinstall's ``--index-url`` is one of a consumer row's wheel indexes (``Consumer.indexes``: PyTorch's CUDA
indexes and the versions each serves), chosen by the installed version and the driver's CUDA version
(``index_for``), never taken from metadata.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal, Optional, Sequence, Set, Tuple

from ..base.quote import command_line
from ..base.record import Record

if TYPE_CHECKING:
    from ..consumers.types import Consumer

__all__ = ["ActionKind", "Action", "pip_install", "pip_uninstall", "remove_link", "host", "command_line",
           "remedy_text", "index_for", "InvalidAction"]

#: What a step changes: pip in this environment, a link inside it, or something only a person can do.
ActionKind = Literal["pip-install", "pip-uninstall", "remove-link", "host"]

_PIP_OPTIONS = {"--upgrade", "--force-reinstall", "--no-deps"}


class InvalidAction(ValueError):
    """A step was asked for with a name, version or path that does not validate."""


class Action(Record):
    """One step of a remedy.

    Attributes:
        kind: ``"pip-install"``, ``"pip-uninstall"``, ``"remove-link"`` or ``"host"``.
        args: validated words: requirements (``pip-install``), canonical
            distribution names (``pip-uninstall``), one absolute path
            (``remove-link``); ``()`` for ``host``.
        options: pip options from a fixed set (``--upgrade``,
            ``--force-reinstall``, ``--no-deps``, ``--index-url`` and a PyTorch index URL).
        text: the instruction of a ``host`` step.
    """

    kind: ActionKind
    args: Tuple[str, ...] = ()
    options: Tuple[str, ...] = ()
    text: str = ""

    def words(self) -> Tuple[str, ...]:
        """The command as argv words, without the interpreter (``("pip", "install", ...)``); ``()`` for a host step."""
        if self.kind == "pip-install":
            return ("pip", "install", *self.options, *self.args)
        if self.kind == "pip-uninstall":
            return ("pip", "uninstall", "-y", *self.args)
        if self.kind == "remove-link":
            return ("rm", *self.args)
        return ()

    def to_dict(self) -> dict:  # type: ignore[type-arg]
        """JSON-able (``doctor --json``'s ``findings[].actions``)."""
        return {"kind": self.kind, "argv": list(self.words()), "text": self.text or None}


def _requirement(text: str) -> str:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise InvalidAction(f"not a requirement: {text!r} ({exc})") from None
    if req.url or req.marker is not None or req.extras:
        raise InvalidAction(f"only a name and a version specifier may be installed, not {text!r}")
    from packaging.utils import canonicalize_name

    return f"{canonicalize_name(req.name)}{req.specifier}"


def _known_indexes() -> Set[str]:
    from ..consumers.table import CONSUMER_TABLE

    return {row.index_url.format(tag=i.tag) for row in CONSUMER_TABLE for i in row.indexes}


def pip_install(*requirements: str, upgrade: bool = False, force_reinstall: bool = False, no_deps: bool = False,
                index_url: Optional[str] = None) -> Action:
    """``pip install`` of ``requirements`` (each a name and version specifier, checked by ``packaging``), from
    ``index_url`` when given: one of a consumer row's wheel indexes (``Consumer.index_of``).

    Raises:
        InvalidAction: a requirement that does not parse, or carries a URL,
            marker or extras; an index no row names.
    """
    if not requirements:
        raise InvalidAction("pip install of nothing")
    options = [o for o, on in (("--upgrade", upgrade), ("--force-reinstall", force_reinstall),
                               ("--no-deps", no_deps)) if on]
    if index_url is not None:
        if index_url not in _known_indexes():
            raise InvalidAction(f"not an index of a consumer gpuboot knows: {index_url!r}")
        options += ["--index-url", index_url]
    return Action(kind="pip-install", args=tuple(_requirement(r) for r in requirements), options=tuple(options))


def pip_uninstall(*names: str) -> Action:
    """``pip uninstall -y`` of distributions (each a valid name, canonicalised).

    Raises:
        InvalidAction: an empty list or a name that is not a distribution name.
    """
    from ..machine.metadata import valid_name

    if not names:
        raise InvalidAction("pip uninstall of nothing")
    out = []
    for name in names:
        canonical = valid_name(name)
        if canonical is None:
            raise InvalidAction(f"not a distribution name: {name!r}")
        out.append(canonical)
    return Action(kind="pip-uninstall", args=tuple(out))


def remove_link(path: str) -> Action:
    """Remove the symbolic link ``path`` (absolute).

    Raises:
        InvalidAction: a relative path.
    """
    if not os.path.isabs(path):
        raise InvalidAction(f"not an absolute path: {path!r}")
    return Action(kind="remove-link", args=(os.path.normpath(path),))


def host(text: str) -> Action:
    """A step only a person (or an administrator) can take: explained, never run."""
    return Action(kind="host", text=text)


def remedy_text(actions: Sequence[Action], platform: str) -> str:
    """What a person reads: each step's command quoted for ``platform``'s shell, joined by ``&&``."""
    return " && ".join(a.text if a.kind == "host" else command_line(a.words(), platform) for a in actions)


def index_for(row: Consumer, version: str, driver_cuda: Optional[Tuple[int, int]]) -> Tuple[Optional[str], str]:
    """Where a CUDA build of consumer ``row`` at ``version`` comes from, given the CUDA version the driver
    supports (``driver_cuda``; ``None``: unknown), among its indexes (``Consumer.indexes``).

    Returns:
        ``(tag, "reinstall")``: the newest index that serves this version and that the driver runs;
        ``(tag, "upgrade-driver")``: indexes serve it, but all need a newer driver (``tag`` the one needing
        the oldest CUDA); ``(tag, "upgrade")``: no index serves this (old) version, ``tag`` is the newest the
        driver runs; ``(None, "none")``: no index fits the driver, or the version is not one.
    """
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        v = Version(Version(version).public)
    except InvalidVersion:
        return None, "none"
    serving = [i for i in row.indexes if SpecifierSet(i.serves).contains(v, prereleases=True)]
    fits = [i.tag for i in row.indexes if driver_cuda is None or i.cuda <= driver_cuda]
    fitting = [i.tag for i in serving if i.tag in fits]
    if fitting:
        return fitting[-1], "reinstall"
    if serving:
        return min(serving, key=lambda i: i.cuda).tag, "upgrade-driver"
    if not row.indexes:
        return None, "none"
    oldest = min(Version(i.serves.split(",")[0].lstrip(">=")) for i in row.indexes)
    if fits and v < oldest:
        return fits[-1], "upgrade"
    return None, "none"
