"""``gpuboot doctor``: every known way GPU start-up goes wrong here, with the fix; ``--fix`` applies the fixes
that change this environment (the plan, one confirmation, the commands, then before -> after)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Sequence, TextIO

from .terminal import is_tty

__all__ = ["SUMMARY", "add_arguments", "run"]

SUMMARY = "diagnose GPU start-up problems and print the fix for each"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..doctor import CONSUMER_ALIASES

    parser.add_argument("--json", action="store_true",
                        help="JSON following gpuboot/doctor/doctor-schema.json, shipped in the package")
    parser.add_argument("--for", dest="consumer", choices=tuple(CONSUMER_ALIASES), default=None,
                        help="check for one consumer only")
    parser.add_argument("--fix", action="store_true",
                        help="apply the fixes that change this environment (pip, run by this interpreter), after one "
                             "confirmation, then check again; host-level fixes are explained, never run. pip options "
                             "go after `--` (e.g. -- --find-links DIR --no-index)")
    parser.add_argument("--yes", action="store_true", help="with --fix: apply without asking (scripts)")
    parser.add_argument("--dry-run", action="store_true", help="with --fix: print the exact commands, run nothing")


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.fix:
        return _fix(args, args.pip_args, out, err)
    from ..doctor import diagnose

    report = diagnose(consumer=args.consumer)
    if args.json:
        json.dump(report.to_dict(), out, indent=2)
        out.write("\n")
    else:
        out.write(report.render())
    return report.exit_code


def _summary(findings: Sequence[Any]) -> Dict[str, str]:
    return {f"{f.id}: {f.title}": f.severity for f in findings if f.severity in ("problem", "warning")}


def _fix(args: argparse.Namespace, pip_args: Sequence[str], out: TextIO, err: TextIO, stdin: Any = None) -> int:
    """Plan, confirm, apply, re-check; returns the exit code (0 only when no problem remains)."""
    from ..doctor import diagnose
    from ..doctor.remedy import fix

    stdin = sys.stdin if stdin is None else stdin
    before = diagnose(consumer=args.consumer)
    planned = fix(before, apply=False, pip_args=pip_args)
    if args.json and (args.dry_run or planned.refused or not planned.plan):
        return _dump(planned, out)
    if not args.json:
        out.write(_plan_lines(before, planned))
    if not planned.plan:
        if not args.json:
            out.write("nothing to apply in this environment" + (": no problem found\n" if not before.problems
                                                                   else "\n"))
        return before.exit_code
    if planned.refused:
        err.write(f"gpuboot: not applied: {planned.refused}\n")
        return 1
    if args.dry_run:
        return before.exit_code
    allow_unchecked = _confirmed(args, planned, stdin, out, err)
    if allow_unchecked is None:
        return 1
    result = fix(before, apply=True, pip_args=pip_args, allow_unchecked=allow_unchecked)
    if args.json:
        return _dump(result, out)
    out.write(_result_lines(before, result))
    return result.exit_code


def _dump(result: Any, out: TextIO) -> int:
    json.dump(result.to_dict(), out, indent=2)
    out.write("\n")
    return int(result.exit_code)


def _plan_lines(before: Any, planned: Any) -> str:
    """The problems, the commands of the plan (and what pip cannot check first), the host steps."""
    lines = [f"problem {f.title}" for f in before.findings if f.severity == "problem"]
    if planned.plan:
        lines.append(f"plan: {len(planned.plan)} command(s) in {sys.prefix} (interpreter {sys.executable}):")
        lines += [f"  [{s.finding}] {s.display}" for s in planned.plan]
        lines += [f"  not checked before it runs: {why}" for why in sorted({s.unchecked for s in planned.plan
                                                                               if s.unchecked})]
    lines += [f"not run (outside this environment; do it yourself) [{s.finding}]: {s.display}"
              for s in planned.explained]
    return "".join(f"{line}\n" for line in lines)


def _confirmed(args: argparse.Namespace, planned: Any, stdin: Any, out: TextIO, err: TextIO) -> Optional[bool]:
    """``None`` when the plan is not to be applied (no terminal, or not confirmed), else whether a ``pip
    install`` that pip cannot check first may run."""
    if args.yes:
        return False
    if not is_tty(stdin) or not is_tty(out):
        err.write("gpuboot: not applied: no terminal to confirm on; rerun with --yes to apply the plan above\n")
        return None
    out.write(f"Apply {len(planned.plan)} command(s) to {sys.prefix}? [y/N] ")
    out.flush()
    if stdin.readline().strip().lower() not in ("y", "yes"):
        out.write("not applied\n")
        return None
    if not any(s.unchecked for s in planned.plan):
        return False
    out.write("pip cannot check these installs against the installed packages first; run them anyway? [y/N] ")
    out.flush()
    return bool(stdin.readline().strip().lower() in ("y", "yes"))


def _result_lines(before: Any, result: Any) -> str:
    """What ran, what was skipped, the findings before -> after, and what is still broken."""
    lines: List[str] = []
    for a in result.applied:
        lines.append(f"ran: {a.step.display}: {'ok' if a.exit_code == 0 else f'FAILED (exit {a.exit_code})'}")
        if a.exit_code != 0:
            lines += [f"  | {line}" for line in a.output_tail.splitlines()]
            lines.append("  the environment is as pip left it")
    lines += [f"skipped: {command}: {why}" for command, why in result.skipped]
    after = result.after if result.after is not None else before
    was, now = _summary(before.findings), _summary(after.findings)
    lines.append("before -> after:")
    lines += [f"  {key}: {was.get(key, 'gone')} -> {now.get(key, 'fixed')}" for key in sorted(set(was) | set(now))]
    lines += [f"still broken after its fix ({fid}): not applied again; see `gpuboot doctor`"
              for fid in result.still_broken]
    n = len(after.problems)
    lines.append(f"{n} problem{'s' if n != 1 else ''} remain{'s' if n == 1 else ''}")
    return "".join(f"{line}\n" for line in lines)
