"""``--fix``'s plan: a report's problems as environment steps (run) and host steps (explained), and the
refusals -- another environment, root in the system interpreter, PEP 668 -- and whether pip can check an
install before it runs (see ``remedy.py`` for how the plan is applied)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from typing import List, Optional, Sequence, Tuple

from ..base.quote import command_line
from ..base.record import Record
from .actions import Action
from .report import Report

__all__ = ["Step", "plan_fix", "environment_refusal", "other_interpreter", "pip_can_check", "PIP_REPORT"]

#: pip's ``install --dry-run --report``: pip 22.2 (pip's changelog, 22.2: "--dry-run", "--report").
PIP_REPORT = "22.2"


class Step(Record):
    """One command of the plan.

    Attributes:
        finding: the finding id it fixes.
        kind: ``"pip"`` (run), ``"remove"`` (a link inside this environment,
            removed) or ``"host"`` (explained, never run).
        display: the command as it runs, quoted for this platform's shell
            (``shlex.join``/``subprocess.list2cmdline``), or a host step's text.
        argv: what is run (``(sys.executable, "-I", "-m", "pip", ...)``); ``()`` for host steps.
        unchecked: why pip's resolver could not check this ``pip install``
            before it runs (pip older than 22.2), else ``None``.
    """

    finding: str
    kind: str
    display: str
    argv: Tuple[str, ...] = ()
    unchecked: Optional[str] = None


def _inside(path: str, prefix: str) -> bool:
    """``path`` (a link: its directory resolved, the link itself not followed) is inside ``prefix`` (resolved)."""
    where = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    root = os.path.realpath(prefix)
    try:
        return os.path.commonpath([where, root]) == root
    except ValueError:
        return False


def _platform() -> str:
    return "win32" if sys.platform == "win32" else "linux"


def _steps(fid: str, actions: Sequence[Action], python: str, prefix: str, pip_args: Sequence[str]
           ) -> Optional[List[Step]]:
    """The environment steps of one finding's actions, or ``None`` when any of them is not one."""
    steps: List[Step] = []
    for action in actions:
        words = action.words()
        if action.kind in ("pip-install", "pip-uninstall"):
            extra = list(pip_args) if action.kind == "pip-install" else []
            argv = (python, "-I", "-m", *words, *extra)
            steps.append(Step(finding=fid, kind="pip", display=command_line(argv, _platform()), argv=argv))
        elif action.kind == "remove-link" and os.path.islink(action.args[0]) and _inside(action.args[0], prefix):
            steps.append(Step(finding=fid, kind="remove", display=command_line(words, _platform()), argv=words))
        else:
            return None
    return steps


def plan_fix(report: Report, *, python: str = sys.executable, prefix: str = sys.prefix,
             pip_args: Sequence[str] = ()) -> Tuple[List[Step], List[Step]]:
    """``(environment steps, host steps)`` for the report's problems, in order, each once.

    A finding counts as an environment fix when every step of its remedy
    (``Finding.actions``) is a ``pip install``/``pip uninstall`` or the removal
    of a symbolic link inside ``prefix``; anything else -- and a remedy given
    only as text -- makes it a host step (explained, never run).
    """
    env_steps: List[Step] = []
    host_steps: List[Step] = []
    seen: set[object] = set()
    for f in report.findings:
        if f.severity != "problem" or not f.remedy:
            continue
        steps = _steps(f.id, f.actions, python, prefix, pip_args) if f.actions else None
        if not steps:
            if f.remedy not in seen:
                seen.add(f.remedy)
                host_steps.append(Step(finding=f.id, kind="host", display=f.remedy))
            continue
        for step in steps:
            if step.argv not in seen:
                seen.add(step.argv)
                env_steps.append(step)
    # Hand-made links go first: a wheel installed afterwards may put its real
    # file at the same path (nvidia-cublas-cu12 over a libcublas.so.12 link).
    env_steps.sort(key=lambda st: st.kind != "remove")
    return env_steps, host_steps


def pip_can_check(python: str = sys.executable) -> Optional[str]:
    """``None`` when ``python``'s pip has ``install --dry-run --report`` (pip >= 22.2), else why not."""
    from packaging.version import InvalidVersion, Version

    try:
        proc = subprocess.run([python, "-I", "-m", "pip", "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"pip could not be asked its version ({exc})"
    words = (proc.stdout or "").split()
    try:
        version = Version(words[1]) if proc.returncode == 0 and len(words) > 1 and words[0] == "pip" else None
    except InvalidVersion:
        version = None
    if version is None:
        return "pip did not say its version"
    if version < Version(PIP_REPORT):
        upgrade = command_line((python, "-m", "pip", "install", "--upgrade", "pip"), _platform())
        return (f"pip {version} cannot check an install against the installed packages first (pip >= "
                f"{PIP_REPORT} has --dry-run --report): upgrade it with `{upgrade}`")
    return None


def other_interpreter(python: str) -> Optional[str]:
    """Why ``fix(python=...)`` refuses ``python``: ``None`` when it is this
    process's interpreter environment (same ``sys.prefix``), else the command
    to run instead.  ``fix`` changes the environment it diagnosed; another
    interpreter must diagnose its own."""
    if python == sys.executable:
        return None
    try:
        proc = subprocess.run([python, "-I", "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True,
                              timeout=60)
        other = proc.stdout.strip() if proc.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        other = None
    if other is not None and os.path.realpath(other) == os.path.realpath(sys.prefix):
        return None
    run = command_line((python, "-m", "gpuboot", "doctor", "--fix"), _platform())
    return (f"{python} is another environment ({other or 'it did not answer'}), and this report describes "
            f"{sys.prefix}: run `{run}` so that it diagnoses and changes its own")


def environment_refusal(*, prefix: str = sys.prefix, base_prefix: str = sys.base_prefix,
                        euid: Optional[int] = None, stdlib: Optional[str] = None) -> Optional[str]:
    """Why this environment must not be changed, or ``None``.

    The system interpreter as root (a ``pip install`` there changes what the
    operating system's own tools import) and an externally managed
    environment (PEP 668: ``EXTERNALLY-MANAGED`` beside the standard library,
    outside a virtual environment) are refused, with what to run instead.
    """
    uid = (os.geteuid() if hasattr(os, "geteuid") else -1) if euid is None else euid
    in_venv = os.path.realpath(prefix) != os.path.realpath(base_prefix)
    instead = (f"create a virtual environment and run gpuboot from it: `{sys.executable} -m venv ~/.venvs/app && "
               "~/.venvs/app/bin/pip install gpuboot && ~/.venvs/app/bin/gpuboot doctor --fix`")
    marker = os.path.join(stdlib or sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
    if not in_venv and os.path.exists(marker):
        return (f"this interpreter's environment is externally managed (PEP 668: {marker}): its packages belong to "
                f"the system package manager; {instead}")
    if not in_venv and uid == 0:
        return f"running as root in the system interpreter ({prefix}): a pip install here changes the system; {instead}"
    return None
