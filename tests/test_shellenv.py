"""gpuboot env's lines for each shell, Dockerfile and systemd, run in a real bash."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_env_command_shells(tmp_path: Path) -> None:
    from gpuboot.startup.shellenv import render, snippets

    dirs = ["/opt/site/nvidia/cublas/lib", "/opt/site/nvidia/cudnn/lib"]
    joined = ":".join(dirs)
    keep_old = "${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    assert render("bash", dirs, "linux") == f"export LD_LIBRARY_PATH='{joined}'\"{keep_old}\""
    assert render("fish", dirs, "linux") == f"set -gx --prepend LD_LIBRARY_PATH '{dirs[0]}' '{dirs[1]}'"
    assert render("powershell", [r"C:\a b\bin"], "win32") == r"$env:PATH = 'C:\a b\bin;' + $env:PATH"
    assert render("cmd", [r"C:\x"], "win32") == r'set "PATH=C:\x;%PATH%"'
    docker_old = "${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"
    assert snippets(dirs, "linux")["dockerfile"] == f"ENV LD_LIBRARY_PATH={joined}{docker_old}"
    with pytest.raises(ValueError):
        render("tcsh", dirs, "linux")


def test_env_bash_line_leaves_no_empty_entry(tmp_path: Path) -> None:
    """Evaluate the printed line in a real bash, with LD_LIBRARY_PATH unset and set."""
    import subprocess

    from gpuboot.startup.shellenv import render

    line = render("bash", ["/a b/lib", "/c"], "linux")
    out = subprocess.run(["bash", "-c", f"unset LD_LIBRARY_PATH; {line}; printf %s \"$LD_LIBRARY_PATH\""],
                         capture_output=True, text=True, check=True).stdout
    assert out == "/a b/lib:/c"
    out = subprocess.run(["bash", "-c", f"export LD_LIBRARY_PATH=/old; {line}; printf %s \"$LD_LIBRARY_PATH\""],
                         capture_output=True, text=True, check=True).stdout
    assert out == "/a b/lib:/c:/old"
