"""What a person at a terminal sees from ``gpuboot transcribe``: the command runs on a real pseudo-terminal
(``pty``), so tqdm draws its bar and the live lines are printed as they would be; real model, real speech.

* the bar moves while batched decoding runs, with the real-time factor, and ends full;
* the stage shows before audio is counted, and the elapsed time is redrawn while a batch decodes;
* Ctrl-C (SIGINT to the process) stops it with exit 130 and the bar left where it was, no traceback, also in
  the middle of a long batch;
* not on a terminal, the device line and one summary line per file on stderr;
* with worker processes there is still one bar, never past 100 %, with live lines and "wrote" lines naming
  their files, no line holding both a bar and a cue;
* the device line is one short line, and ``-v`` after the subcommand adds the reasoning;
* every option of every command has help text."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest
from helpers import child_env, ctrl_c_default
from marks import needs_model
from speech import SAMPLE

PERCENT = re.compile(r"(\d+)%\|")


def on_terminal(args: List[str], *, cwd: Path, stdout_too: bool = True,
                interrupt: Optional[Callable[[str], bool]] = None, timeout: float = 600.0,
                times: Optional[Dict[str, float]] = None) -> Tuple[int, str, str]:
    """Run ``gpuboot <args>`` with stderr (and stdout when ``stdout_too``) on a pseudo-terminal 100 columns
    wide; SIGINT once ``interrupt(what the terminal shows so far)`` is true.  Returns (exit code, terminal
    text, stdout when it was a pipe); ``times`` gets ``sent`` (the SIGINT) and ``ended`` (the exit seen),
    ``time.monotonic()``."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "gpuboot", *args], cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=slave if stdout_too else subprocess.PIPE, stderr=slave,
                            env=child_env({"HF_HUB_OFFLINE": "1", "COLUMNS": "100"}), preexec_fn=ctrl_c_default)
    os.close(slave)
    seen = b""
    sent = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    chunk = b""
                if not chunk:
                    break
                seen += chunk
            if interrupt is not None and not sent and interrupt(seen.decode("utf-8", "replace")):
                proc.send_signal(signal.SIGINT)
                sent = True
                if times is not None:
                    times["sent"] = time.monotonic()
            if proc.poll() is not None and times is not None and "ended" not in times:
                times["ended"] = time.monotonic()
            if not ready and proc.poll() is not None:
                break
        out = proc.stdout.read().decode() if proc.stdout is not None else ""
        code = proc.wait(timeout=60)
        if times is not None:
            times.setdefault("ended", time.monotonic())
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert not interrupt or sent, "the condition to interrupt never came: " + seen.decode("utf-8", "replace")
    return code, seen.decode("utf-8", "replace"), out


def percents(terminal: str) -> List[int]:
    return [int(m) for m in PERCENT.findall(terminal)]


@pytest.fixture(scope="module")
def long_recording() -> Path:
    from timed_speech import timed_recording

    return timed_recording("long")[0]


@pytest.mark.slow
@needs_model
def test_the_bar_moves_while_batched_decoding_runs(long_recording: Path, tmp_path: Path) -> None:
    """140 s of speech in 6 windows at batch 2: three batches, and the bar shows each."""
    code, terminal, _ = on_terminal(["transcribe", str(long_recording), "--batch-size", "2", "--language", "en",
                                     "--output-dir", str(tmp_path / "out")], cwd=tmp_path)
    assert code == 0, terminal
    shown = percents(terminal)
    between = [p for p in shown if 0 < p < 100]
    assert between, terminal  # seen part-way, not only empty and full
    assert shown == sorted(shown) and shown[-1] == 100, shown
    assert re.search(r"\d+%\|[^\r\n]*RTF \d+\.\d{3}", terminal), terminal  # the real-time factor beside it
    assert "wrote " in terminal and "Traceback" not in terminal
    assert "clamping frac" not in terminal  # tqdm's warning when a bar is pushed past its total
    assert "loading model" in terminal and "decoding" in terminal, terminal  # the stage before audio is counted
    clock = elapsed(terminal)
    assert len(clock) >= 2 and max(b - a for a, b in zip(clock, clock[1:])) <= 5, clock  # redrawn while it decodes


ELAPSED = re.compile(r"\| \d+/\d+ s audio \[(?:(\d+):)?(\d+):(\d+)<")


def elapsed(terminal: str) -> List[int]:
    """The bar's elapsed times as drawn, in order (s), each value once."""
    out: List[int] = []
    for h, m, sec in ELAPSED.findall(terminal):
        value = int(h or 0) * 3600 + int(m) * 60 + int(sec)
        if not out or value != out[-1]:
            out.append(value)
    return out


def glued(terminal: str) -> List[str]:
    """Pieces of the terminal (between carriage returns and newlines) holding both a bar and a cue."""
    return [piece for piece in re.split(r"[\r\n]+", terminal) if PERCENT.search(piece) and " --> " in piece]


@pytest.mark.slow
@needs_model
def test_ctrl_c_stops_with_130_and_the_bar_where_it_was(long_recording: Path, tmp_path: Path) -> None:
    def part_way(text: str) -> bool:
        return any(0 < p < 100 for p in percents(text))

    code, terminal, _ = on_terminal(["transcribe", str(long_recording), "--batch-size", "1", "--language", "en",
                                     "--output-dir", str(tmp_path / "out")], cwd=tmp_path, interrupt=part_way)
    assert code == 130, terminal
    assert "Traceback" not in terminal, terminal
    assert percents(terminal)[-1] < 100, terminal  # not filled: the work did not finish
    assert "interrupted" in terminal.lower(), terminal
    assert not list((tmp_path / "out").glob("*.srt")) if (tmp_path / "out").exists() else True


@pytest.mark.slow
@needs_model
def test_ctrl_c_mid_batch_stops_at_once(long_recording: Path, tmp_path: Path) -> None:
    """Four copies of the long recording: 24 windows, batches of 16 and 8 that take CTranslate2 seconds each on a
    CPU.  Ctrl-C once the bar has moved (the first batch is done, the second has begun): exit 130 without waiting
    for that batch, one line saying what is done, no partial file.  (Where a stop lands inside a CTranslate2 call,
    it used to wait for the call: bench/stop_time.py measured 0.8-8.5 s before and 0.6-0.7 s now.)"""
    names = ("a", "b", "c", "d")
    for name in names:
        shutil.copy(long_recording, tmp_path / f"{name}.wav")
    times: Dict[str, float] = {}
    code, terminal, _ = on_terminal(["transcribe", *(str(tmp_path / f"{n}.wav") for n in names), "--batch-size",
                                     "16", "--language", "en", "--output-dir", str(tmp_path / "out")],
                                    cwd=tmp_path, interrupt=lambda text: any(0 < p < 100 for p in percents(text)),
                                    times=times)
    assert code == 130, terminal
    assert "Traceback" not in terminal, terminal
    assert re.search(r"interrupted: \d of 4 file\(s\) done", terminal), terminal
    assert times["ended"] - times["sent"] <= 5.0, times  # generous for a loaded machine; about 0.2 s when quiet
    out = tmp_path / "out"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")] if out.exists() else True  # no partial


@needs_model
def test_not_on_a_terminal_each_file_gets_one_summary_line(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("alpha.wav", "beta.wav", "gamma.wav"):
        shutil.copy(SAMPLE, folder / name)
    env = child_env({"HF_HUB_OFFLINE": "1"})
    for flags in ([], ["--workers", "auto", "-v"]):
        run = subprocess.run([sys.executable, "-m", "gpuboot", "transcribe", str(folder), "--output-dir",
                              str(tmp_path / "out"), "--device", "cpu", *flags], capture_output=True, text=True,
                             env=env, timeout=600)
        assert run.returncode == 0, run.stderr
        assert run.stdout == "", run.stdout
        lines = run.stderr.splitlines()
        for name in ("alpha", "beta", "gamma"):
            mine = [line for line in lines if line.startswith(f"gpuboot: {folder / name}.wav: ")
                    and " s audio, " in line]
            assert len(mine) == 1, (name, run.stderr)
            assert re.fullmatch(rf"gpuboot: .+: \d+\.\d s audio, \d+ words, run RTF \d+\.\d{{3}}; wrote "
                                rf"{re.escape(str(tmp_path / 'out' / name))}\.txt, .+\.json", mine[0]), mine[0]
        assert sum(line.startswith("gpuboot: cpu/") for line in lines) == 1, run.stderr  # the device line
        if flags:
            assert any(line.startswith("gpuboot: this process (") for line in lines), run.stderr  # the plan
            # a folder this small stays in this process under --workers auto
            assert "worker process(es)" not in run.stderr, run.stderr


@needs_model
def test_workers_draw_one_bar_with_live_and_wrote_lines(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("alpha.wav", "beta.wav", "gamma.wav", "delta.wav"):
        shutil.copy(SAMPLE, folder / name)
    code, terminal, _ = on_terminal(["transcribe", str(folder), "--workers", "2", "--device", "cpu",
                                     "--output-dir", str(tmp_path / "out"), "--output-format", "srt"], cwd=tmp_path)
    assert code == 0, terminal
    assert "Traceback" not in terminal and "clamping frac" not in terminal, terminal
    shown = percents(terminal)
    assert shown and shown == sorted(shown) and max(shown) == 100, shown
    labels = set(re.findall(r"(\S+ files): +\d+%\|", terminal))
    assert labels == {"4 files"}, labels  # one bar for the run, not one per worker
    for name in ("alpha", "beta", "gamma", "delta"):
        assert re.search(rf"{name}\.wav: \[(\d\d:)?\d\d:\d\d[.,]\d{{3}} --> ", terminal), (name, terminal)  # live
        assert f"wrote {tmp_path / 'out' / name}.srt" in terminal, (name, terminal)
    assert "gpuboot: 2 worker process(es)" in terminal, terminal  # the plan line
    assert glued(terminal) == [], glued(terminal)  # live lines above the bar, never appended to it


@needs_model
@pytest.mark.parametrize("flags", [[], ["-v"]], ids=["default", "verbose-after-subcommand"])
def test_the_device_line_is_short_and_v_gives_the_reason(flags: List[str], tmp_path: Path) -> None:
    code, terminal, out = on_terminal(["transcribe", str(SAMPLE), "--device", "cpu", *flags], cwd=tmp_path,
                                      stdout_too=False)
    assert code == 0, terminal
    lines = [line for line in re.split(r"[\r\n]+", terminal) if line.startswith("gpuboot: cpu/")]
    assert len(lines) == 1, terminal
    line = lines[0]
    if flags:
        assert ": " in line[len("gpuboot: "):] and len(line) > 60, line  # the reasoning follows the mode
    else:
        assert re.fullmatch(r"gpuboot: cpu/\w+, (batch \d+|sequential), \d+ thread\(s\)", line.strip()), line
    assert out.strip(), "the transcript goes to stdout"


def test_every_option_of_every_command_has_help() -> None:
    import argparse

    from gpuboot.cli import _parser

    missing = []

    def walk(parser: argparse.ArgumentParser, where: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{where} {name}")
            elif action.help in (None, "") and not isinstance(action, argparse._HelpAction):
                missing.append(f"{where}: {'/'.join(action.option_strings) or action.dest}")

    walk(_parser(), "gpuboot")
    assert missing == []
