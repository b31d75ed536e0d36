"""``gpuboot.fix()`` and ``gpuboot doctor --fix``: apply the environment fixes doctor names, then prove them.

A finding is applied only when every step of its remedy (``Finding.actions``:
argv words and the kind of change, built from validated names and versions,
never text re-parsed) changes this environment and its effect can be checked:
``pip install``/``pip uninstall`` and the removal of a hand-made library link
inside this environment (``realpath`` containment).  Anything else -- load a
kernel module, reboot, ``--gpus all``, an environment variable -- is
explained, never run.

pip runs as ``<this interpreter> -I -m pip``: isolated mode puts neither the
current directory nor ``PYTHONPATH`` on its ``sys.path``, so a ``pip.py`` or
``pip/`` in the directory the user runs from is never executed.  Before a
``pip install`` runs, its requirements are checked against every installed
distribution's ``Requires-Dist`` and against pip's own resolver (``pip
install --dry-run --report``, pip >= 22.2): a command that would break
another installed package is not run.  Where pip is too old for that check,
the plan says so and the step runs only when confirmed for that reason
(``allow_unchecked``).  After the commands, every check runs again and the
findings before and after are compared; a fix whose finding is still there
is reported, never applied again.

It changes only the environment it runs in (``fix(python=OTHER)`` refuses and
names the command to run with that interpreter), never the system
interpreter as root, nor an environment marked externally managed (PEP 668).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tempfile
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .._record import Record
from ..consumers import conflicts_with_installed, installed_distributions
from .actions import Action, command_line
from .report import Report

__all__ = ["Step", "Applied", "FixResult", "plan_fix", "fix", "environment_refusal", "other_interpreter",
           "pip_can_check", "PIP_REPORT"]

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

    __slots__ = ("finding", "kind", "display", "argv", "unchecked")
    finding: str
    kind: str
    display: str
    argv: Tuple[str, ...]
    unchecked: Optional[str]

    def __init__(self, finding: str, kind: str, display: str, argv: Tuple[str, ...] = (),
                 unchecked: Optional[str] = None) -> None:
        self._set(finding=finding, kind=kind, display=display, argv=argv, unchecked=unchecked)


class Applied(Record):
    """A step that ran: its exit code and the last lines of its output."""

    __slots__ = ("step", "exit_code", "output_tail")
    step: Step
    exit_code: int
    output_tail: str

    def __init__(self, step: Step, exit_code: int, output_tail: str) -> None:
        self._set(step=step, exit_code=exit_code, output_tail=output_tail)


class FixResult(Record):
    """What ``fix()`` planned and did.

    Attributes:
        plan: the environment steps, in order.
        explained: host-level steps, never run.
        refused: why nothing was applied (root in the system interpreter, PEP
            668, no confirmation, a conflict), else ``None``.
        skipped: ``(step display, why)`` for steps not run (a conflict found
            by pip's resolver, an earlier step that failed).
        applied: the steps that ran.
        before, after: doctor's reports before and after (``after`` is
            ``None`` when nothing ran).
        still_broken: finding ids a step was meant to fix that are still there.
    """

    #: Not hashable: its reports hold the mutable ``Context`` the checks read.
    __hash__ = None  # type: ignore[assignment]
    __slots__ = ("plan", "explained", "refused", "skipped", "applied", "before", "after", "still_broken")
    plan: Tuple[Step, ...]
    explained: Tuple[Step, ...]
    refused: Optional[str]
    skipped: Tuple[Tuple[str, str], ...]
    applied: Tuple[Applied, ...]
    before: Report
    after: Optional[Report]
    still_broken: Tuple[str, ...]

    def __init__(self, plan: Tuple[Step, ...], explained: Tuple[Step, ...], refused: Optional[str],
                 skipped: Tuple[Tuple[str, str], ...], applied: Tuple[Applied, ...], before: Report,
                 after: Optional[Report], still_broken: Tuple[str, ...] = ()) -> None:
        self._set(plan=plan, explained=explained, refused=refused, skipped=skipped, applied=applied, before=before,
                  after=after, still_broken=still_broken)

    @property
    def exit_code(self) -> int:
        """0 only when no problem remains (after the fixes, or before when nothing ran)."""
        report = self.after if self.after is not None else self.before
        return report.exit_code

    def to_dict(self) -> Dict[str, Any]:
        """JSON-able: plan, applied commands with exit codes and output tails, findings before and after."""
        def steps(items: Sequence[Step]) -> List[Dict[str, Any]]:
            return [{"finding": s.finding, "kind": s.kind, "command": s.display, "argv": list(s.argv),
                     "unchecked": s.unchecked} for s in items]

        return {
            "interpreter": sys.executable, "environment": sys.prefix,
            "plan": steps(self.plan), "explained": steps(self.explained), "refused": self.refused,
            "skipped": [{"command": c, "why": w} for c, w in self.skipped],
            "applied": [{"command": a.step.display, "argv": list(a.step.argv), "exit_code": a.exit_code,
                         "output_tail": a.output_tail} for a in self.applied],
            "still_broken": list(self.still_broken),
            "before": self.before.to_dict(), "after": self.after.to_dict() if self.after is not None else None,
            "exit_code": self.exit_code,
        }


# --------------------------------------------------------------------------- planning


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
            steps.append(Step(fid, "pip", command_line(argv, _platform()), argv))
        elif action.kind == "remove-link" and os.path.islink(action.args[0]) and _inside(action.args[0], prefix):
            steps.append(Step(fid, "remove", command_line(words, _platform()), words))
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
                host_steps.append(Step(f.id, "host", f.remedy))
            continue
        for step in steps:
            if step.argv not in seen:
                seen.add(step.argv)
                env_steps.append(step)
    # Hand-made links go first: a wheel installed afterwards may put its real
    # file at the same path (nvidia-cublas-cu12 over a libcublas.so.12 link).
    env_steps.sort(key=lambda st: st.kind != "remove")
    return env_steps, host_steps


def pip_can_check(python: str = sys.executable, runner: Callable[..., Any] = subprocess.run) -> Optional[str]:
    """``None`` when ``python``'s pip has ``install --dry-run --report`` (pip >= 22.2), else why not."""
    from packaging.version import InvalidVersion, Version

    try:
        proc = runner([python, "-I", "-m", "pip", "--version"], capture_output=True, text=True, timeout=60)
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


def other_interpreter(python: str, runner: Callable[..., Any] = subprocess.run) -> Optional[str]:
    """Why ``fix(python=...)`` refuses ``python``: ``None`` when it is this
    process's interpreter environment (same ``sys.prefix``), else the command
    to run instead.  ``fix`` changes the environment it diagnosed; another
    interpreter must diagnose its own."""
    if python == sys.executable:
        return None
    try:
        proc = runner([python, "-I", "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True,
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


# --------------------------------------------------------------------------- applying


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _resolver_conflicts(step: Step, runner: Callable[..., Any]) -> List[str]:
    """pip's own resolver, asked what ``step`` would install (``--dry-run --report``),
    checked against every installed distribution's requirements."""
    if step.kind != "pip" or step.argv[4:5] != ("install",):
        return []
    with tempfile.TemporaryDirectory() as tmp:
        report_path = os.path.join(tmp, "report.json")
        proc = runner([*step.argv[:5], "--dry-run", "--quiet", "--report", report_path, *step.argv[5:]],
                      capture_output=True, text=True)
        if proc.returncode != 0:
            return []  # the real run will fail and report pip's own words
        try:
            with open(report_path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return []
    new = []
    for item in data.get("install", []) if isinstance(data, dict) else []:
        meta = item.get("metadata", {}) if isinstance(item, dict) else {}
        name, version = meta.get("name"), meta.get("version")
        if isinstance(name, str) and isinstance(version, str):
            new.append((name, version))
    names = {n.lower() for n, _ in new}
    installed = [d for d in installed_distributions() if d[0].lower() not in names]
    out: List[str] = []
    for name, version in new:
        out.extend(conflicts_with_installed(f"{name}=={version}", installed))
    return out


def fix(report: Optional[Report] = None, *, apply: bool = False, pip_args: Sequence[str] = (),
        diagnose: Optional[Callable[[], Report]] = None, runner: Callable[..., Any] = subprocess.run,
        python: str = sys.executable, refusal: Optional[str] = "check", allow_unchecked: bool = False) -> FixResult:
    """Plan, and with ``apply=True`` apply, the environment fixes of ``report``, then check again.

    Args:
        report: doctor's report of this environment (default: ``diagnose()`` now).
        apply: run the environment steps; ``False`` only plans.
        pip_args: extra ``pip install`` options (``--find-links DIR``,
            ``--index-url URL``, ``--no-index``), passed to pip as given.
        diagnose: how to diagnose again afterwards (default ``doctor.diagnose``).
        runner: ``subprocess.run`` (tests may record the calls).
        python: the interpreter whose environment is changed: this one
            (``sys.executable``, or another path to the same environment);
            another environment is refused (``other_interpreter``).
        refusal: ``"check"`` applies ``environment_refusal()``; a string
            refuses with it; ``None`` skips the check (tests).
        allow_unchecked: run a ``pip install`` that pip's resolver cannot
            check first (pip older than 22.2); otherwise it is skipped with
            the reason and the pip upgrade that enables the check.

    Returns:
        A ``FixResult``.  Never raises for a failing command: pip's exit code and
        last lines are in ``applied``, and the environment is as pip left it.
    """
    from .diagnosis import diagnose as _diagnose

    again = diagnose or _diagnose
    before = report if report is not None else again()
    env_steps, host_steps = plan_fix(before, python=python, pip_args=pip_args)
    why = other_interpreter(python, runner) if env_steps else None
    if why is None:
        why = environment_refusal() if refusal == "check" else refusal
    if env_steps and why is None and any(st.kind == "pip" and st.argv[4:5] == ("install",) for st in env_steps):
        unchecked = pip_can_check(python, runner)
        if unchecked:
            env_steps = [st._replace(unchecked=unchecked) if st.kind == "pip" and st.argv[4:5] == ("install",)
                         else st for st in env_steps]
    if not apply or not env_steps or why:
        return FixResult(tuple(env_steps), tuple(host_steps), why if env_steps else None, (), (), before, None)
    applied: List[Applied] = []
    skipped: List[Tuple[str, str]] = []
    failed = False
    for step in env_steps:
        if failed:
            skipped.append((step.display, "not run: an earlier command failed"))
            continue
        if step.unchecked and not allow_unchecked:
            skipped.append((step.display, f"not run without confirmation: {step.unchecked}"))
            continue
        broken = [] if step.unchecked else _resolver_conflicts(step, runner)
        if broken:
            skipped.append((step.display, "not run: pip would install versions that break " + "; ".join(broken)))
            continue
        if step.kind == "remove":
            if not os.path.islink(step.argv[1]):
                skipped.append((step.display, "not run: no longer a link"))
                continue
            try:
                os.unlink(step.argv[1])
                applied.append(Applied(step, 0, f"removed {step.argv[1]}"))
            except OSError as exc:
                applied.append(Applied(step, 1, str(exc)))
                failed = True
            continue
        proc = runner(list(step.argv), capture_output=True, text=True)
        applied.append(Applied(step, proc.returncode, _tail((proc.stdout or "") + (proc.stderr or ""))))
        failed = proc.returncode != 0
    _forget_caches()
    after = again()
    fixed_ids = {a.step.finding for a in applied if a.exit_code == 0}
    still = tuple(sorted(fixed_ids & {f.id for f in after.problems}))
    return FixResult(tuple(env_steps), tuple(host_steps), None, tuple(skipped), tuple(applied), before, after, still)


def _forget_caches() -> None:
    """What this process remembers of the environment: import finders, the driver probe."""
    import importlib

    importlib.invalidate_caches()
    from .._gpus import probe

    probe.clear_cache()
