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
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..base.record import Record
from ..consumers.pairings import conflicts_with_installed, installed_distributions
from ..machine.snapshot import current
from .plan import Step, environment_refusal, other_interpreter, pip_can_check, plan_fix
from .report import Report

__all__ = ["Step", "Applied", "FixResult", "plan_fix", "fix", "environment_refusal", "other_interpreter",
           "pip_can_check"]


class Applied(Record):
    """A step that ran: its exit code and the last lines of its output."""

    step: Step
    exit_code: int
    output_tail: str


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

    plan: Tuple[Step, ...]
    explained: Tuple[Step, ...]
    refused: Optional[str]
    skipped: Tuple[Tuple[str, str], ...]
    applied: Tuple[Applied, ...]
    before: Report
    after: Optional[Report]
    still_broken: Tuple[str, ...] = ()

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


# --------------------------------------------------------------------------- applying


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _resolver_conflicts(step: Step) -> List[str]:
    """pip's own resolver, asked what ``step`` would install (``--dry-run --report``),
    checked against every installed distribution's requirements."""
    if step.kind != "pip" or step.argv[4:5] != ("install",):
        return []
    with tempfile.TemporaryDirectory() as tmp:
        report_path = os.path.join(tmp, "report.json")
        proc = subprocess.run([*step.argv[:5], "--dry-run", "--quiet", "--report", report_path, *step.argv[5:]],
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
    installed = [d for d in installed_distributions(current()) if d[0].lower() not in names]
    out: List[str] = []
    for name, version in new:
        out.extend(conflicts_with_installed(f"{name}=={version}", installed))
    return out


def fix(report: Optional[Report] = None, *, apply: bool = False, pip_args: Sequence[str] = (),
        python: str = sys.executable, allow_unchecked: bool = False) -> FixResult:
    """Plan, and with ``apply=True`` apply, the environment fixes of ``report``, then check again.

    Args:
        report: doctor's report of this environment (default: ``diagnose()`` now).
        apply: run the environment steps; ``False`` only plans.
        pip_args: extra ``pip install`` options (``--find-links DIR``,
            ``--index-url URL``, ``--no-index``), passed to pip as given.
        python: the interpreter whose environment is changed: this one
            (``sys.executable``, or another path to the same environment);
            another environment is refused (``other_interpreter``).
        allow_unchecked: run a ``pip install`` that pip's resolver cannot
            check first (pip older than 22.2); otherwise it is skipped with
            the reason and the pip upgrade that enables the check.

    Returns:
        A ``FixResult``.  Never raises for a failing command: pip's exit code and
        last lines are in ``applied``, and the environment is as pip left it.
        Refused (``FixResult.refused``) for another environment, root in the
        system interpreter, or an externally managed environment (PEP 668).
    """
    if report is not None:
        from ..base.record import expect

        expect(report, Report, "report", "from gpuboot.doctor.diagnose()")
    from .diagnosis import diagnose
    from .gather import gather

    def again() -> Report:  # the same consumers, on the machine as it is now
        return diagnose(gather(consumers=before.context.consumers))

    before = report if report is not None else diagnose()
    env_steps, host_steps = plan_fix(before, python=python, pip_args=pip_args)
    why = (other_interpreter(python) or environment_refusal()) if env_steps else None
    if env_steps and why is None and any(st.kind == "pip" and st.argv[4:5] == ("install",) for st in env_steps):
        unchecked = pip_can_check(python)
        if unchecked:
            env_steps = [st._replace(unchecked=unchecked) if st.kind == "pip" and st.argv[4:5] == ("install",)
                         else st for st in env_steps]
    if not apply or not env_steps or why:
        return FixResult(plan=tuple(env_steps), explained=tuple(host_steps), refused=why if env_steps else None,
                         skipped=(), applied=(), before=before, after=None)
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
        broken = [] if step.unchecked else _resolver_conflicts(step)
        if broken:
            skipped.append((step.display, "not run: pip would install versions that break " + "; ".join(broken)))
            continue
        if step.kind == "remove":
            if not os.path.islink(step.argv[1]):
                skipped.append((step.display, "not run: no longer a link"))
                continue
            try:
                os.unlink(step.argv[1])
                applied.append(Applied(step=step, exit_code=0, output_tail=f"removed {step.argv[1]}"))
            except OSError as exc:
                applied.append(Applied(step=step, exit_code=1, output_tail=str(exc)))
                failed = True
            continue
        proc = subprocess.run(list(step.argv), capture_output=True, text=True)
        applied.append(Applied(step=step, exit_code=proc.returncode,
                               output_tail=_tail((proc.stdout or "") + (proc.stderr or ""))))
        failed = proc.returncode != 0
    _forget_caches()
    after = again()
    fixed_ids = {a.step.finding for a in applied if a.exit_code == 0}
    still = tuple(sorted(fixed_ids & {f.id for f in after.problems}))
    return FixResult(plan=tuple(env_steps), explained=tuple(host_steps), refused=None, skipped=tuple(skipped),
                     applied=tuple(applied), before=before, after=after, still_broken=still)


def _forget_caches() -> None:
    """What this process remembers of the environment: import finders, the driver probe."""
    import importlib

    importlib.invalidate_caches()
    from ..machine import probe

    probe.clear_cache()
