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

Stub libraries (gcc, compiled against NVIDIA's own ``cuda.h`` and ``nvml.h``)
stand in for what the real driver cannot give without a GPU: an NVML that
answers (driver and CUDA versions, one GPU's name, compute capability, memory,
UUID and PCI id, ``nvmlInitWithFlags`` as pynvml calls it) and ``libcuda``s
whose ``cuInit`` returns a chosen cuda.h code (34, 46 at context creation, 802,
803, 804, 999, or 0 with GPUs counted).  pynvml in the scenario's process and
gpuboot's probe child load the same stubs by name.  Each says it is a stub in
its symbols (``gpuboot_test_stub_libcuda``/``_nvml``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

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


GiB = 2**30
STUBS = Path(__file__).parent / "data" / "stubs"


@dataclass(frozen=True)
class StubGPU:
    """One GPU as the stub libraries describe it (values from NVIDIA's spec pages and the PCI ID Repository)."""

    name: str
    cc: Tuple[int, int]
    total: int
    uuid: str
    bus_id: str
    device_id: int  # PCI device id (vendor 0x10de)
    compute_mode: int = 0  # cuda.h CUcomputemode / nvml.h nvmlComputeMode_t: 0 default, 2 prohibited, 3 exclusive
    context: str = "CUDA_SUCCESS"  # what cuDevicePrimaryCtxRetain returns (a cuda.h name)
    mig_capable: bool = False


RTX_4090 = StubGPU("NVIDIA GeForce RTX 4090", (8, 9), 24 * GiB, "GPU-5f3c2b9e-8d41-4a7c-9e0b-2d6f1a4c7e91",
                   "00000000:01:00.0", 0x2684)
TESLA_K80 = StubGPU("Tesla K80", (3, 7), 12 * GiB, "GPU-7a1e0c33-5b2d-4e8f-9c61-0d3b4a5e6f70", "00000000:05:00.0",
                    0x102D)
GTX_980 = StubGPU("NVIDIA GeForce GTX 980", (5, 2), 4 * GiB, "GPU-3c9b1d20-7e4a-4f16-8a2c-5b0e9d7f1a42",
                  "00000000:02:00.0", 0x13C0)
GTX_1080 = StubGPU("NVIDIA GeForce GTX 1080", (6, 1), 8 * GiB, "GPU-9e2f4a61-0c7b-4d35-b18e-6a3d5c2f0b97",
                   "00000000:03:00.0", 0x1B80)
A100_SXM = StubGPU("NVIDIA A100-SXM4-40GB", (8, 0), 40 * GiB, "GPU-1f6d8b24-9a3e-4c70-8e15-c2b7a0d4f863",
                   "00000000:07:00.0", 0x20B0, mig_capable=True)
RTX_5090 = StubGPU("NVIDIA GeForce RTX 5090", (12, 0), 32 * GiB, "GPU-c4a7e9b2-6d13-4f0a-9b58-3e2d1f7a6c05",
                   "00000000:01:00.0", 0x2B85)
H100_SXM = StubGPU("NVIDIA H100 80GB HBM3", (9, 0), 80 * GiB, "GPU-0b7d9a42-3c1e-4f58-a6d2-91e4c07b5f13",
                   "00000000:18:00.0", 0x2330, mig_capable=True)


def headers() -> Tuple[Path, Path]:
    """The directories holding the real ``cuda.h`` (the CUDA toolkit on these machines) and ``nvml.h`` (the
    ``nvidia-nvml-dev`` wheel, a test dependency): the stubs are compiled against NVIDIA's own declarations, so
    their codes, struct layouts and names are the real ones."""
    cuda = [Path(p) for p in (os.environ.get("CUDA_HOME", ""), "/usr/local/cuda", "/usr/local/cuda-13.0") if p]
    nvcc = shutil.which("nvcc")
    if nvcc:
        cuda.insert(0, Path(os.path.realpath(nvcc)).parent.parent)
    cuda_inc = next((d / "include" for d in cuda if (d / "include" / "cuda.h").exists()), None)
    nvml_inc = None
    for entry in sys.path:
        for sub in ("nvidia/cu13/include", "nvidia/cuda_nvml_dev/include", "nvidia/nvml_dev/include"):
            if entry and (Path(entry) / sub / "nvml.h").exists():
                nvml_inc = Path(entry) / sub
                break
        if nvml_inc:
            break
    if cuda_inc is None:
        require_real("the CUDA toolkit's cuda.h (/usr/local/cuda/include)")
    if nvml_inc is None:
        require_real("nvml.h from the nvidia-nvml-dev wheel (pip install nvidia-nvml-dev)")
    assert cuda_inc is not None and nvml_inc is not None
    return cuda_inc, nvml_inc


def _c_str(text: str) -> str:
    return json.dumps(text)  # a C string literal for ASCII text


#: Stubs compiled by this test process, by a hash of what made them: each source is compiled once and copied after
#: (into a directory removed when the interpreter exits).
_COMPILED: Dict[str, Path] = {}
_BUILD_DIR: list = []


def _compile(directory: Path, base: str, source: str, file_version: str, include: Path) -> Path:
    import hashlib
    import tempfile

    directory.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(repr((base, source, str(include))).encode()).hexdigest()
    built = _COMPILED.get(key)
    if built is None or not built.exists():
        if not _BUILD_DIR:
            _BUILD_DIR.append(tempfile.TemporaryDirectory(prefix="gpuboot-stubs-"))
        work = Path(_BUILD_DIR[0].name) / key[:16]
        work.mkdir(exist_ok=True)
        src = work / f"{base}-stub.c"
        src.write_text(source)
        built = work / f"{base}.so"
        subprocess.run(["gcc", "-shared", "-fPIC", "-Wall", "-Werror", f"-I{include}", f"-Wl,-soname,{base}.so.1",
                        "-o", str(built), str(src)], check=True, capture_output=True)
        _COMPILED[key] = built
    real = directory / f"{base}.so.{file_version}"
    shutil.copy(built, real)
    link = directory / f"{base}.so.1"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(real.name)
    return directory


STUB_CUDA_C = (STUBS / "libcuda.c.in").read_text()  # a str.format template: {{ }} are C braces

STUB_NVML_C = (STUBS / "libnvidia-ml.c.in").read_text()  # a str.format template: {{ }} are C braces


def _list(values: Sequence[Any], fmt: Any = str) -> str:
    return ", ".join(fmt(v) for v in values) or "0"


def stub_cuda(directory: Path, *, cu_init: str = "CUDA_SUCCESS", version: int = 12040,
              gpus: Sequence[StubGPU] = (RTX_4090,), file_version: str = "550.54.14") -> Path:
    """A ``libcuda.so.1`` in ``directory`` (real file ``libcuda.so.<file_version>``, as the driver's is named)
    whose ``cuInit`` returns ``cu_init`` (a cuda.h name), ``cuDriverGetVersion`` ``version``, and which counts
    ``gpus`` once initialised."""
    cuda_inc, _ = headers()
    src = STUB_CUDA_C.format(cu_init=cu_init, version=version, count=len(gpus),
                             modes=_list([g.compute_mode for g in gpus]), contexts=_list([g.context for g in gpus]),
                             buses=_list([g.bus_id for g in gpus], _c_str) if gpus else '""',
                             names=_list([g.name for g in gpus], _c_str) if gpus else '""',
                             majors=_list([g.cc[0] for g in gpus]), minors=_list([g.cc[1] for g in gpus]))
    return _compile(directory, "libcuda", src, file_version, cuda_inc)


def stub_nvml(directory: Path, *, init: str = "NVML_SUCCESS", driver: str = "550.54.14", cuda: int = 12040,
              gpus: Sequence[StubGPU] = (RTX_4090,), file_version: Optional[str] = None) -> Path:
    """A ``libnvidia-ml.so.1`` in ``directory`` whose ``nvmlInitWithFlags``/``nvmlInit_v2`` return ``init`` (an
    nvml.h name) and, once initialised, answers as driver ``driver`` (CUDA ``cuda``) with ``gpus`` -- everything
    pynvml and gpuboot's probe call, with nvml.h's types."""
    _, nvml_inc = headers()
    src = STUB_NVML_C.format(init=init, driver=driver, cuda=cuda, count=len(gpus), slots=max(1, len(gpus)),
                             nvml_version=f"12.{driver}", names=_list([g.name for g in gpus], _c_str) or '""',
                             uuids=_list([g.uuid for g in gpus], _c_str), buses=_list([g.bus_id for g in gpus], _c_str),
                             device_ids=_list([hex(g.device_id) for g in gpus]),
                             majors=_list([g.cc[0] for g in gpus]), minors=_list([g.cc[1] for g in gpus]),
                             mig=_list([int(g.mig_capable) for g in gpus]),
                             modes=_list([g.compute_mode for g in gpus]), totals=_list([f"{g.total}ULL" for g in gpus]))
    return _compile(directory, "libnvidia-ml", src, file_version or driver, nvml_inc)


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
    from gpuboot.machine.probe import probe_driver
    from gpuboot.doctor import diagnose, gather
    from gpuboot.select import select_device
    root = sys.argv[1]
    probe = probe_driver(root=root)
    from gpuboot.machine.snapshot import Machine
    with Machine(probe=probe, ask_consumers=False).scope():
        report = diagnose(gather(consumers=["ctranslate2"]))
        choice = select_device()
    print(json.dumps({"exit": report.exit_code, "answered": report.answered, "nvml_answered": report.nvml_answered,
                      "findings": [[f.id, f.severity, f.title, f.remedy] for f in report.findings],
                      "reason": choice.reason, "kind": choice.kind, "ct2_device": choice.ct2_device,
                      "compute_type": choice.compute_type, "probe": probe.to_dict(), "json": report.to_dict(),
                      "text": report.render(),
                      "dev": sorted(n for n in os.listdir("/dev") if n.startswith("nvidia"))}))
""")


def run(tmp: Path, *, libdirs: Sequence[Path] = (), kernel_module: Optional[str] = None,
        nodes: Sequence[str] = (), container: bool = False, wsl: bool = False,
        env: Optional[Dict[str, str]] = None, mknod: bool = False, code: str = REPORT,
        args: Sequence[str] = ()) -> Dict[str, Any]:
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
        code, args: the script the scenario runs (``REPORT``) and its arguments after the host root.
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
                           *drop, sys.executable, str(script), str(host), *args],
                          capture_output=True, text=True, timeout=300, env=full_env)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"scenario failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}")
    out: Dict[str, Any] = json.loads(lines[-1])
    return out
