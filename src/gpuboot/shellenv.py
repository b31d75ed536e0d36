"""``gpuboot env``: the lines that let child processes find the wheel libraries.

``LD_LIBRARY_PATH`` is read once at process start (ld.so(8)), so it must be
set before the process that needs it starts: in a shell profile, a
Dockerfile, a systemd unit.  Every form below avoids an empty entry, which
the loader reads as the current directory: ``${VAR:+:$VAR}`` appends the old
value only when it is non-empty (POSIX shells and Dockerfile ``ENV`` both
support that expansion).
"""

from __future__ import annotations

from typing import Dict, List, Sequence

from ._libs.platform import library_path_variable

__all__ = ["SHELLS", "render", "snippets"]

SHELLS = ("bash", "zsh", "fish", "powershell", "cmd")


def _ps_quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def render(shell: str, directories: Sequence[str], platform: str) -> str:
    """The command for ``shell`` that prepends ``directories``.

    Raises:
        ValueError: unknown shell.
    """
    if shell not in SHELLS:
        raise ValueError(f"shell must be one of {', '.join(SHELLS)}, not {shell!r}")
    var, sep = library_path_variable(platform)
    joined = sep.join(directories)
    if not directories:
        return f"# gpuboot found no NVIDIA wheel libraries to put on {var}"
    if shell in ("bash", "zsh"):
        return f'export {var}={_sh_quote(joined)}"${{{var}:+{sep}${var}}}"'
    if shell == "fish":
        return f"set -gx --prepend {var} " + " ".join(_sh_quote(d) for d in directories)
    if shell == "powershell":
        return f"$env:{var} = {_ps_quote(joined + sep)} + $env:{var}"
    return f'set "{var}={joined}{sep}%{var}%"'


def snippets(directories: Sequence[str], platform: str) -> Dict[str, str]:
    """Dockerfile and systemd forms (Linux)."""
    if platform == "win32" or not directories:
        return {}
    joined = ":".join(directories)
    return {
        "dockerfile": f"ENV LD_LIBRARY_PATH={joined}${{LD_LIBRARY_PATH:+:${{LD_LIBRARY_PATH}}}}",
        "systemd": f'Environment="LD_LIBRARY_PATH={joined}"',
    }


def env_directories(platform: str) -> List[str]:
    """The directories ``subprocess_env`` would add, for this environment."""
    from .dllpath import subprocess_env

    var, sep = library_path_variable(platform)
    env = subprocess_env({})
    return [d for d in env.get(var, "").split(sep) if d]
