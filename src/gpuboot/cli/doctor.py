"""``gpuboot doctor``: every known way GPU start-up goes wrong here, with the fix; ``--fix`` applies the fixes
that change this environment (the plan, one confirmation, the commands, then before -> after)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Sequence, TextIO

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
    from ..doctor.remedy import _fix as fix
    from ..doctor.remedy import environment_refusal

    stdin = sys.stdin if stdin is None else stdin
    before = diagnose(consumer=args.consumer)
    planned = fix(before, apply=False, pip_args=pip_args, refusal=None)
    refusal = environment_refusal() if planned.plan else None
    if args.json and (args.dry_run or refusal or not planned.plan):
        result = fix(before, apply=False, pip_args=pip_args, refusal=refusal)
        json.dump(result.to_dict(), out, indent=2)
        out.write("\n")
        return result.exit_code
    lines: List[str] = []
    for f in before.findings:
        if f.severity == "problem":
            lines.append(f"problem {f.title}")
    if planned.plan:
        lines.append(f"plan: {len(planned.plan)} command(s) in {sys.prefix} (interpreter {sys.executable}):")
        lines += [f"  [{s.finding}] {s.display}" for s in planned.plan]
        unchecked = sorted({s.unchecked for s in planned.plan if s.unchecked})
        lines += [f"  not checked before it runs: {why}" for why in unchecked]
    for s in planned.explained:
        lines.append(f"not run (outside this environment; do it yourself) [{s.finding}]: {s.display}")
    if not args.json:
        out.write("\n".join(lines) + ("\n" if lines else ""))
    if not planned.plan:
        if not args.json:
            out.write("nothing to apply in this environment" + (": no problem found\n" if not before.problems
                                                                   else "\n"))
        return before.exit_code
    if refusal:
        err.write(f"gpuboot: not applied: {refusal}\n")
        return 1
    if args.dry_run:
        return before.exit_code
    if not args.yes:
        if not is_tty(stdin) or not is_tty(out):
            err.write("gpuboot: not applied: no terminal to confirm on; rerun with --yes to apply the plan above\n")
            return 1
        out.write(f"Apply {len(planned.plan)} command(s) to {sys.prefix}? [y/N] ")
        out.flush()
        answer = stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            out.write("not applied\n")
            return 1
    allow_unchecked = False
    if any(s.unchecked for s in planned.plan) and not args.yes:
        out.write("pip cannot check these installs against the installed packages first; run them anyway? [y/N] ")
        out.flush()
        allow_unchecked = stdin.readline().strip().lower() in ("y", "yes")
    result = fix(before, apply=True, pip_args=pip_args, refusal=None, allow_unchecked=allow_unchecked,
                 diagnose=lambda: diagnose(consumer=args.consumer))
    if args.json:
        json.dump(result.to_dict(), out, indent=2)
        out.write("\n")
        return result.exit_code
    for a in result.applied:
        state = "ok" if a.exit_code == 0 else f"FAILED (exit {a.exit_code})"
        out.write(f"ran: {a.step.display}: {state}\n")
        if a.exit_code != 0:
            out.write("".join(f"  | {line}\n" for line in a.output_tail.splitlines()))
            out.write("  the environment is as pip left it\n")
    for command, why in result.skipped:
        out.write(f"skipped: {command}: {why}\n")
    after = result.after if result.after is not None else before
    was, now = _summary(before.findings), _summary(after.findings)
    out.write("before -> after:\n")
    for key in sorted(set(was) | set(now)):
        out.write(f"  {key}: {was.get(key, 'gone')} -> {now.get(key, 'fixed')}\n")
    for fid in result.still_broken:
        out.write(f"still broken after its fix ({fid}): not applied again; see `gpuboot doctor`\n")
    n = len(after.problems)
    out.write(f"{n} problem{'s' if n != 1 else ''} remain{'s' if n == 1 else ''}\n")
    return result.exit_code
