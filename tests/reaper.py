"""Every process a test starts is ended when the test ends, passed or failed (a pytest plugin: conftest.py loads
it; an inner pytest run loads it with ``-p reaper``).

Each test gets a token in ``GPUBOOT_TEST_OWNER``, which every process it starts inherits with its environment --
the ``gpuboot`` command, its worker processes, a local Ray's daemons, a shell's children -- however deep and
whichever process group or session they moved to.  At the test's teardown every process whose environment
carries the token (``/proc/PID/environ``) is sent SIGTERM, with its process group where that group is its own,
then SIGKILL after a grace period; the test process itself is never among them (its ``environ`` file shows the
environment it started with).  ``owned(token)`` lists them; ``spawn`` starts a process in a session of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any, Iterator, List

import pytest

OWNER = "GPUBOOT_TEST_OWNER"
#: Seconds a process has after SIGTERM before SIGKILL.
GRACE_S = 5.0


def owned(token: str, variable: str = OWNER) -> List[int]:
    """Processes (other than this one) whose environment carries ``variable=token``."""
    if not sys.platform.startswith("linux"):
        return []
    needle = f"{variable}={token}".encode()
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:  # gone, or a zombie
            continue
    return found


def end(token: str, variable: str = OWNER, grace: float = GRACE_S) -> List[int]:
    """End every process carrying ``variable=token``: SIGTERM (to its process group when the group is not this
    process's), then SIGKILL for what is left after ``grace`` seconds.  Returns the pids that were found."""
    pids = owned(token, variable)
    if not pids:
        return []
    mine = os.getpgrp()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                group = os.getpgid(pid)
                if group != mine and group == pid:
                    os.killpg(group, sig)
                else:
                    os.kill(pid, sig)
            except OSError:
                continue
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 30.0)
        while time.monotonic() < deadline and owned(token, variable):
            time.sleep(0.05)
        pids = owned(token, variable)
        if not pids:
            break
    return pids


@pytest.fixture(autouse=True)
def _processes_end_with_the_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The test's token in the environment its children inherit; at teardown, whatever it left is ended."""
    token = uuid.uuid4().hex
    monkeypatch.setenv(OWNER, token)
    try:
        yield token
    finally:
        end(token)


def spawn(args: List[str], **kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen`` in a session (and process group) of its own, so that the test's teardown can end
    the whole group."""
    return subprocess.Popen(args, start_new_session=True, **kwargs)
