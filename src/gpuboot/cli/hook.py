"""``gpuboot hook install|uninstall|status``: the opt-in start-up hook (``startup/hook.py``, ``gpuboot_hook``)."""

from __future__ import annotations

import argparse
import os
from typing import TextIO

__all__ = ["SUMMARY", "add_arguments", "run"]

SUMMARY = "run ensure() before the first import of a GPU consumer in every program of an environment"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("install", "uninstall", "status"),
                        help="install: write gpuboot-hook.pth into site-packages; uninstall: remove it; status: say "
                             "whether it is there")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--site", metavar="DIR", default=None,
                       help="the site-packages directory (default: this Python's, where gpuboot is installed)")
    where.add_argument("--user", action="store_true",
                       help="your user site-packages (every Python of this version outside a virtual environment "
                            "reads it; no sudo needed)")


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ..startup.hook import hook_path, import_names, install_hook, uninstall_hook, user_site

    if args.user:
        args.site = user_site()
    if args.action == "install":
        path = install_hook(args.site)
        out.write(f"installed {path}: every Python of this environment runs gpuboot.ensure() before its first "
                  f"import of {', '.join(import_names())}\n(`gpuboot hook uninstall` removes it; GPUBOOT_HOOK=0 "
                  "turns it off for one run)\n")
        return 0
    if args.action == "uninstall":
        removed = uninstall_hook(args.site)
        out.write(f"removed {removed}\n" if removed else f"no hook in {os.path.dirname(hook_path(args.site))}\n")
        return 0
    path = hook_path(args.site)
    out.write(f"installed: {path}\n" if os.path.exists(path) else f"not installed (would be {path})\n")
    return 0
