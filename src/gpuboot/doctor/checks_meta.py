"""Doctor's check of the installed distributions' metadata: a name, version or requirement that does not
validate is named here, and never reaches a rule or a command (``machine/metadata.py``)."""

from __future__ import annotations

from typing import List

from ..consumers.table import CONSUMERS
from .actions import command_line
from .report import Context, Finding

__all__ = ["check_metadata"]


def check_metadata(ctx: Context) -> List[Finding]:
    """``malformed-metadata``: one finding per distribution whose METADATA is missing, a directory, not UTF-8,
    or whose Name, Version or Requires-Dist ``packaging`` rejects.  A problem for a CUDA consumer (gpuboot
    cannot tell what it needs), a warning for any other distribution."""
    out: List[Finding] = []
    for bad in ctx.machine.malformed:
        where = bad.path or "(no path)"
        shown = where if where.isascii() and where.isprintable() else ascii(where)[1:-1]
        consumer = bad.name in CONSUMERS
        reinstall = command_line(("pip", "install", "--force-reinstall", "--no-deps", bad.name), ctx.platform)
        out.append(Finding(
            id="malformed-metadata", severity="problem" if consumer else "warning",
            title=f"the metadata of {bad.name} is malformed: {bad.why}",
            evidence=(f"{shown}", "its name, version and requirements are not used by gpuboot, and no command is built "
             "from them", *(["gpuboot cannot tell which CUDA libraries it needs"] if consumer else [])),
            remedy=f"if {shown} is inside a project you run from (it is on sys.path as the current directory), move it "
            f"out; if it is in site-packages, reinstall the distribution ({reinstall}) or delete that directory"))
    return out
