"""``check_process()``: after an app's imports, is the mix of CUDA libraries in this process one that will run?

Several consumers in one process (torch, ctranslate2, onnxruntime, JAX...)
each bring or expect NVIDIA libraries.  The loader keeps one object per soname
(``ld.so(8)``), so what matters is what is mapped now (``/proc/self/maps``),
judged by the soname each file carries:

* ``duplicate-library``: one soname mapped from two files (a consumer that
  ``dlopen``s by absolute path beside one that loads by name): two copies,
  two sets of global state;
* ``two-cudnn``: cuDNN 8 and 9 both mapped, or two cuDNN 9 files;
* ``cudnn-parts-mixed``: cuDNN 9's sub-libraries (``libcudnn_ops.so.9`` ...)
  from another directory than ``libcudnn.so.9`` -- the mix that ends in
  ``undefined symbol: cudnnGetLibConfig`` (CTranslate2 PR #1939);
* ``consumer-library-missing``: a loaded consumer needs a library at its CUDA
  major (``libcublas.so.12`` for ctranslate2 4.8.5) that is neither mapped
  nor installed, while another major is -- its first GEMM will fail;
* ``shared-soname``: two installed consumers built for different CUDA majors
  both require a library whose soname is the same at both majors
  (``libcudnn.so.9`` from ``nvidia-cudnn-cu12`` and ``-cu13``): only one can
  be loaded, and one of them gets the other's build.

Linux only (Windows keeps no ``/proc``; the result says so).  Reads files'
headers and package metadata; loads nothing.
"""

from __future__ import annotations

import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..base.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .._libs.types import Library
    from ..consumers.types import Need

__all__ = ["ProcessReport", "ProcessFinding", "check_process"]


class ProcessFinding(Record):
    """One problem with the mix.

    Attributes:
        id: ``"duplicate-library"``, ``"two-cudnn"``, ``"cudnn-parts-mixed"``,
            ``"consumer-library-missing"`` or ``"shared-soname"``.
        severity: ``"problem"`` or ``"warning"``.
        title: what is wrong, with the files.
        fix: what to do.
    """

    id: str
    severity: str
    title: str
    fix: str

    def line(self) -> str:
        return f"{self.severity}: {self.title} -- fix: {self.fix}"


class ProcessReport(Record):
    """What ``check_process()`` saw.

    Attributes:
        libraries: ``(catalog name, soname, real path)`` of each NVIDIA library mapped, first mapped first.
        consumers: the installed consumers whose own binaries are mapped (their distribution names).
        findings: the problems, each with its fix.
        checked: ``False`` where the mapped objects cannot be read (Windows).
    """

    libraries: Tuple[Tuple[str, str, str], ...] = ()
    consumers: Tuple[str, ...] = ()
    findings: Tuple[ProcessFinding, ...] = ()
    checked: bool = True

    @property
    def ok(self) -> bool:
        """No problem (warnings allowed)."""
        return not any(f.severity == "problem" for f in self.findings)


def _index(platform: str) -> Dict[str, Tuple[str, int]]:
    """soname -> (catalog name, variant key), for the names without wildcards."""
    from .._libs import catalog as cat

    out: Dict[str, Tuple[str, int]] = {}
    for name, spec in cat.CATALOG.items():
        for key in sorted(spec.variants, reverse=True):
            for filename in spec.filenames(platform, key):
                if not any(ch in filename for ch in "*?["):
                    out.setdefault(filename, (name, key))
    return out


def _mapped_libraries(paths: Sequence[str], platform: str) -> List[Tuple[str, str, str]]:
    from ..binaries.names import soname_of

    index = _index(platform)
    out: List[Tuple[str, str, str]] = []
    seen = set()
    for path in paths:
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        soname = soname_of(real) or os.path.basename(path)
        if soname in index:
            out.append((index[soname][0], soname, real))
    return out


def _fix_for(need: Need, lib: str) -> str:
    from .._libs.wheels import install_command

    cuda = need.cuda_major
    major = need.cudnn_major if lib.startswith("cudnn") else cuda
    return f"{install_command(lib, cuda, major, 'linux')}, then call gpuboot.ensure() before the first import"


def mix_findings(paths: Sequence[str], needs: Sequence[Need], binaries: Mapping[str, Sequence[str]],
                 platform: str = "linux", installed: Optional[Sequence[Library]] = None
                 ) -> Tuple[List[Tuple[str, str, str]], List[str], List[ProcessFinding]]:
    """The rules over mapped ``paths``, the installed consumers' ``needs`` and their ``binaries`` (consumer ->
    files); ``installed``: ``locate()``'s inventory, for what could still be loaded.  Returns (libraries,
    consumers mapped, findings)."""
    from .._libs import catalog as cat

    libs = _mapped_libraries(paths, platform)
    real = {os.path.realpath(p) for p in paths}
    mapped_consumers = [c for c, files in binaries.items() if any(os.path.realpath(f) in real for f in files)]
    found: List[ProcessFinding] = []
    by_soname: Dict[str, List[str]] = {}
    for _name, soname, path in libs:
        by_soname.setdefault(soname, []).append(path)
    for soname, files in by_soname.items():
        if len(files) > 1:
            found.append(ProcessFinding(
                id="duplicate-library", severity="problem",
                title=f"{soname} is mapped twice: {' and '.join(files)}",
                fix="call gpuboot.ensure() before any consumer is imported, so every consumer gets the one copy "
                    f"(and remove {os.path.dirname(files[-1])} from LD_LIBRARY_PATH)"))
    cudnn = [(soname, path) for name, soname, path in libs if name == "cudnn"]
    if len({s for s, _ in cudnn}) > 1:
        found.append(ProcessFinding(id="two-cudnn", severity="problem",
                                    title="two cuDNN majors are mapped: " + ", ".join(f"{s} ({p})" for s, p in cudnn),
                                    fix="pair the consumers on one cuDNN major (`gpuboot doctor` names the pairing)"))
    main = {s.rsplit(".so.", 1)[-1]: (s, os.path.dirname(p)) for s, p in cudnn}  # "9" -> libcudnn.so.9's directory
    parts = [(s, p) for name, s, p in libs if name.startswith("cudnn_") and s.rsplit(".so.", 1)[-1] in main
             and os.path.dirname(p) != main[s.rsplit(".so.", 1)[-1]][1]]
    if parts:
        shim, where = main[parts[0][0].rsplit(".so.", 1)[-1]]
        found.append(ProcessFinding(
            id="cudnn-parts-mixed", severity="problem",
            title=f"cuDNN's sub-libraries come from another directory than {shim} ({where}): "
                  + ", ".join(f"{s} from {os.path.dirname(p)}" for s, p in parts)
                  + " -- the mix behind 'undefined symbol: cudnnGetLibConfig' (CTranslate2 PR #1939)",
            fix=f"take every cuDNN library from one place: remove {os.path.dirname(parts[0][1])} from "
                "LD_LIBRARY_PATH and call gpuboot.ensure() before the first import"))
    mapped_names = {(name, soname) for name, soname, _ in libs}
    for need in needs:
        consumer = need.consumer
        if consumer not in mapped_consumers:
            continue
        for lib in need.libraries:
            spec = cat.spec(lib)
            key = need.cudnn_major if spec.key == cat.KEY_CUDNN else need.cuda_major
            wanted = spec.filenames(platform, key) if key is not None else ()
            if not wanted or any((lib, w) in mapped_names for w in wanted):
                continue
            on_disk = [x for x in (installed or ()) if x.name == lib and x.major == key]
            others = [soname for name, soname, _ in libs if name == lib]
            if others and not on_disk:
                found.append(ProcessFinding(
                    id="consumer-library-missing", severity="problem",
                    title=f"{consumer} {need.version} needs {wanted[0]} (CUDA {need.cuda_major}); this process "
                          f"has only {', '.join(others)} and none is installed: its first call into {lib} fails",
                    fix=_fix_for(need, lib)))
    found.extend(_shared_sonames(needs, platform))
    return libs, mapped_consumers, found


def _shared_sonames(needs: Sequence[Need], platform: str) -> List[ProcessFinding]:
    """Two consumers of different CUDA majors that both require a library whose soname both majors share."""
    from .._libs import catalog as cat

    out: List[ProcessFinding] = []
    needs = list(needs)
    for i, a in enumerate(needs):
        for b in needs[i + 1:]:
            if a.cuda_major == b.cuda_major:
                continue
            for lib in set(a.libraries) & set(b.libraries):
                spec = cat.spec(lib)
                ka = a.cudnn_major if spec.key == cat.KEY_CUDNN else a.cuda_major
                kb = b.cudnn_major if spec.key == cat.KEY_CUDNN else b.cuda_major
                if ka is None or kb is None:
                    continue
                same = set(spec.filenames(platform, ka)) & set(spec.filenames(platform, kb))
                if not same or spec.key not in (cat.KEY_CUDA, cat.KEY_CUDNN):
                    continue
                fix = _move_off(lib, (a, b)) or (
                    f"install both for one CUDA major (`gpuboot doctor --for {b.consumer}` names the build), or "
                    "run them in separate processes")
                out.append(ProcessFinding(
                    id="shared-soname", severity="warning",
                    title=f"{a.consumer} {a.version} (CUDA {a.cuda_major}) and {b.consumer} {b.version} "
                          f"(CUDA {b.cuda_major}) both require {sorted(same)[0]}, which one process loads once: "
                          "one of them runs on the other's build",
                    fix=fix))
    return out


def _move_off(library: str, needs: Sequence[Need]) -> Optional[str]:
    """The upgrade that makes one of ``needs``' consumers stop requiring ``library``: its row's first rule that
    makes it optional (ctranslate2 4.6.3 made cuDNN optional), when its installed version still requires it."""
    from ..consumers.table import consumer

    for need in needs:
        row = consumer(need.consumer)
        rule = row.first_without(library) if row is not None and library in need.libraries else None
        if row is not None and rule is not None:
            return f'pip install "{row.requirement_of(rule)}" ({rule.source})'
    return None


def check_process() -> ProcessReport:
    """Check the NVIDIA libraries this process has mapped against what its consumers need.

    Call it after your imports (``import torch, ctranslate2``) and before the
    first kernel: a mix that will fail is named with its fix.  Costs the
    headers of the mapped files and the consumers' metadata (milliseconds).

    Returns:
        A ``ProcessReport`` (``ok``, ``findings``).  Never raises for what it
        reads; on Windows ``checked`` is ``False``.
    """
    from .._libs.resolve import locate
    from ..consumers.binaries import installed_binaries
    from ..consumers.installed import installed_needs
    from ..consumers.table import consumer
    from ..machine.snapshot import current

    machine = current()
    if machine.loaded is None:  # Windows keeps no /proc
        return ProcessReport(checked=False)
    needs = installed_needs(machine)
    binaries: Dict[str, Sequence[str]] = {}
    for need in needs:
        row = consumer(need.consumer)
        if row is not None:
            binaries[need.consumer] = installed_binaries(machine, row)[1]
    libs, consumers, findings = mix_findings(machine.loaded, needs, binaries, machine.platform, locate(machine))
    return ProcessReport(libraries=tuple(libs), consumers=tuple(consumers), findings=tuple(findings))
