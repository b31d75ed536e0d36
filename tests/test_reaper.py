"""Every process a test starts is ended when the test fails (tests/reaper.py), checked by an inner pytest run of
a test that fails on purpose while its processes run: a ``gpuboot transcribe --workers 2`` over hundreds of files
(the command, its worker processes) and a shell in a session of its own with two children.  Without the plugin
the same shell outlives the run (the control)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from helpers import child_env
from reaper import end, owned
from speech import SAMPLE

INNER = '''
import json, os, subprocess, sys, time

from reaper import OWNER, owned


def test_fails_on_purpose_with_its_processes_running(tmp_path):
    started = []
    if os.environ.get("INNER_GPUBOOT") == "1":
        folder = tmp_path / "many"
        folder.mkdir()
        for i in range(400):
            os.link({sample!r}, folder / f"clip{{i:04d}}.wav")
        started.append(subprocess.Popen([sys.executable, "-m", "gpuboot", "transcribe", str(folder), "--workers", "2",
                                         "--output-dir", str(tmp_path / "out"), "-q"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    started.append(subprocess.Popen(["sh", "-c", "sleep 600 & sleep 600 & wait"], start_new_session=True))
    want = 3 + 3 * len(started[:-1])  # the shell, its two sleeps; the command and its two workers
    deadline = time.monotonic() + 300
    while len(owned(os.environ[OWNER])) < want and time.monotonic() < deadline:
        time.sleep(0.1)
    with open(os.environ["INNER_PIDS"], "w") as f:
        json.dump(owned(os.environ[OWNER]), f)
    assert False, "fails on purpose with its processes running"
'''


@pytest.mark.slow
@pytest.mark.parametrize("plugin", [True, False])
def test_a_failing_test_leaves_no_process_behind(tmp_path: Path, plugin: bool) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    (tmp_path / "test_inner.py").write_text(INNER.format(sample=str(SAMPLE)))
    outer = uuid.uuid4().hex
    tests = str(Path(__file__).resolve().parent)
    env = child_env({"GPUBOOT_TEST_OUTER": outer, "INNER_PIDS": str(tmp_path / "pids.json"),
                     "INNER_GPUBOOT": "1" if plugin else "0", "HF_HUB_OFFLINE": "1"})
    env["PYTHONPATH"] = tests + ":" + env["PYTHONPATH"]
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
            *(["-p", "reaper"] if plugin else []), str(tmp_path / "test_inner.py")]
    try:
        proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 1 and "fails on purpose" in proc.stdout, proc.stdout + proc.stderr
        seen = json.loads((tmp_path / "pids.json").read_text())
        left = owned(outer, "GPUBOOT_TEST_OUTER")
        if plugin:
            assert len(seen) >= 6, seen  # the command, its workers (and their manager), the shell, two sleeps
            assert left == [], left  # all ended by the inner run's teardown, before pytest exited
        else:
            assert len(left) >= 3 and set(left) <= set(seen)  # the control: the shell and its sleeps outlive it
    finally:
        end(outer, "GPUBOOT_TEST_OUTER")
