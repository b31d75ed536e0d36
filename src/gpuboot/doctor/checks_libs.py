"""Doctor's checks of the NVIDIA libraries: found, renamed, shadowed, search paths, CPU-only builds, Windows PATH."""

from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Set, Tuple

from .._gpus.causes import DRIVER_MINIMUMS
from .._libs import catalog as cat
from .._libs.types import MissingLibrary
from .._libs.wheels import install_requirement
from ..consumers.pairings import conflicts_with_installed, consumer_change, installed_distributions
from ..consumers.readers import needs_of
from ..consumers.table import consumer
from ..consumers.types import Consumer, Need
from .actions import Action, command_line, index_for, pip_install, remove_link
from .report import Context, Finding, Severity

__all__ = ["check_libraries", "check_shadowed", "check_renamed", "check_ld_library_path",
           "check_cpu_only_builds", "check_windows_path"]

def check_libraries(ctx: Context) -> List[Finding]:
    """missing-library, wrong-major, cudnn-mismatch, and ok for what is there."""
    from .._libs.needs import resolve_need
    from .._libs.resolve import resolve

    out: List[Finding] = []
    for n in ctx.needs:
        res = resolve_need(ctx.machine, n, with_optional=False)
        head = f"{n.consumer} {n.version} needs CUDA {n.cuda_major}"
        upgrade = _upgrade_first(ctx, n)
        if upgrade is not None:
            out.append(upgrade)
            continue
        # Without a driver nothing can use the libraries yet: a missing one is
        # noted with its fix, never a problem that installing would turn into
        # "wheels without a driver".
        severity: Severity = "problem" if ctx.driver_present else "info"
        if "cudnn" in n.libraries and n.cudnn_major:
            head += f" + cuDNN {n.cudnn_major}"
        if not res.missing:
            found = [lib for lib in res.libraries if lib.name in n.libraries]
            out.append(Finding(id="consumer-ready", severity="ok", title=f"{head}: found",
                               evidence=(*tuple(f"{lib.filename}: {lib.path}" for lib in found),
                                         f"source: {n.source}")))
        absent: Dict[str, Tuple[List[str], MissingLibrary]] = {}  # one finding per fix command
        wrong: Dict[str, Tuple[List[str], List[str], Set[int], MissingLibrary]] = {}
        for m in res.missing:
            others = [o for o in m.other_versions if o.name == m.name]
            if m.name.startswith("cudnn") and others and n.cudnn_major is not None:
                other_majors = sorted({o.major for o in others})
                actions, notes = unless_it_breaks(ctx, n.consumer, m.requirement)
                out.append(_remedied(ctx, "cudnn-mismatch", "problem",
                                     f"{head}, but only cuDNN {', '.join(map(str, other_majors))} is installed",
                                     (*tuple(f"{o.filename}: {o.path}" for o in others), f"source: {n.source}",
                                      *notes), m, actions))
            elif others:
                wanted = cat.spec(m.name).filenames(ctx.platform, m.major or 0)
                files, evidence, majors, _m = wrong.setdefault(m.fix, ([], [], set(), m))
                files.append(wanted[0] if wanted else m.name)
                evidence.extend(f"{o.filename}: {o.path}" for o in others)
                majors.update(o.cuda_major for o in others if o.cuda_major is not None)
            else:
                names = cat.spec(m.name).filenames(ctx.platform, m.major or 0)
                absent.setdefault(m.fix, ([], m))[0].append(names[0] if names else m.name)
        for _fix, (files, evidence, majors, first) in wrong.items():
            out.append(_remedied(
                ctx, "wrong-major", severity,
                f"{head}: {', '.join(files)} {'is' if len(files) == 1 else 'are'} missing; only CUDA "
                f"{', '.join(map(str, sorted(majors))) or '?'} copies are installed",
                (*evidence, "a different major is a different ABI: renaming or symlinking "
                 f"{evidence[0].split(':')[0]} crashes or computes garbage later"), first))
        for _fix, (files, first) in absent.items():
            out.append(_remedied(ctx, "missing-library", severity, f"{head}: {', '.join(files)} "
                                 f"{'is' if len(files) == 1 else 'are'} not installed", (f"source: {n.source}",),
                                 first))
        for name in n.optional:
            if name != "cudnn" or n.cudnn_major is None:
                continue
            opt = resolve(ctx.machine, [name], cuda_major=n.cuda_major)
            if opt.libraries and opt.cudnn_major not in (None, n.cudnn_major):
                req = install_requirement("cudnn", n.cuda_major, n.cudnn_major)
                out.append(Finding.fixed_by("cudnn-mismatch", "warning",
                                            f"{n.consumer} {n.version} uses cuDNN {n.cudnn_major} when present, but "
                                            f"cuDNN {opt.cudnn_major} is installed (not used)",
                                            (str(opt.libraries[-1].path), f"source: {n.source}"), ctx.platform,
                                            *((pip_install(req),) if req else ())))
    return out


def _remedied(ctx: Context, fid: str, severity: Severity, title: str, evidence: Tuple[str, ...],
              missing: MissingLibrary, actions: Optional[Tuple[Action, ...]] = None) -> Finding:
    """A finding fixed by installing ``missing``'s requirement (or ``actions``), or, when no wheel
    provides it, by its instruction."""
    if actions is None:
        actions = (pip_install(missing.requirement),) if missing.requirement else ()
    if not actions:
        return Finding(id=fid, severity=severity, title=title, evidence=evidence, remedy=missing.fix)
    return Finding.fixed_by(fid, severity, title, evidence, ctx.platform, *actions)


def unless_it_breaks(ctx: Context, consumer: str, requirement: Optional[str]
                     ) -> Tuple[Optional[Tuple[Action, ...]], Tuple[str, ...]]:
    """``pip install requirement``, or -- when it would break an installed
    distribution's requirement -- the consumer change from
    ``pairings.PAIRINGS`` that satisfies both; with the evidence of the
    conflict.  ``(None, ())`` when there is no requirement to install."""
    if requirement is None:
        return None, ()
    installed = installed_distributions(ctx.machine)
    broken = conflicts_with_installed(requirement, installed)
    if not broken:
        return (pip_install(requirement),), ()
    change = consumer_change(requirement, consumer, installed)
    notes = tuple(f"{requirement} would break {b}" for b in broken)
    if change is None:
        return (pip_install(requirement),), (*notes, "no known consumer pairing satisfies both: change one of "
                                                      "them by hand")
    fix, other, source = change
    return (pip_install(fix),), (*notes, f"or, the other way round: pip install '{other}'", f"source: {source}")


def _upgrade_first(ctx: Context, need: Need) -> Optional[Finding]:
    """An old consumer built for an older CUDA major than the wheels installed (ctranslate2 3.x, CUDA 11, beside
    CUDA 12 wheels): upgrading the consumer to the versions of its newest rule is the fix (its row's
    ``upgrade``), not installing the old wheels."""
    row = consumer(need.consumer)
    newest = row.newest() if row is not None and row.upgrade else None
    if row is None or newest is None or need.cuda_major >= newest.cuda_major:
        return None
    from .._libs.resolve import resolve

    newer = resolve(ctx.machine, [], optional=need.libraries, cuda_major=newest.cuda_major)
    if not any(lib.name in need.libraries for lib in newer.libraries):
        return None
    return Finding.fixed_by(
        "consumer-too-old", "problem" if ctx.driver_present else "info",
        f"{need.consumer} {need.version} is built for CUDA {need.cuda_major}, but the CUDA {newest.cuda_major} wheels "
        "are installed",
        (*(f"{lib.filename}: {lib.path}" for lib in newer.libraries if lib.name in need.libraries),
         f"source: {need.source}", f"{row.requirement_of(newest)}: {newest.source}"),
        ctx.platform, pip_install(row.requirement_of(newest), upgrade=True))


def check_shadowed(ctx: Context) -> List[Finding]:
    """A library of a needed name is already loaded from a place other than
    the wheel gpuboot would use (``/proc/self/maps``), or would be found first
    by a child process through ``LD_LIBRARY_PATH``."""
    if ctx.platform == "win32":
        return []
    from .._libs.loaded import LoadedView
    from .._libs.needs import resolve_need

    out: List[Finding] = []
    view = LoadedView(ctx.loaded)
    ld_dirs = [d for d in ctx.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    for n in ctx.needs:
        res = resolve_need(ctx.machine, n, with_optional=False)
        for lib in res.libraries:
            loaded = view.loaded(lib.loader_name)
            if loaded and loaded != os.path.realpath(lib.path):
                out.append(Finding(id="shadowed-library", severity="warning",
                                   title=f"{lib.filename} is already loaded from {loaded}, not from the wheel",
                                   evidence=(f"loaded: {loaded}", f"wheel: {lib.path}"),
                                   remedy="call gpuboot.ensure() before anything loads CUDA libraries, and remove "
                                   f"{os.path.dirname(loaded)} from LD_LIBRARY_PATH / LD_PRELOAD"))
            for d in ld_dirs:
                candidate = os.path.join(d, lib.filename)
                if os.path.exists(candidate) and os.path.realpath(candidate) != os.path.realpath(lib.path):
                    out.append(Finding(id="ld-library-path-shadows", severity="warning",
                                       title=f"LD_LIBRARY_PATH puts another {lib.filename} before the wheel's "
                                       "(child processes and anything loaded before ensure() get it)",
                                       evidence=(f"{candidate}", f"wheel: {lib.path}"),
                                       remedy=f"remove {d} from LD_LIBRARY_PATH, or use `eval \"$(gpuboot env)\"`"))
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
        req = install_requirement(lib.name, claimed[0] if claimed and s.key == cat.KEY_CUDA else None,
                                      claimed[0] if claimed and s.key != cat.KEY_CUDA else None)
        title = (f"{lib.filename} in {lib.path.parent} is {real} whose soname is {lib.soname}: it is not {want}'s "
                 f"{lib.name}")
        evidence = (f"{lib.path} -> {os.path.realpath(lib.path)}", f"DT_SONAME {lib.soname}",
                    "another major is another ABI: the loader accepts the renamed file and the program crashes or "
                    "computes garbage later")
        out.append(Finding.fixed_by("renamed-library", "problem", title, evidence, ctx.platform,
                                    remove_link(str(lib.path)), *((pip_install(req),) if req else ())))
    return out


def check_ld_library_path(ctx: Context) -> List[Finding]:
    if ctx.platform == "win32" or ctx.initial_environ is None:
        return []
    now = ctx.environ.get("LD_LIBRARY_PATH")
    then = ctx.initial_environ.get("LD_LIBRARY_PATH")
    if now == then:
        return []
    return [Finding(id="ld-library-path-changed", severity="warning",
                    title="LD_LIBRARY_PATH was changed after the process started: the loader read it at start, so the "
                    "change does nothing in this process",
                    evidence=(f"at start: {then!r}", f"now: {now!r}"),
                    remedy="call gpuboot.ensure() instead (it preloads by absolute path), or set it before the process "
                    "starts: eval \"$(gpuboot env)\"")]


def check_cpu_only_builds(ctx: Context) -> List[Finding]:
    """A CPU-only build of a consumer with CUDA wheel indexes (torch) on a machine whose NVML lists a GPU:
    reinstall it from the index that serves its version and that the driver runs (``Consumer.indexes``), else
    upgrade it from the newest index the driver runs."""
    from ..consumers.table import CONSUMER_TABLE

    has_gpu = bool(ctx.inventory.visible) or bool(ctx.inventory.devices)
    out: List[Finding] = []
    for row in CONSUMER_TABLE if has_gpu else ():
        dist = ctx.machine.distribution(row.name) if row.indexes else None
        if dist is not None and needs_of(row, dist.version, dist.requires, ctx.platform) is None:
            out.append(_cpu_only(ctx, row, dist.version))
    return out


def _cpu_only(ctx: Context, row: Consumer, version: str) -> Finding:
    from packaging.version import Version

    public = Version(version).public  # the distribution's metadata validated it
    fid = f"cpu-only-{row.for_name}"
    cuda_v = ctx.inventory.cuda_driver_version
    tag, how = index_for(row, public, cuda_v)
    title = f"{row.name} {version} is a CPU-only build, but this machine has a GPU"
    driver = f"driver supports CUDA {cuda_v[0]}.{cuda_v[1]}" if cuda_v else "driver's CUDA version unknown"
    evidence = (f"{row.name} {version}", driver, f"source: the indexes of its row ({row.index_url})")
    url = row.index_of(tag) if tag else None
    if how == "reinstall" and url:
        return Finding.fixed_by(fid, "problem", title, evidence, ctx.platform,
                                pip_install(f"{row.name}=={public}", force_reinstall=True, index_url=url))
    if how == "upgrade" and url:
        return Finding.fixed_by(fid, "problem", title,
                                (*evidence, f"no CUDA index serves {row.name} {public} any more: upgrade it"),
                                ctx.platform, pip_install(row.name, upgrade=True, force_reinstall=True, index_url=url))
    if how == "upgrade-driver" and url and tag:
        cuda_needed = next(i.cuda for i in row.indexes if i.tag == tag)
        minimum = DRIVER_MINIMUMS.get(cuda_needed[0], {}).get(ctx.platform, "?")
        return Finding(id=fid, severity="problem", title=title, evidence=evidence,
                       remedy=f"{row.name} {public}'s CUDA builds need CUDA {cuda_needed[0]}.{cuda_needed[1]} ({tag}): "
                       f"upgrade the NVIDIA driver (CUDA {cuda_needed[0]}: >= {minimum}), then `"
                       + command_line(("pip", "install", "--force-reinstall", f"{row.name}=={public}", "--index-url",
                                       url), ctx.platform) + "`")
    return Finding(id=fid, severity="problem", title=title, evidence=evidence,
                   remedy=f"upgrade the NVIDIA driver: no CUDA build of {row.name} runs on it")


def check_windows_path(ctx: Context) -> List[Finding]:
    if ctx.platform != "win32":
        return []
    from .._libs.needs import resolve_need

    out: List[Finding] = []
    path_entries = [e for e in ctx.environ.get("PATH", "").split(";") if e]
    norm = [os.path.normcase(e.rstrip("\\/")) for e in path_entries]
    for n in ctx.needs:
        row = consumer(n.consumer)
        if row is None or not row.plain_load_on_windows:
            continue  # the others add their own DLL directories
        res = resolve_need(ctx.machine, n, with_optional=False)
        missing_dirs = []
        for lib in res.libraries:
            d = str(lib.directory)
            if os.path.normcase(d.rstrip("\\/")) not in norm and d not in missing_dirs:
                missing_dirs.append(d)
        if missing_dirs:
            out.append(Finding(id="windows-dll-dirs-not-on-path", severity="problem",
                               title=f"{n.consumer} loads {res.libraries[-1].filename if res.libraries else 'cuBLAS'} "
                               "with plain LoadLibraryA, which searches PATH, and the wheel's DLL directory is "
                               "not on PATH", evidence=tuple(missing_dirs),
                               remedy=f"call gpuboot.ensure() before importing {row.imports[0]} (it prepends them to "
                               "PATH), or put them on PATH for every process: `gpuboot env --shell powershell` (or "
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
        out.append(Finding(id="windows-two-cudnn-on-path", severity="warning",
                           title=f"{len(cudnn_dirs)} directories on PATH hold cuDNN DLLs: the first one wins for every "
                           "consumer, whatever version it is", evidence=tuple(cudnn_dirs),
                           remedy=f"remove all but one from PATH (keep the wheel's: {cudnn_dirs[0]})"))
    return out
