"""``gpuboot env``: the environment child processes need to find the wheel libraries, for a shell profile, a
Dockerfile or a systemd unit (``LD_LIBRARY_PATH`` is read at process start)."""

from __future__ import annotations

import argparse
import json
from typing import TextIO

__all__ = ["SUMMARY", "add_arguments", "run"]

SUMMARY = "print the environment child processes need to find the wheel libraries"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..startup.shellenv import SHELLS

    parser.add_argument("--shell", choices=SHELLS, default=None,
                        help="the shell to write for (default: bash; powershell on Windows)")
    parser.add_argument("--json", action="store_true",
                        help="JSON: the variable, its directories, the command and the Dockerfile/systemd lines")


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .._libs.platform import check_platform, library_path_variable
    from ..machine.snapshot import current
    from ..startup.shellenv import env_directories, render, snippets

    plat = check_platform(current().platform)
    shell = args.shell or ("powershell" if plat == "win32" else "bash")
    dirs = env_directories(plat)
    if args.json:
        json.dump({"variable": library_path_variable(plat)[0], "directories": dirs,
                   "shell": shell, "command": render(shell, dirs, plat), **snippets(dirs, plat)}, out, indent=2)
        out.write("\n")
        return 0
    out.write(render(shell, dirs, plat) + "\n")
    for name, line in snippets(dirs, plat).items():
        out.write(f"# {name}: {line}\n")
    return 0
