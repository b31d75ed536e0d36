"""A finding's remedy as structured steps: argv words and the kind of change, never text to be re-parsed.

Every name and version that reaches a step was validated when the step was
made (``packaging``: ``Requirement``, ``Version``, ``canonicalize_name``), and
a step is shown to people only after it is built, quoted for the shell of the
platform (``shlex.join`` for POSIX shells, ``subprocess.list2cmdline`` for
``cmd.exe``).  ``--fix`` runs ``pip-install``, ``pip-uninstall`` and
``remove-link`` steps in its own environment and explains ``host`` steps.

The PyTorch CUDA indexes, and the torch versions each serves, come from
PyTorch's "Previous PyTorch Versions" page (pytorch.org/get-started/previous-versions):
the ``--index-url`` of a torch reinstall is one of these, chosen by the torch
version and the driver's CUDA version, never taken from metadata.
"""

from __future__ import annotations

import os
from typing import Literal, Optional, Sequence, Tuple

from ..base.quote import command_line
from ..base.record import Record

__all__ = ["ActionKind", "Action", "pip_install", "pip_uninstall", "remove_link", "host", "command_line",
           "remedy_text", "TORCH_INDEXES", "torch_index", "index_cuda", "InvalidAction"]

#: What a step changes: pip in this environment, a link inside it, or something only a person can do.
ActionKind = Literal["pip-install", "pip-uninstall", "remove-link", "host"]

#: PyTorch's CUDA wheel indexes: (tag, CUDA version, torch versions it serves as a PEP 440 specifier).
TORCH_INDEXES: Tuple[Tuple[str, Tuple[int, int], str], ...] = (
    ("cu117", (11, 7), ">=1.13,<2.1"),
    ("cu118", (11, 8), ">=2.0,<2.8"),
    ("cu121", (12, 1), ">=2.1,<2.6"),
    ("cu124", (12, 4), ">=2.4,<2.7"),
    ("cu126", (12, 6), ">=2.6,<2.10"),
    ("cu128", (12, 8), ">=2.7"),
    ("cu129", (12, 9), ">=2.8,<2.9"),
    ("cu130", (13, 0), ">=2.9"),
)
_TORCH_INDEX_URL = "https://download.pytorch.org/whl/{tag}"
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


def pip_install(*requirements: str, upgrade: bool = False, force_reinstall: bool = False, no_deps: bool = False,
                torch_index: Optional[str] = None) -> Action:
    """``pip install`` of ``requirements`` (each a name and version specifier, checked by ``packaging``).

    Raises:
        InvalidAction: a requirement that does not parse, or carries a URL,
            marker or extras; an unknown PyTorch index tag.
    """
    if not requirements:
        raise InvalidAction("pip install of nothing")
    options = [o for o, on in (("--upgrade", upgrade), ("--force-reinstall", force_reinstall),
                               ("--no-deps", no_deps)) if on]
    if torch_index is not None:
        if torch_index not in {tag for tag, _, _ in TORCH_INDEXES}:
            raise InvalidAction(f"unknown PyTorch index {torch_index!r}")
        options += ["--index-url", _TORCH_INDEX_URL.format(tag=torch_index)]
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


def torch_index(torch_version: str, driver_cuda: Optional[Tuple[int, int]]) -> Tuple[Optional[str], str]:
    """Where a CUDA build of ``torch_version`` comes from, given the CUDA
    version the driver supports (``driver_cuda``; ``None``: unknown).

    Returns:
        ``(tag, "reinstall")``: the newest index (``TORCH_INDEXES``) that serves
        this version and that the driver runs; ``(tag, "upgrade-driver")``:
        indexes serve it, but all need a newer driver (``tag`` the one needing
        the oldest CUDA); ``(tag, "upgrade-torch")``: no index serves this
        (old) version, ``tag`` is the newest the driver runs; ``(None,
        "none")``: no index fits the driver, or the version is not one.
    """
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        version = Version(Version(torch_version).public)
    except InvalidVersion:
        return None, "none"
    serving = [(tag, cuda) for tag, cuda, spec in TORCH_INDEXES
               if SpecifierSet(spec).contains(version, prereleases=True)]
    fits = [tag for tag, cuda, _spec in TORCH_INDEXES if driver_cuda is None or cuda <= driver_cuda]
    fitting = [tag for tag, _cuda in serving if tag in fits]
    if fitting:
        return fitting[-1], "reinstall"
    if serving:
        return min(serving, key=lambda item: item[1])[0], "upgrade-driver"
    oldest = min(Version(spec.split(",")[0].lstrip(">=")) for _tag, _cuda, spec in TORCH_INDEXES)
    if fits and version < oldest:
        return fits[-1], "upgrade-torch"
    return None, "none"


def index_cuda(tag: str) -> Tuple[int, int]:
    """The CUDA version of a PyTorch index tag in ``TORCH_INDEXES``."""
    return next(cuda for t, cuda, _spec in TORCH_INDEXES if t == tag)
