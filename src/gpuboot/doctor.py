"""``gpuboot doctor``: every known way GPU start-up goes wrong, with the fix.

Each check reads a ``Context`` (gathered once, every part injectable for
tests) and returns ``Finding``s: an id, a severity, the evidence (paths,
versions) and a remedy that is an exact command or a one-line instruction.
Nothing heavy is imported: versions come from ``importlib.metadata``.

The JSON form (``gpuboot doctor --json``) follows ``gpuboot/doctor-schema.json``
(``schema_version`` 1), shipped in the package (``json_schema()``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from . import _catalog as cat
from .consumers import Need, needs_of, read_metadata

__all__ = ["json_schema", "Finding", "Context", "Report", "gather", "diagnose", "DRIVER_MINIMUMS", "SCHEMA_VERSION",
           "CHECKS", "CONSUMER_ALIASES"]

SCHEMA_VERSION = 1


def json_schema() -> Dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``gpuboot doctor --json``, read from
    ``doctor-schema.json`` inside the installed package."""
    import json
    from importlib import resources

    text = resources.files(__package__).joinpath("doctor-schema.json").read_text(encoding="utf-8")
    data: Dict[str, Any] = json.loads(text)
    return data
SEVERITIES = ("ok", "info", "warning", "problem")

#: Minimum driver per CUDA major (CUDA Toolkit release notes, "CUDA Toolkit and
#: Corresponding Driver Versions" / minor version compatibility table).
DRIVER_MINIMUMS: Mapping[int, Mapping[str, str]] = {
    11: {"linux": "450.80.02", "win32": "452.39"},
    12: {"linux": "525.60.13", "win32": "528.33"},
    13: {"linux": "580.65.06", "win32": "580.88"},
}

#: consumer names (``diagnose(consumer=)``, ``gpuboot doctor --for``) -> distribution names.
CONSUMER_ALIASES: Mapping[str, str] = {"ctranslate2": "ctranslate2", "torch": "torch",
                                       "onnxruntime": "onnxruntime-gpu"}

#: torch's CUDA wheel indexes by the newest CUDA they need (pytorch.org "Get
#: started" matrix); the newest one the driver supports is recommended.
TORCH_CUDA_INDEXES: Tuple[Tuple[Tuple[int, int], str], ...] = (
    ((13, 0), "cu130"), ((12, 8), "cu128"), ((12, 6), "cu126"), ((12, 4), "cu124"), ((12, 1), "cu121"),
    ((11, 8), "cu118"),
)


@dataclass(frozen=True)
class Finding:
    """One check's result.

    Attributes:
        id: stable identifier (``"missing-library"``), for scripts and bug reports.
        severity: ``"ok"``, ``"info"``, ``"warning"`` or ``"problem"``.
        title: one line for a terminal.
        evidence: paths, versions, values that show it.
        remedy: an exact command or a one-line instruction, or ``None``.
    """

    id: str
    severity: str
    title: str
    evidence: Tuple[str, ...] = ()
    remedy: Optional[str] = None


@dataclass
class Context:
    """Everything the checks read.  ``gather()`` fills it from this process."""

    platform: str
    environ: Mapping[str, str]
    initial_environ: Optional[Mapping[str, str]]
    driver_present: bool
    driver_evidence: str
    inventory: Any  # devices.Inventory
    needs: List[Need]
    installed: List[Any]  # locate() inventory: list[Library]
    loaded: List[str]  # paths of shared objects mapped in this process
    search_paths: Optional[Sequence[str]] = None
    metadata: Callable[[str], Optional[Tuple[str, Sequence[str]]]] = field(default=lambda name: None)
    wsl: bool = False
    cpu_threads: Optional[int] = None  # None: this process's (affinity, cgroup quota)


@dataclass(frozen=True)
class Report:
    findings: Tuple[Finding, ...]
    context: Context

    @property
    def problems(self) -> List[Finding]:
        return [f for f in self.findings if f.severity == "problem"]

    @property
    def exit_code(self) -> int:
        """0 healthy (warnings allowed), 1 when a problem was found."""
        return 1 if self.problems else 0

    def to_json(self) -> Dict[str, Any]:
        inv = self.context.inventory
        return {
            "schema_version": SCHEMA_VERSION,
            "platform": self.context.platform,
            "driver": {"present": self.context.driver_present, "evidence": self.context.driver_evidence,
                       "version": inv.driver_version,
                       "cuda_version": list(inv.cuda_driver_version) if inv.cuda_driver_version else None},
            "devices": [{"nvml_index": d.nvml_index, "cuda_ordinal": d.cuda_ordinal, "uuid": d.uuid, "name": d.name,
                         "compute_capability": list(d.compute_capability), "total_memory": d.total_memory,
                         "free_memory": d.free_memory, "mig_enabled": d.mig_enabled} for d in inv.devices],
            "needs": [{"consumer": n.consumer, "version": n.version, "cuda_major": n.cuda_major,
                       "cudnn_major": n.cudnn_major, "libraries": list(n.libraries), "optional": list(n.optional),
                       "source": n.source} for n in self.context.needs],
            "installed": [{"name": lib.name, "filename": lib.filename, "path": str(lib.path),
                           "cuda_major": lib.cuda_major, "distribution": lib.distribution, "version": lib.version,
                           "source": lib.source} for lib in self.context.installed],
            "findings": [{"id": f.id, "severity": f.severity, "title": f.title, "evidence": list(f.evidence),
                          "remedy": f.remedy} for f in self.findings],
            "exit_code": self.exit_code,
        }

    def render(self) -> str:
        """One line per finding (``ok`` / ``info`` / ``warning`` / ``problem``),
        evidence and remedy indented underneath."""
        lines: List[str] = []
        for f in self.findings:
            lines.append(f"{f.severity:<8}{f.title}")
            lines.extend(f"          {e}" for e in f.evidence)
            if f.remedy:
                lines.append(f"          fix: {f.remedy}")
        n = len(self.problems)
        w = sum(1 for f in self.findings if f.severity == "warning")
        lines.append(f"{n} problem{'s' if n != 1 else ''}, {w} warning{'s' if w != 1 else ''}")
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- gathering


def _initial_environ() -> Optional[Dict[str, str]]:
    """The environment this process started with (``/proc/self/environ``):
    what the dynamic loader read at start."""
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        return None
    out: Dict[str, str] = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, _, v = item.partition(b"=")
            out[os.fsdecode(k)] = os.fsdecode(v)
    return out


def _loaded_objects() -> List[str]:
    from ._loaded import mapped_paths

    return mapped_paths()


def gather(*, consumers: Optional[Sequence[str]] = None, platform: Optional[str] = None,
           environ: Optional[Mapping[str, str]] = None, search_paths: Optional[Sequence[str]] = None,
           nvml: Any = None, driver: Optional[bool] = None,
           metadata: Optional[Callable[[str], Optional[Tuple[str, Sequence[str]]]]] = None,
           loaded: Optional[List[str]] = None, initial_environ: Optional[Mapping[str, str]] = None,
           wsl: Optional[bool] = None, cpu_threads: Optional[int] = None) -> Context:
    """Read this process and machine into a ``Context``; every argument
    replaces one source (tests)."""
    from ._driver import DriverInfo, detect_driver
    from ._platform import check_platform
    from ._resolve import locate
    from .consumers import CONSUMERS, installed_needs
    from .devices import discover

    plat = check_platform(platform)
    env = dict(os.environ if environ is None else environ)
    meta = metadata or read_metadata
    info = detect_driver(plat) if driver is None else DriverInfo(driver, "given by the caller")
    present, evidence = info.present, info.evidence
    names = CONSUMERS if consumers is None else tuple(consumers)
    needs = installed_needs(names, meta)
    inv = discover(nvml=nvml, environ=env, driver=info)
    installed = locate(search_paths=search_paths, platform=plat)
    if wsl is None:
        wsl = os.path.exists("/usr/lib/wsl/lib/libcuda.so.1") or "microsoft" in _read("/proc/version").lower()
    return Context(plat, env, _initial_environ() if initial_environ is None and environ is None else initial_environ,
                   present, evidence, inv, needs, installed,
                   _loaded_objects() if loaded is None else loaded, search_paths, meta, wsl, cpu_threads)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


# --------------------------------------------------------------------------- checks


def check_driver(ctx: Context) -> List[Finding]:
    inv = ctx.inventory
    if not ctx.driver_present:
        out = [Finding("no-driver", "info", "NVIDIA driver: not found", (ctx.driver_evidence,),
                       "install the NVIDIA driver to use a GPU (https://www.nvidia.com/drivers)")]
        wheels = [lib for lib in ctx.installed if lib.source == "wheel"]
        needed = {name for n in ctx.needs for name in (*n.libraries, *n.optional)}
        needed = needed | {d for name in needed for d in cat.spec(name).depends + cat.spec(name).parts}
        kept_dists = {lib.distribution for lib in wheels if lib.name in needed and lib.distribution}
        spare = [lib for lib in wheels if lib.name not in needed and lib.distribution not in kept_dists]
        if spare:
            size = 0
            for lib in spare:
                try:
                    size += lib.path.stat().st_size
                except OSError:
                    pass
            dists = sorted({lib.distribution for lib in spare if lib.distribution})
            kept = sorted(d for d in kept_dists if d)
            out.append(Finding(
                "wheels-without-driver", "warning",
                f"NVIDIA wheels that no installed consumer needs ({size / 2**30:.2f} GiB of libraries), and no "
                "driver to use them", (*(dists or [str(w.path) for w in spare[:5]]),
                                       *(f"kept, needed by a consumer: {d}" for d in kept)),
                ("pip uninstall -y " + " ".join(dists)) if dists else "remove the NVIDIA wheels or install a driver"))
        return out
    version = inv.driver_version or "unknown version"
    cuda = f"CUDA {inv.cuda_driver_version[0]}.{inv.cuda_driver_version[1]}" if inv.cuda_driver_version else "CUDA ?"
    return [Finding("driver", "ok", f"NVIDIA driver {version} (supports up to {cuda})", (ctx.driver_evidence,))]


def check_driver_age(ctx: Context) -> List[Finding]:
    cuda_v = ctx.inventory.cuda_driver_version
    if cuda_v is None or not ctx.driver_present:
        return []
    out = []
    for n in ctx.needs:
        if cuda_v[0] < n.cuda_major:
            minimum = DRIVER_MINIMUMS.get(n.cuda_major, {}).get(ctx.platform, "?")
            out.append(Finding(
                "driver-too-old", "problem",
                f"{n.consumer} {n.version} needs CUDA {n.cuda_major}, but the driver supports only up to "
                f"CUDA {cuda_v[0]}.{cuda_v[1]}",
                (f"driver {ctx.inventory.driver_version}", f"source: {n.source}"),
                f"upgrade the NVIDIA driver to >= {minimum} (CUDA {n.cuda_major} minimum on "
                f"{'Windows' if ctx.platform == 'win32' else 'Linux'})"))
    return out


def check_devices(ctx: Context) -> List[Finding]:
    inv = ctx.inventory
    out: List[Finding] = []
    for d in inv.devices:
        out.append(Finding("gpu", "ok", f"GPU {d.describe()}", (d.uuid,)))
    for index, reason in inv.skipped:
        out.append(Finding("gpu-unreadable", "warning", f"GPU NVML {index} could not be read: {reason}", (),
                           "check permissions on /dev/nvidia* (run `ls -l /dev/nvidia*`) or the GPU's health "
                           "(`nvidia-smi -q`)"))
    visible = ctx.environ.get("CUDA_VISIBLE_DEVICES")
    if inv.devices and not inv.visible and visible is not None:
        out.append(Finding("visible-devices-hide-all", "problem",
                           f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU: CUDA sees none",
                           tuple(f"NVML {d.nvml_index}: {d.uuid}" for d in inv.devices),
                           "unset CUDA_VISIBLE_DEVICES, or list devices that exist (e.g. "
                           f"CUDA_VISIBLE_DEVICES=0 or ={inv.devices[0].uuid})"))
    migs = [d for d in inv.devices if d.mig_enabled]
    if migs:
        out.append(Finding("mig-enabled", "info",
                           f"MIG is enabled on {len(migs)} GPU(s): a CUDA process uses at most one MIG instance",
                           tuple(f"{m.uuid}: {len(m.mig_instances)} instance(s)" for m in migs),
                           "choose an instance with CUDA_VISIBLE_DEVICES=MIG-<uuid> (see `nvidia-smi -L`)"))
    for w in inv.warnings:
        if "CUDA_DEVICE_ORDER" in w:
            out.append(Finding("device-order", "warning", "CUDA ordinals of mixed GPUs are a heuristic", (w,),
                               "export CUDA_DEVICE_ORDER=PCI_BUS_ID"))
    if ctx.wsl:
        out.append(Finding("wsl", "info", "WSL2: the driver is Windows'; libcuda is /usr/lib/wsl/lib/libcuda.so.1",
                           ("/usr/lib/wsl/lib",),
                           "do not install a Linux NVIDIA driver inside WSL; update the Windows driver instead"))
    return out


def check_libraries(ctx: Context) -> List[Finding]:
    """missing-library, wrong-major, cudnn-mismatch, and ok for what is there."""
    from ._needs import resolve_need
    from ._resolve import resolve

    out: List[Finding] = []
    for n in ctx.needs:
        res = resolve_need(n, with_optional=False, search_paths=ctx.search_paths, platform=ctx.platform,
                           environ=ctx.environ)
        head = f"{n.consumer} {n.version} needs CUDA {n.cuda_major}"
        upgrade = _upgrade_first(ctx, n)
        if upgrade is not None:
            out.append(upgrade)
            continue
        # Without a driver nothing can use the libraries yet: a missing one is
        # noted with its fix, never a problem that installing would turn into
        # "wheels without a driver".
        severity = "problem" if ctx.driver_present else "info"
        if "cudnn" in n.libraries and n.cudnn_major:
            head += f" + cuDNN {n.cudnn_major}"
        if not res.missing:
            found = [lib for lib in res.libraries if lib.name in n.libraries]
            out.append(Finding("consumer-ready", "ok", f"{head}: found",
                               (*tuple(f"{lib.filename}: {lib.path}" for lib in found), f"source: {n.source}")))
        absent: Dict[str, List[str]] = {}  # one finding per fix command
        wrong: Dict[str, Tuple[List[str], List[str], Set[int]]] = {}
        for m in res.missing:
            others = [o for o in m.other_versions if o.name == m.name]
            if m.name.startswith("cudnn") and others and n.cudnn_major is not None:
                other_majors = sorted({o.major for o in others})
                out.append(Finding(
                    "cudnn-mismatch", "problem",
                    f"{head}, but only cuDNN {', '.join(map(str, other_majors))} is installed",
                    (*tuple(f"{o.filename}: {o.path}" for o in others), f"source: {n.source}"),
                    m.fix))
            elif others:
                wanted = cat.spec(m.name).filenames(ctx.platform, m.major or 0)
                files, evidence, majors = wrong.setdefault(m.fix, ([], [], set()))
                files.append(wanted[0] if wanted else m.name)
                evidence.extend(f"{o.filename}: {o.path}" for o in others)
                majors.update(o.cuda_major for o in others if o.cuda_major is not None)
            else:
                names = cat.spec(m.name).filenames(ctx.platform, m.major or 0)
                absent.setdefault(m.fix, []).append(names[0] if names else m.name)
        for fix, (files, evidence, majors) in wrong.items():
            out.append(Finding(
                "wrong-major", severity,
                f"{head}: {', '.join(files)} {'is' if len(files) == 1 else 'are'} missing; only CUDA "
                f"{', '.join(map(str, sorted(majors))) or '?'} copies are installed",
                (*evidence, "a different major is a different ABI: renaming or symlinking "
                 f"{evidence[0].split(':')[0]} crashes or computes garbage later"), fix))
        for fix, files in absent.items():
            out.append(Finding("missing-library", severity, f"{head}: {', '.join(files)} "
                               f"{'is' if len(files) == 1 else 'are'} not installed", (f"source: {n.source}",), fix))
        for name in n.optional:
            if name != "cudnn" or n.cudnn_major is None:
                continue
            opt = resolve([name], cuda_major=n.cuda_major, search_paths=ctx.search_paths, platform=ctx.platform,
                          environ=ctx.environ)
            if opt.libraries and opt.cudnn_major not in (None, n.cudnn_major):
                out.append(Finding("cudnn-mismatch", "warning",
                                   f"{n.consumer} {n.version} uses cuDNN {n.cudnn_major} when present, but "
                                   f"cuDNN {opt.cudnn_major} is installed (not used)",
                                   (str(opt.libraries[-1].path), f"source: {n.source}"),
                                   cat.install_command("cudnn", n.cuda_major, n.cudnn_major)))
    return out


def _upgrade_first(ctx: Context, need: Need) -> Optional[Finding]:
    """An old consumer built for an older CUDA major than the wheels installed
    (ctranslate2 3.x, CUDA 11, beside CUDA 12 wheels): upgrading the consumer
    is the fix, not installing the old wheels."""
    if need.consumer != "ctranslate2" or need.cuda_major >= 12:
        return None
    from ._resolve import resolve

    newer = resolve([], optional=need.libraries, cuda_major=12, search_paths=ctx.search_paths,
                    platform=ctx.platform, environ=ctx.environ)
    if not any(lib.name in need.libraries for lib in newer.libraries):
        return None
    return Finding(
        "consumer-too-old", "problem" if ctx.driver_present else "info",
        f"{need.consumer} {need.version} is built for CUDA {need.cuda_major}, but the CUDA 12 wheels are installed",
        (*(f"{lib.filename}: {lib.path}" for lib in newer.libraries if lib.name in need.libraries),
         f"source: {need.source}"),
        "pip install --upgrade 'ctranslate2>=4.6.3'  # CUDA 12 builds (CTranslate2 CHANGELOG 4.0.0, 4.6.3)")


def check_shadowed(ctx: Context) -> List[Finding]:
    """A library of a needed name is already loaded from a place other than
    the wheel gpuboot would use (``/proc/self/maps``), or would be found first
    by a child process through ``LD_LIBRARY_PATH``."""
    if ctx.platform == "win32":
        return []
    from ._loaded import LoadedView
    from ._needs import resolve_need

    out: List[Finding] = []
    view = LoadedView(ctx.loaded)
    ld_dirs = [d for d in ctx.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    for n in ctx.needs:
        res = resolve_need(n, with_optional=False, search_paths=ctx.search_paths, platform=ctx.platform,
                           environ=ctx.environ)
        for lib in res.libraries:
            loaded = view.loaded(lib.loader_name)
            if loaded and loaded != os.path.realpath(lib.path):
                out.append(Finding("shadowed-library", "warning",
                                   f"{lib.filename} is already loaded from {loaded}, not from the wheel",
                                   (f"loaded: {loaded}", f"wheel: {lib.path}"),
                                   "call gpuboot.ensure() before anything loads CUDA libraries, and remove "
                                   f"{os.path.dirname(loaded)} from LD_LIBRARY_PATH / LD_PRELOAD"))
            for d in ld_dirs:
                candidate = os.path.join(d, lib.filename)
                if os.path.exists(candidate) and os.path.realpath(candidate) != os.path.realpath(lib.path):
                    out.append(Finding("ld-library-path-shadows", "warning",
                                       f"LD_LIBRARY_PATH puts another {lib.filename} before the wheel's "
                                       "(child processes and anything loaded before ensure() get it)",
                                       (f"{candidate}", f"wheel: {lib.path}"),
                                       f"remove {d} from LD_LIBRARY_PATH, or use `eval \"$(gpuboot env)\"`"))
                    break
    return out


def check_renamed(ctx: Context) -> List[Finding]:
    """A library file whose name and whose binary disagree: a hand-made
    ``libcublas.so.12 -> libcublas.so.11`` link (a common forum "fix").  The loader accepts it under
    the file name, but it is the other ABI."""
    out: List[Finding] = []
    for lib in ctx.installed:
        if not lib.renamed or lib.soname is None:
            continue
        s = cat.spec(lib.name)
        claimed = [k for k in s.variants if lib.filename in s.filenames(ctx.platform, k)]
        real = "a link to " + os.path.realpath(lib.path) if os.path.islink(lib.path) else "a copy"
        want = f"CUDA {claimed[0]}" if claimed and s.key == cat.KEY_CUDA else lib.filename
        fix = cat.install_command(lib.name, claimed[0] if claimed and s.key == cat.KEY_CUDA else None,
                                  claimed[0] if claimed and s.key != cat.KEY_CUDA else None)
        out.append(Finding(
            "renamed-library", "problem",
            f"{lib.filename} in {lib.path.parent} is {real} whose soname is {lib.soname}: it is not {want}'s "
            f"{lib.name}",
            (f"{lib.path} -> {os.path.realpath(lib.path)}", f"DT_SONAME {lib.soname}",
             "another major is another ABI: the loader accepts the renamed file and the program crashes or "
             "computes garbage later"),
            f"rm {lib.path} && {fix}"))
    return out


def check_ld_library_path(ctx: Context) -> List[Finding]:
    if ctx.platform == "win32" or ctx.initial_environ is None:
        return []
    now = ctx.environ.get("LD_LIBRARY_PATH")
    then = ctx.initial_environ.get("LD_LIBRARY_PATH")
    if now == then:
        return []
    return [Finding("ld-library-path-changed", "warning",
                    "LD_LIBRARY_PATH was changed after the process started: the loader read it at start, so the "
                    "change does nothing in this process",
                    (f"at start: {then!r}", f"now: {now!r}"),
                    "call gpuboot.ensure() instead (it preloads by absolute path), or set it before the process "
                    "starts: eval \"$(gpuboot env)\"")]


def check_torch(ctx: Context) -> List[Finding]:
    found = ctx.metadata("torch")
    if found is None:
        return []
    version, requires = found
    need = needs_of("torch", version, requires)
    has_gpu = bool(ctx.inventory.visible) or bool(ctx.inventory.devices)
    if need is None and has_gpu:
        index = "cu126"
        cuda_v = ctx.inventory.cuda_driver_version
        if cuda_v is not None:
            fitting = [tag for v, tag in TORCH_CUDA_INDEXES if v <= cuda_v]
            index = fitting[0] if fitting else "cu118"
        return [Finding("cpu-only-torch", "problem",
                        f"torch {version} is a CPU-only build, but this machine has a GPU",
                        (f"torch {version}",),
                        f"pip install --force-reinstall 'torch=={version.split('+')[0]}' "
                        f"--index-url https://download.pytorch.org/whl/{index}")]
    return []


def check_windows_path(ctx: Context) -> List[Finding]:
    if ctx.platform != "win32":
        return []
    from ._needs import resolve_need

    out: List[Finding] = []
    path_entries = [e for e in ctx.environ.get("PATH", "").split(";") if e]
    norm = [os.path.normcase(e.rstrip("\\/")) for e in path_entries]
    for n in ctx.needs:
        if n.consumer != "ctranslate2":
            continue  # LoadLibraryA consumers; torch and onnxruntime add their own DLL directories
        res = resolve_need(n, with_optional=False, search_paths=ctx.search_paths, platform="win32",
                           environ=ctx.environ)
        missing_dirs = []
        for lib in res.libraries:
            d = str(lib.directory)
            if os.path.normcase(d.rstrip("\\/")) not in norm and d not in missing_dirs:
                missing_dirs.append(d)
        if missing_dirs:
            out.append(Finding("windows-dll-dirs-not-on-path", "problem",
                               f"{n.consumer} loads {res.libraries[-1].filename if res.libraries else 'cuBLAS'} "
                               "with plain LoadLibraryA, which searches PATH, and the wheel's DLL directory is "
                               "not on PATH", tuple(missing_dirs),
                               "call gpuboot.ensure() before importing ctranslate2 (it prepends them to PATH), or "
                               "put them on PATH for every process: `gpuboot env --shell powershell` (or "
                               f"`--shell cmd`): set \"PATH={';'.join(missing_dirs)};%PATH%\""))
    cudnn_dirs = []
    for e in path_entries:
        try:
            names = os.listdir(e)
        except OSError:
            continue
        if any(re.fullmatch(r"cudnn(_ops)?64_\d+\.dll", x, re.IGNORECASE) for x in names):
            cudnn_dirs.append(e)
    if len(cudnn_dirs) > 1:
        out.append(Finding("windows-two-cudnn-on-path", "warning",
                           f"{len(cudnn_dirs)} directories on PATH hold cuDNN DLLs: the first one wins for every "
                           "consumer, whatever version it is", tuple(cudnn_dirs),
                           f"remove all but one from PATH (keep the wheel's: {cudnn_dirs[0]})"))
    return out


def check_choice(ctx: Context) -> List[Finding]:
    """The device and precisions ``select_device`` picks here, and why."""
    from .select import select_device

    ct2 = ctx.metadata("ctranslate2")
    c = select_device(inventory=ctx.inventory, environ=ctx.environ, reconcile=False,
                      ct2_version=ct2[0] if ct2 else "", cpu_threads=ctx.cpu_threads)
    return [Finding("device-choice", "info",
                    f"choice: {c.torch_device} torch_dtype={c.torch_dtype} compute_type={c.compute_type}",
                    (c.reason, *c.warnings))]


CHECKS: Tuple[Callable[[Context], List[Finding]], ...] = (
    check_driver, check_driver_age, check_devices, check_choice, check_libraries, check_renamed, check_shadowed,
    check_ld_library_path,
    check_torch, check_windows_path,
)


def diagnose(ctx: Optional[Context] = None, *, consumer: Optional[str] = None, **gather_kwargs: Any) -> Report:
    """Run every check.

    Args:
        ctx: a ``Context``; default ``gather(**gather_kwargs)``.
        consumer: ``"ctranslate2"``, ``"torch"`` or ``"onnxruntime"`` to check
            for that consumer only.

    Raises:
        ValueError: an unknown ``consumer``.
    """
    if consumer is not None:
        if consumer not in CONSUMER_ALIASES:
            raise ValueError(f"consumer must be one of {', '.join(CONSUMER_ALIASES)}, not {consumer!r}")
        gather_kwargs["consumers"] = [CONSUMER_ALIASES[consumer]]
    if ctx is None:
        ctx = gather(**gather_kwargs)
    findings: List[Finding] = []
    for check in CHECKS:
        try:
            findings.extend(check(ctx))
        except Exception as exc:  # a broken check must not hide the others
            findings.append(Finding("check-failed", "warning", f"{check.__name__} failed: {exc!r}", (),
                                    "report this at the gpuboot issue tracker with `gpuboot doctor --json`"))
    if consumer is not None and not ctx.needs:
        findings.append(Finding("consumer-not-installed", "info",
                                f"{CONSUMER_ALIASES[consumer]} is not installed (or is a CPU-only build)", (),
                                None))
    return Report(tuple(findings), ctx)
