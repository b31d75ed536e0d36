"""Commands shown to people, quoted for the shell of the platform they run on."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Sequence

__all__ = ["command_line"]


def command_line(words: Sequence[str], platform: str) -> str:
    """``words`` as one command line for the platform's shell: ``shlex.quote``d
    words for POSIX shells, ``subprocess.list2cmdline`` for ``cmd.exe``
    (``platform == "win32"``; it keeps backslashes, which ``shlex`` would eat)."""
    if platform == "win32":
        import subprocess

        return subprocess.list2cmdline(list(words))
    import shlex

    return " ".join(shlex.quote(w) for w in words)
