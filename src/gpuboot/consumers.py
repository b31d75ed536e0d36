"""What the installed GPU consumers need, read from package metadata only.

Nothing here imports ctranslate2, torch or onnxruntime: versions come from
``importlib.metadata`` (the ``.dist-info`` directories).
"""

from __future__ import annotations

import re
from typing import Any, Callable, List, Optional, Sequence, Tuple

from ._record import Record

__all__ = ["Need", "Rule", "CTRANSLATE2_RULES", "needs_of", "installed_needs", "CONSUMERS", "cuda_version_of_tag",
           "Pairing", "PAIRINGS", "installed_distributions", "malformed_distributions", "conflicts_with_installed",
           "consumer_change"]


class Need(Record):
    """Libraries one installed consumer needs.

    Attributes:
        consumer: distribution name (``"ctranslate2"``).
        version: its installed version.
        cuda_major: the CUDA major its binaries were built against.
        libraries: catalog names it loads (required).
        optional: catalog names it uses when present.
        cudnn_major: the cuDNN major, where it uses cuDNN.
        source: where the fact comes from.
    """

    consumer: str
    version: str
    cuda_major: int
    libraries: Tuple[str, ...]
    optional: Tuple[str, ...] = ()
    cudnn_major: Optional[int] = None
    source: str = ""


class Rule(Record):
    """One row of a consumer's compatibility table; ``specifier`` is a PEP 440
    specifier on the consumer's version."""

    specifier: str
    cuda_major: int
    libraries: Tuple[str, ...]
    optional: Tuple[str, ...] = ()
    cudnn_major: Optional[int] = None
    source: str = ""


# CTranslate2 CHANGELOG and faster-whisper README ("GPU" section). cudart is
# linked statically into libctranslate2 (its ELF NEEDED list has no cudart; it
# dlopens libcublas.so.12 by name, and cuBLAS loads lazily at the first GEMM).
CTRANSLATE2_RULES: Tuple[Rule, ...] = (
    Rule(specifier="<4.0.0", cuda_major=11, libraries=("cublas", "cudnn"), cudnn_major=8,
         source="CTranslate2 CHANGELOG 4.0.0: 'CUDA 12 is now the default'; 3.x used CUDA 11 + cuDNN 8"),
    Rule(specifier=">=4.0.0,<4.5.0", cuda_major=12, libraries=("cublas", "cudnn"), cudnn_major=8,
         source="CTranslate2 CHANGELOG 4.0.0: CUDA 12 + cuDNN 8"),
    Rule(specifier=">=4.5.0,<4.6.3", cuda_major=12, libraries=("cublas", "cudnn"), cudnn_major=9,
         source="CTranslate2 CHANGELOG 4.5.0: cuDNN 9"),
    Rule(specifier=">=4.6.3", cuda_major=12, libraries=("cublas",), optional=("cudnn",), cudnn_major=9,
         source="CTranslate2 CHANGELOG 4.6.3: cuDNN optional (pure-CUDA Conv1d)"),
)

# onnxruntime-gpu: CUDA Execution Provider requirements table
# (onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html).
ONNXRUNTIME_RULES: Tuple[Rule, ...] = (
    Rule(specifier=">=1.19.0", cuda_major=12, libraries=("cudart", "cublas", "cufft", "cudnn"), optional=("curand",),
         cudnn_major=9,
         source="onnxruntime CUDA EP requirements: 1.19+ default build is CUDA 12.x + cuDNN 9"),
    Rule(specifier=">=1.17.0,<1.19.0", cuda_major=12, libraries=("cudart", "cublas", "cufft", "cudnn"), cudnn_major=8,
         source="onnxruntime CUDA EP requirements: 1.17-1.18 default CUDA 12 builds use cuDNN 8"),
    Rule(specifier="<1.17.0", cuda_major=11, libraries=("cudart", "cublas", "cufft", "cudnn"), cudnn_major=8,
         source="onnxruntime CUDA EP requirements: up to 1.16 CUDA 11.x + cuDNN 8"),
)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _match_rules(consumer: str, version: str, rules: Sequence[Rule]) -> Optional[Need]:
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        v = Version(version)
    except InvalidVersion:
        return None
    for rule in rules:
        if SpecifierSet(rule.specifier).contains(v, prereleases=True):
            return Need(consumer=consumer, version=version, cuda_major=rule.cuda_major, libraries=rule.libraries,
                        optional=rule.optional,
                        cudnn_major=rule.cudnn_major, source=rule.source)
    return None


def cuda_version_of_tag(digits: str) -> Optional[Tuple[int, int]]:
    """The CUDA version a build tag's digits name (torch's ``+cu121``,
    ``+cu92``): the last digit is the minor, the rest the major, as
    ``CUDA_VERSION`` is spelled without its dot (``cu92`` 9.2, ``cu101`` 10.1,
    ``cu118`` 11.8, ``cu128`` 12.8, ``cu130`` 13.0).  ``None`` for fewer than
    two digits or a leading zero, which no CUDA release is spelled as.
    """
    if len(digits) < 2 or not digits.isascii() or not digits.isdigit() or digits[0] == "0":
        return None
    return int(digits[:-1]), int(digits[-1])


def _requirements(requires: Sequence[str]) -> List[Any]:
    """``requires`` parsed by ``packaging`` (``Requirement``); lines it rejects are left out."""
    from packaging.requirements import InvalidRequirement, Requirement

    out = []
    for line in requires:
        try:
            out.append(Requirement(str(line)))
        except InvalidRequirement:
            continue
    return out


def _torch_need(version: str, requires: Sequence[str]) -> Optional[Need]:
    """torch: ``+cu121`` local tags name the CUDA build; PyPI's Linux wheels
    without a tag declare ``nvidia-*-cu12`` (or CUDA 13 ``nvidia-*``) in
    Requires-Dist; ``+cpu`` and Windows PyPI wheels use no CUDA."""
    from packaging.version import InvalidVersion, Version

    try:
        local = Version(version).local or ""
    except InvalidVersion:
        return None
    m = re.fullmatch(r"cu(\d+)", local)
    cuda: Optional[int] = None
    src = ""
    tagged = cuda_version_of_tag(m.group(1)) if m else None
    if m and tagged:
        cuda = tagged[0]
        src = f"torch local version tag +cu{m.group(1)} (CUDA {tagged[0]}.{tagged[1]})"
    reqs = _requirements(requires)
    if cuda is None:
        for req in reqs:
            r = re.fullmatch(r"nvidia-cublas(?:-cu(\d+))?", _canonical(req.name))
            if r:
                cuda = int(r.group(1)) if r.group(1) else 13
                src = f"torch Requires-Dist: {req.name}{req.specifier}"
                break
    if cuda is None:
        return None
    cudnn: Optional[int] = None
    for req in reqs:
        if re.fullmatch(r"nvidia-cudnn-cu\d+", _canonical(req.name)):
            pins = [s.version for s in req.specifier if s.operator in ("==", "===")]
            major = re.match(r"(\d+)", pins[0]) if pins else None
            cudnn = int(major.group(1)) if major else cudnn
    return Need(consumer="torch", version=version, cuda_major=cuda, libraries=("cudart", "cublas"), optional=("cudnn",
                                                                                                              "nvrtc",
                                                                                                              "cufft",
                                                                                                              "curand",
                                                               "cusparse", "cusolver", "nccl"),
                cudnn_major=cudnn, source=src)


def needs_of(consumer: str, version: str, requires: Sequence[str] = ()) -> Optional[Need]:
    """The ``Need`` of ``consumer`` at ``version``, or ``None`` when that build
    uses no CUDA (or the version is not one gpuboot knows, or not a version)."""
    if not isinstance(consumer, str) or not isinstance(version, str):
        return None
    name = _canonical(consumer)
    if name == "ctranslate2":
        return _match_rules(name, version, CTRANSLATE2_RULES)
    if name == "onnxruntime-gpu":
        return _match_rules(name, version, ONNXRUNTIME_RULES)
    if name == "torch":
        return _torch_need(version, requires)
    return None


#: Consumers gpuboot knows, by distribution name.
CONSUMERS: Tuple[str, ...] = ("ctranslate2", "onnxruntime-gpu", "torch")

Metadata = Callable[[str], Optional[Tuple[str, Sequence[str]]]]


def read_metadata(name: str) -> Optional[Tuple[str, Sequence[str]]]:
    """``(version, Requires-Dist)`` of the first installed distribution called
    ``name`` whose metadata is valid (``_metadata``), or ``None``.  Never raises
    for what the metadata says: a malformed one is skipped here and reported by
    ``malformed_distributions()`` (doctor's ``malformed-metadata``)."""
    from ._host import current
    from ._metadata import read_distribution

    given = current().metadata
    if given is not None:
        return given(name)
    dist, _bad = read_distribution(name)
    return (dist.version, list(dist.requires)) if dist is not None else None


def installed_needs(consumers: Sequence[str] = CONSUMERS) -> List[Need]:
    """``Need``s of the consumers installed in this environment."""
    out: List[Need] = []
    for name in consumers:
        found = read_metadata(name)
        if found is None:
            continue
        need = needs_of(name, found[0], found[1])
        if need is not None:
            out.append(need)
    return out


# --------------------------------------------------------------------------- pairings


class Pairing(Record):
    """Consumer versions known to work together when their library needs conflict.

    When a library fix for ``consumer`` (``library`` at cuDNN/CUDA ``major``)
    would break ``pinned_by`` (whose version matches ``pinned_spec`` and pins
    another major), the fix is a consumer change instead: ``consumer_fix``, or
    ``other_fix`` for the other side.
    """

    library: str
    major: int
    consumer: str
    pinned_by: str
    pinned_spec: str
    consumer_fix: str
    other_fix: str
    source: str


#: torch < 2.4 pins cuDNN 8 (torch 2.3.1: ``nvidia-cudnn-cu12==8.9.2.26``);
#: ctranslate2 4.5.0-4.6.2 needs cuDNN 9; ctranslate2 4.4.0 is the last on
#: cuDNN 8 and torch 2.4 the first on cuDNN 9 (faster-whisper #1086;
#: CTranslate2 CHANGELOG 4.5.0; torch 2.4.0 Requires-Dist).
PAIRINGS: Tuple[Pairing, ...] = (
    Pairing(library="nvidia-cudnn-cu12", major=9, consumer="ctranslate2", pinned_by="torch", pinned_spec="<2.4",
            consumer_fix="ctranslate2==4.4.0", other_fix="torch>=2.4",
            source="faster-whisper #1086; CTranslate2 CHANGELOG 4.5.0 (cuDNN 9)"),
)

#: (name, version, Requires-Dist) of every installed distribution.
Installed = Sequence[Tuple[str, str, Sequence[str]]]


def installed_distributions() -> List[Tuple[str, str, Sequence[str]]]:
    """``(name, version, Requires-Dist)`` of every distribution on ``sys.path``
    whose metadata is valid (``_metadata.scan_distributions``)."""
    from ._host import current
    from ._metadata import scan_distributions

    given = current().distributions
    if given is not None:
        return list(given())
    good, _bad = scan_distributions()
    return [(d.name, d.version, list(d.requires)) for d in good]


def malformed_distributions() -> List[Any]:
    """Every distribution on ``sys.path`` whose metadata is malformed (``_metadata.Malformed``)."""
    from ._host import current
    from ._metadata import scan_distributions

    given = current().malformed
    if given is not None:
        return list(given())
    return list(scan_distributions()[1])


def _may_meet(wanted: str, required: str) -> bool:
    """Could one version satisfy both specifier sets?  Tried on the versions
    either names (``==9.*`` also as 9.0 and 9.999)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        a, b = SpecifierSet(wanted), SpecifierSet(required)
    except InvalidSpecifier:
        return True
    if not str(a) or not str(b):
        return True
    candidates = set()
    for spec in (*a, *b):
        v = spec.version.rstrip(".*")
        candidates.update({v, f"{v}.0", f"{v}.999", f"{v}.999.999"})
    return any(a.contains(c, prereleases=True) and b.contains(c, prereleases=True) for c in candidates
               if re.fullmatch(r"[0-9]+(\.[0-9]+)*", c))


def conflicts_with_installed(requirement: str, installed: Installed) -> List[str]:
    """The installed distributions whose Requires-Dist ``requirement`` (a pip
    requirement such as ``nvidia-cudnn-cu12==9.*``) would break, as
    ``"torch 2.3.1 requires nvidia-cudnn-cu12==8.9.2.26"``; ``[]`` when none."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        want = Requirement(requirement)
    except InvalidRequirement:
        return []
    target = _canonical(want.name)
    out = []
    for name, version, requires in installed:
        if _canonical(name) == target:
            continue
        for line in requires:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if _canonical(req.name) != target or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
                continue
            if not _may_meet(str(want.specifier), str(req.specifier)):
                out.append(f"{name} {version} requires {req.name}{req.specifier}")
    return out


def consumer_change(requirement: str, consumer: str, installed: Installed) -> Optional[Tuple[str, str, str]]:
    """When ``requirement`` (a library fix for ``consumer``) conflicts with an
    installed pin, the consumer change from ``PAIRINGS`` that satisfies both:
    ``(pip requirement, alternative, source)``, else ``None``."""
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    want = Requirement(requirement)
    versions = {_canonical(n): v for n, v, _ in installed}
    for p in PAIRINGS:
        if _canonical(p.library) != _canonical(want.name) or p.consumer != consumer:
            continue
        pinned = versions.get(_canonical(p.pinned_by))
        if pinned is None or not SpecifierSet(p.pinned_spec).contains(pinned.split("+")[0], prereleases=True):
            continue
        if conflicts_with_installed(p.consumer_fix, installed):
            continue
        return p.consumer_fix, p.other_fix, p.source
    return None
