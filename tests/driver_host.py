"""The driver scenarios' harness: the REAL NVIDIA user-space driver, each scenario in a private mount namespace.

Provisioning (cached under ``~/.cache/gpuboot-tests/driver-535.261.03``):
Debian bookworm ``non-free``'s ``libcuda1``, ``libnvidia-ml1`` and
``libnvidia-ptxjitcompiler1`` at 535.261.03, fetched with ``apt-get download``
through a private sources list (the machine's own apt configuration is not
touched) and unpacked with ``dpkg-deb -x``: never installed, so the machine
stays driverless.

Running: every scenario runs in ``unshare -m --propagation private`` with a
tmpfs copy of ``/dev`` and a tmpfs on ``/proc/driver`` (holding the kernel
module's ``nvidia/version`` when the scenario has one): ``libcuda`` run as
root creates ``/dev/nvidiactl`` itself, and it must never do that on the real
``/dev``.  The child also runs without ``CAP_MKNOD`` (``setpriv``) unless a
scenario checks gpuboot's own guard against that.  The host facts the probe
reads (container markers, WSL files) come from a scenario root whose ``dev``
and ``proc`` are the namespace's own.

Stub libraries (gcc) stand in only for the codes the real driver cannot give
without a GPU: ``cuInit`` 34, 35, 803, 804, 999 and ``nvmlInit`` 18, 999; each
is built under the scenario's name and says it is a stub in its symbols.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from helpers import require_real

VERSION = "535.261.03"
PACKAGES = ("libcuda1", "libnvidia-ml1", "libnvidia-ptxjitcompiler1")
CACHE = Path(os.environ.get("GPUBOOT_DRIVER_CACHE", Path.home() / ".cache" / "gpuboot-tests" / f"driver-{VERSION}"))
ROOT = Path(__file__).resolve().parent.parent


def _mirror() -> str:
    """The Debian mirror this machine's apt uses (its sources files), else deb.debian.org."""
    for path in [*sorted(Path("/etc/apt/sources.list.d").glob("*.sources")), Path("/etc/apt/sources.list")]:
        try:
            text = path.read_text()
        except OSError:
            continue
        m = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, flags=re.M) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s", text, flags=re.M)
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def real_driver() -> Path:
    """The directory holding the real ``libcuda.so.1`` and ``libnvidia-ml.so.1`` (provisioned once)."""
    libdir = CACHE / "root" / "usr" / "lib" / "x86_64-linux-gnu" / "nvidia" / "current"
    if (libdir / "libcuda.so.1").exists() and (libdir / "libnvidia-ml.so.1").exists():
        return libdir
    if os.geteuid() != 0 or shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        require_real("the real NVIDIA user-space driver (root with apt-get and dpkg-deb, to fetch Debian's "
                     f"libcuda1 {VERSION})")
    work = CACHE / "apt"
    (work / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (work / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    sources = work / "sources.list"
    sources.write_text(f"deb {_mirror()} bookworm main non-free\n")
    opts = ["-o", f"Dir::Etc::sourcelist={sources}", "-o", "Dir::Etc::sourceparts=-", "-o",
            f"Dir::State::Lists={work / 'lists'}", "-o", f"Dir::Cache={work / 'cache'}", "-o",
            "APT::Sandbox::User=root"]
    subprocess.run(["apt-get", *opts, "-qq", "update"], check=True, capture_output=True, timeout=300)
    subprocess.run(["apt-get", *opts, "-qq", "download", *(f"{p}={VERSION}-1" for p in PACKAGES)], check=True,
                   capture_output=True, timeout=300, cwd=work)
    for deb in work.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(CACHE / "root")], check=True, capture_output=True)
    assert (libdir / "libcuda.so.1").exists(), sorted(p.name for p in libdir.iterdir())
    return libdir


def namespaces_available() -> None:
    """Skip (or fail under CI) where a private mount namespace cannot be made."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("setpriv") is None:
        require_real("a private mount namespace (root, unshare and setpriv)")
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        require_real(f"a private mount namespace (unshare -m failed: {probe.stderr.decode().strip()})")


STUB_CUDA_C = """
/* gpuboot test stub: a libcuda.so.1 that answers {cuinit} to cuInit (a code the
   real driver cannot give without a GPU).  Not NVIDIA's. */
int gpuboot_test_stub_libcuda = 1;
int cuDriverGetVersion(int *v) {{ *v = {version}; return 0; }}
int cuInit(unsigned flags) {{ (void)flags; return {cuinit}; }}
int cuDeviceGetCount(int *n) {{ *n = 0; return 3; }}
"""
STUB_NVML_C = """
/* gpuboot test stub: a libnvidia-ml.so.1 whose nvmlInit_v2 returns {code}.  Not NVIDIA's. */
int gpuboot_test_stub_nvml = 1;
int nvmlInit_v2(void) {{ return {code}; }}
int nvmlInit(void) {{ return {code}; }}
int nvmlShutdown(void) {{ return 0; }}
int nvmlSystemGetDriverVersion(char *b, unsigned n) {{ (void)b; (void)n; return 1; }}
int nvmlSystemGetCudaDriverVersion_v2(int *v) {{ (void)v; return 1; }}
int nvmlSystemGetCudaDriverVersion(int *v) {{ (void)v; return 1; }}
int nvmlDeviceGetCount_v2(unsigned *n) {{ *n = 0; return 1; }}
"""


def stub_library(directory: Path, kind: str, code: int, *, file_version: str = VERSION,
                 cuda_version: int = 12020) -> Path:
    """A gcc-built ``libcuda.so.1`` (``kind="cuda"``) or ``libnvidia-ml.so.1``
    (``"nvml"``) in ``directory`` whose init returns ``code``; the real file is
    named with ``file_version`` as the driver's are (``libcuda.so.<version>``)."""
    directory.mkdir(parents=True, exist_ok=True)
    base = "libcuda" if kind == "cuda" else "libnvidia-ml"
    src = directory / f"{base}.c"
    src.write_text(STUB_CUDA_C.format(cuinit=code, version=cuda_version) if kind == "cuda"
                   else STUB_NVML_C.format(code=code))
    real = directory / f"{base}.so.{file_version}"
    subprocess.run(["gcc", "-shared", "-fPIC", f"-Wl,-soname,{base}.so.1", "-o", str(real), str(src)], check=True,
                   capture_output=True)
    src.unlink()
    link = directory / f"{base}.so.1"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(real.name)
    return directory


def only(directory: Path, libdir: Path, names: Sequence[str]) -> Path:
    """A directory holding links to just ``names`` from ``libdir`` (a container that was given NVML but not libcuda)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = os.path.realpath(libdir / name)
        (directory / Path(target).name).symlink_to(target)
        (directory / name).symlink_to(Path(target).name)
    return directory


#: What the child runs in the namespace: the probe, doctor (everything else
#: real) and select_device's reason, as JSON on the last line.
REPORT = textwrap.dedent("""
    import json, os, sys
    from gpuboot._gpus.probe import probe_driver
    from gpuboot.doctor import diagnose, gather
    from gpuboot.select import select_device
    root = sys.argv[1]
    probe = probe_driver(root=root)
    report = diagnose(gather(probe=probe, consumers=["ctranslate2"]))
    choice = select_device(probe=probe, reconcile=False)
    print(json.dumps({"exit": report.exit_code, "answered": report.answered,
                      "findings": [[f.id, f.severity, f.title, f.remedy] for f in report.findings],
                      "reason": choice.reason, "probe": probe.to_dict(), "json": report.to_dict(),
                      "dev": sorted(n for n in os.listdir("/dev") if n.startswith("nvidia"))}))
""")


def run(tmp: Path, *, libdirs: Sequence[Path] = (), kernel_module: Optional[str] = None,
        nodes: Sequence[str] = (), container: bool = False, wsl: bool = False,
        env: Optional[Dict[str, str]] = None, mknod: bool = False, code: str = REPORT) -> Dict[str, Any]:
    """Run ``code`` for one scenario in a private mount namespace; its last line's JSON.

    Args:
        libdirs: what goes on ``LD_LIBRARY_PATH`` (the driver's libraries, stubs).
        kernel_module: the version ``/proc/driver/nvidia/version`` names, or
            ``None``: no kernel module loaded.
        nodes: device nodes made in the namespace's ``/dev`` (``nvidiactl``...).
        container: the scenario root carries ``/.dockerenv``.
        wsl: ``/dev/dxg`` and ``/usr/lib/wsl/lib/libcuda.so.1`` (a real
            libcuda copy) in the scenario root.
        env: extra environment (``NVIDIA_VISIBLE_DEVICES``, ...).
        mknod: keep ``CAP_MKNOD`` (root's default): checks gpuboot's guard.
    """
    host = tmp / "host"
    host.mkdir(parents=True, exist_ok=True)
    (host / "dev").symlink_to("/dev")
    (host / "proc").symlink_to("/proc")
    if container:
        (host / ".dockerenv").write_text("")
    if wsl:
        wsl_lib = host / "usr" / "lib" / "wsl" / "lib"
        wsl_lib.mkdir(parents=True)
        (wsl_lib / "libcuda.so.1").write_bytes(b"")
    script = tmp / "scenario.py"
    script.write_text(code)
    # The namespace starts from a host without NVIDIA anything, whatever runs the tests: the /dev copy
    # drops nvidia* nodes and dxg, and every driver library the system loader knows (a machine with a
    # driver) is hidden behind /dev/null, so only the scenario's own libraries can be found.
    setup = ["set -e",
             'mkdir -p "$DEVCOPY" && mount -t tmpfs tmpfs "$DEVCOPY"',
             'cp -a /dev/. "$DEVCOPY"/ 2>/dev/null || true',
             'rm -f "$DEVCOPY"/nvidia* "$DEVCOPY"/dxg',
             'mount --bind "$DEVCOPY" /dev',
             "mount -t tmpfs tmpfs /proc/driver",
             "for f in $( { ldconfig -p 2>/dev/null || true; }"
             " | sed -n 's/.*\\(libcuda\\|libnvidia-ml\\)\\.so.* => //p');"
             ' do mount --bind /dev/null "$f" 2>/dev/null || true; done',
             "[ ! -d /usr/lib/wsl/lib ] || mount -t tmpfs tmpfs /usr/lib/wsl/lib"]
    if kernel_module:
        setup += ["mkdir -p /proc/driver/nvidia",
                  f'printf "NVRM version: NVIDIA UNIX x86_64 Kernel Module  {kernel_module}  '
                  'Thu Feb 22 01:44:30 UTC 2024\\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\\n" '
                  "> /proc/driver/nvidia/version"]
    for node in nodes:
        minor = 255 if node == "nvidiactl" else (254 if node == "nvidia-uvm" else int(node[len("nvidia"):] or 0))
        setup.append(f"mknod /dev/{node} c 195 {minor}")
    if wsl:
        setup.append("touch /dev/dxg")
    drop = [] if mknod else ["setpriv", "--bounding-set=-mknod"]
    setup.append('exec "$@"')
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("NVIDIA_", "LD_LIBRARY_PATH", "CUDA_"))}
    full_env.update({"DEVCOPY": str(tmp / "devcopy"), "LD_LIBRARY_PATH": ":".join(str(d) for d in libdirs),
                     **(env or {})})
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", "\n".join(setup), "scenario",
                           *drop, sys.executable, str(script), str(host)],
                          capture_output=True, text=True, timeout=300, env=full_env)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"scenario failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}")
    out: Dict[str, Any] = json.loads(lines[-1])
    return out
