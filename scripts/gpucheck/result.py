"""A part's result, what every part reads (``Check``), and the bounded child process a part runs in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Mapping, Optional, Sequence

Status = Literal["agree", "disagree", "needs-gpu", "skipped"]

#: The line a child prints its answer on (the last such line counts).
MARK = "GPUCHECK-CHILD-RESULT "


@dataclass(frozen=True)
class PartResult:
    """What one part found.

    Attributes:
        status: ``"agree"`` (every comparison made agreed), ``"disagree"`` (at least one did not: ``problems``),
            ``"needs-gpu"`` (what it must compare needs a GPU that CUDA answers for, or torch/CuPy on one),
            ``"skipped"`` (``summary`` says why).
        summary: one line.
        evidence: what each layer answered, one line each.
        problems: the disagreements, one line each (with a traceback for a part that crashed).
        gpu_only: the comparisons that could not be made here for want of a GPU.
    """

    status: Status
    summary: str
    evidence: Sequence[str] = ()
    problems: Sequence[str] = ()
    gpu_only: Sequence[str] = ()


def verdict(summary: str, evidence: Sequence[str], problems: Sequence[str], gpu_only: Sequence[str] = (),
            compared: int = 1, skipped_because: str = "") -> PartResult:
    """The status from what was found: a disagreement wins, then comparisons that need a GPU, then agreement;
    a part that compared nothing and needs no GPU is skipped (``skipped_because``)."""
    if problems:
        return PartResult("disagree", summary, tuple(evidence), tuple(problems), tuple(gpu_only))
    if gpu_only:
        return PartResult("needs-gpu", summary, tuple(evidence), (), tuple(gpu_only))
    if compared:
        return PartResult("agree", summary, tuple(evidence))
    return PartResult("skipped", skipped_because or summary, tuple(evidence))


@dataclass
class Check:
    """What the parts share: the check's command, its deadline and the facts the first part read.

    Attributes:
        script: this check's entry script (children run it with ``--child``).
        deadline: ``time.monotonic()`` after which no child is started.
        child_timeout: seconds one child may take.
        model: the Whisper model directory part 7 transcribes with, or ``None``.
        model_files: where tiny.en's small files are (``model.py``), for a random-weights model when ``model``
            is ``None``.
        sample: the recording part 7 transcribes, and its reference text.
        facts: what parts learned for later parts (``"probe"``, ``"stub_libcuda"``, ``"gpus"``...).
    """

    script: str
    deadline: float
    child_timeout: float = 180.0
    model: Optional[str] = None
    model_files: Optional[str] = None
    sample: str = ""
    reference: str = ""
    facts: Dict[str, Any] = field(default_factory=dict)


class OutOfTime(Exception):
    """No child is started after the check's deadline: the part is skipped, saying so."""


@dataclass(frozen=True)
class ChildOutcome:
    """A child's answer (``answer``) or why there is none (``error``: a timeout, a crash with its traceback)."""

    answer: Optional[Dict[str, Any]]
    error: str = ""
    elapsed_s: float = 0.0


def run_child(check: Check, name: str, arg: Any = None, *, env: Optional[Mapping[str, Optional[str]]] = None,
              timeout: Optional[float] = None) -> ChildOutcome:
    """Run child ``name`` (``children.CHILDREN``) in a fresh interpreter in its own process group, killed with
    everything it started when it outlives ``timeout`` (or the check's deadline).  ``env`` changes the
    environment (a ``None`` value removes the variable).

    Raises:
        OutOfTime: the check's deadline has passed (less than 5 s left).
    """
    left = check.deadline - time.monotonic()
    if left < 5:
        raise OutOfTime(f"the {name} child was not started: the check's time (--time-limit) is up")
    limit = min(timeout or check.child_timeout, left)
    full = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = v
    full["PYTHONUNBUFFERED"] = "1"
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, check.script, "--child", name, json.dumps(arg)], env=full,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = _drain(proc)
        return ChildOutcome(None, f"the {name} child did not finish within {limit:.0f} s; its last output: "
                                  f"{_tail(err or out)}", time.monotonic() - t0)
    finally:
        _kill_group(proc)  # anything it left running
    elapsed = time.monotonic() - t0
    lines = [line for line in out.splitlines() if line.startswith(MARK)]
    if not lines:
        why = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
        return ChildOutcome(None, f"the {name} child died ({why}) without an answer:\n{_tail(err or out, 40)}",
                            elapsed)
    answer = json.loads(lines[-1][len(MARK):])
    if "traceback" in answer:
        return ChildOutcome(None, f"the {name} child raised:\n{answer['traceback']}", elapsed)
    return ChildOutcome(answer, "", elapsed)


def _kill_group(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _drain(proc: subprocess.Popen) -> Any:  # type: ignore[type-arg]
    try:
        return proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        return "", "(its output could not be read)"


def _tail(text: str, lines: int = 3) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def child_main(name: str, arg_json: str, children: Mapping[str, Any]) -> int:
    """The child's side: run ``children[name](arg)``, print its JSON answer (or the traceback) on the mark line."""
    import traceback

    try:
        answer = children[name](json.loads(arg_json))
    except BaseException:  # the parent reports it as this part's disagreement
        answer = {"traceback": traceback.format_exc()}
    sys.stdout.flush()
    print(MARK + json.dumps(answer, default=str), flush=True)
    return 0


def lines_of(values: List[str], indent: str = "    ") -> List[str]:
    return [indent + v for v in values]
