"""The environment child processes need to find the wheel libraries: as a dict (``subprocess_env``) and as
the lines for a shell profile, a Dockerfile or a systemd unit (``gpuboot env``).

``LD_LIBRARY_PATH`` is read once at process start (ld.so(8)), so it must be
set before the process that needs it starts: in a shell profile, a
Dockerfile, a systemd unit.  Every form below avoids an empty entry, which
the loader reads as the current directory: ``${VAR:+:$VAR}`` appends the old
value only when it is non-empty (POSIX shells and Dockerfile ``ENV`` both
support that expansion).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from .._libs.loader import prepend_path
from .._libs.pathsafety import safe_directory
from .._libs.platform import check_platform, library_path_variable
from .._libs.types import Library
from ..machine.snapshot import Machine, current

__all__ = ["SHELLS", "subprocess_env", "render", "snippets", "env_directories"]

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
    var, sep = library_path_variable(platform)
    env = subprocess_env({})
    return [d for d in env.get(var, "").split(sep) if d]


def subprocess_env(base: Optional[Mapping[str, str]] = None, *,
                   libraries: Optional[Sequence[Library]] = None) -> Dict[str, str]:
    """An environment for child processes that finds the wheel libraries.

    ``LD_LIBRARY_PATH`` (Windows: ``PATH``) gets the directories of
    ``libraries`` -- default: what gpuboot preloaded in this process (what
    ``ensure()`` loaded), else what the installed consumers need, else what is
    found of cudart, cuBLAS and cuDNN -- plus gpuboot's alias
    directory when it holds links, in front of the old value.  Empty entries
    (the loader reads them as the current directory), relative entries and
    world-writable directories are dropped from a Linux ``LD_LIBRARY_PATH``;
    on Windows only empty entries are dropped (``PATH`` also finds programs).

    Args:
        base: the environment to start from; default ``os.environ``.
        libraries: whose directories to add.

    Returns:
        A new ``dict[str, str]``; ``base`` is not changed.
    """
    machine = current()
    plat = check_platform(machine.platform)
    env = dict(machine.environ if base is None else base)
    if libraries is None:
        libraries = _default_libraries(machine)
    from .._libs.aliases import alias_dir
    from .._libs.types import Library
    from ..base.record import expect

    for lib in libraries:
        expect(lib, Library, "each item of libraries", "from gpuboot.locate()")
    from ..dllpath import directories

    dirs = [str(d) for d in directories(libraries) if safe_directory(d)]
    if plat != "win32":
        links = alias_dir(create=False)
        if links is not None and any(links.iterdir()):
            dirs.append(str(links))
    var, sep = library_path_variable(plat)
    old = env.get(var, "")
    if plat != "win32":
        old = sep.join(e for e in old.split(sep) if e and os.path.isabs(e) and safe_directory(Path(e)))
    value = prepend_path(old, dirs, sep)
    if value:
        env[var] = value
    else:
        env.pop(var, None)
    return env


def _default_libraries(machine: Machine) -> Sequence[Library]:
    from ..dllpath import preloaded

    done = preloaded()
    if done:
        return done
    from .._libs.needs import resolve_needs
    from ..consumers.installed import installed_needs

    return resolve_needs(machine, installed_needs(machine)).libraries
