"""How a consumer's needs are read from its metadata: its version against its rules, or its Requires-Dist (and
local version tag) read by a ``Reader``.  Values only: nothing here reads the environment.

Readers: ``requires_dist`` (``nvidia-cuda-runtime-cuNN`` / ``nvidia-cublas-cuNN`` -- plain names from CUDA 13 --
or NVIDIA's ``cuda-toolkit`` metapackage, and ``nvidia-cudnn-cuNN``'s specifier; TensorFlow's ``and-cuda`` and
JAX's ``with-cuda`` extras name them) and ``local_tag_or_requires`` (a ``+cu121`` local version tag first:
torch's own builds).
"""

from __future__ import annotations

import re
from typing import Any, List, Optional, Sequence, Tuple

from .types import Build, Consumer, Need, Rule

__all__ = ["needs_of", "match_rules", "requires_dist", "local_tag_or_requires", "cuda_version_of_tag"]


def needs_of(row: Consumer, version: str, requires: Sequence[str] = (), platform: str = "linux") -> Optional[Need]:
    """The ``Need`` of consumer ``row`` at ``version`` (with its Requires-Dist, of which the lines whose markers
    hold on ``platform`` count: torch's Windows wheel names its Linux-only CUDA wheels), or ``None`` when that
    build uses no CUDA, or the version is not one (or not one its rules know)."""
    if not isinstance(version, str):
        return None
    if row.rules:
        return match_rules(row.name, version, row.rules)
    build = row.reads(version, [str(r) for r in _requirements(requires, platform)]) if row.reads is not None else None
    if build is None and row.cuda_major is not None and _valid(version):
        build = Build(cuda_major=row.cuda_major, source=f"its distribution name (CUDA {row.cuda_major})")
    if build is None:
        return None
    uses_cudnn = "cudnn" in row.libraries + row.optional
    return Need(consumer=row.name, version=version, cuda_major=build.cuda_major, libraries=row.libraries,
                optional=row.optional, cudnn_major=build.cudnn_major if uses_cudnn else None, source=build.source)


def _valid(version: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


def match_rules(consumer: str, version: str, rules: Sequence[Rule]) -> Optional[Need]:
    """The ``Need`` of the first of ``rules`` whose specifier contains ``version``, or ``None``."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        v = Version(version)
    except InvalidVersion:
        return None
    for rule in rules:
        if SpecifierSet(rule.specifier).contains(v, prereleases=True):
            return Need(consumer=consumer, version=version, cuda_major=rule.cuda_major, libraries=rule.libraries,
                        optional=rule.optional, cudnn_major=rule.cudnn_major, source=rule.source)
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


#: The marker variables of each platform gpuboot reads metadata for (PEP 508).
_PLATFORM_MARKERS = {"linux": {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"},
                     "win32": {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt"}}


def _requirements(requires: Sequence[str], platform: Optional[str] = None) -> List[Any]:
    """``requires`` parsed by ``packaging`` (``Requirement``); lines it rejects are left out, and with
    ``platform`` the lines whose marker does not hold there (an ``extra`` counts as installed: metadata does not
    say which extras were)."""
    from packaging.requirements import InvalidRequirement, Requirement

    out = []
    for line in requires:
        try:
            req = Requirement(str(line))
        except InvalidRequirement:
            continue
        if platform is None or req.marker is None or _holds(req.marker, platform):
            out.append(req)
    return out


def _holds(marker: Any, platform: str) -> bool:
    from packaging.markers import default_environment

    env = {**default_environment(), **_PLATFORM_MARKERS.get(platform, {})}
    extras = re.findall(r"""extra\s*==\s*["']([^"']+)["']""", str(marker)) or [""]
    return any(marker.evaluate({**env, "extra": e}) for e in extras)


def _cuda_of_requires(reqs: Sequence[Any]) -> Optional[Tuple[int, str]]:
    """The CUDA major a consumer's Requires-Dist names, with the line: ``nvidia-cuda-runtime-cuNN`` /
    ``nvidia-cublas-cuNN`` (plain names from CUDA 13), or NVIDIA's ``cuda-toolkit[...]==13.0.3`` metapackage
    (torch 2.14.1, CuPy's ``ctk`` extra)."""
    from ..machine.metadata import canonical_name

    for req in reqs:
        name = canonical_name(req.name)
        m = re.fullmatch(r"nvidia-(?:cuda-runtime|cublas)(?:-cu(\d+))?", name)
        if m:
            return (int(m.group(1)) if m.group(1) else 13), f"Requires-Dist: {req}"
        if name == "cuda-toolkit":
            major = _major_of(req)
            if major is not None:
                return major, f"Requires-Dist: {req}"
    return None


def _major_of(req: Any) -> Optional[int]:
    """The major a requirement's specifier starts from (``>=9.3.0.75``, ``~=9.0``, ``==9.10.2.21`` -> 9)."""
    for spec in req.specifier:
        if spec.operator in (">=", "~=", "==", "==="):
            m = re.match(r"(\d+)", spec.version)
            if m:
                return int(m.group(1))
    return None


def _cudnn_of_requires(reqs: Sequence[Any]) -> Optional[int]:
    from ..machine.metadata import canonical_name

    for req in reqs:
        if re.fullmatch(r"nvidia-cudnn-cu\d+", canonical_name(req.name)):
            major = _major_of(req)
            if major is not None:
                return major
    return None


def requires_dist(version: str, requires: Sequence[str]) -> Optional[Build]:
    """A consumer whose Requires-Dist names the NVIDIA wheels it needs (often under an extra:
    ``tensorflow[and-cuda]``, ``jax-cuda12-plugin[with-cuda]``): the CUDA major from
    ``nvidia-cuda-runtime-cuNN`` / ``nvidia-cublas-cuNN``, the cuDNN major from ``nvidia-cudnn-cuNN``'s
    specifier."""
    reqs = _requirements(requires)
    found = _cuda_of_requires(reqs)
    if found is None:
        return None
    return Build(cuda_major=found[0], cudnn_major=_cudnn_of_requires(reqs), source=found[1])


def local_tag_or_requires(version: str, requires: Sequence[str]) -> Optional[Build]:
    """A ``+cu121`` local version tag names the CUDA build (torch's own indexes); without one, the
    ``nvidia-*`` wheels its Requires-Dist names (PyPI's Linux wheels); ``+cpu`` and a build that names neither
    (Windows PyPI wheels) use no CUDA."""
    from packaging.version import InvalidVersion, Version

    try:
        local = Version(version).local or ""
    except InvalidVersion:
        return None
    m = re.fullmatch(r"cu(\d+)", local)
    tagged = cuda_version_of_tag(m.group(1)) if m else None
    reqs = _requirements(requires)
    if m and tagged:
        return Build(cuda_major=tagged[0], cudnn_major=_cudnn_of_requires(reqs),
                     source=f"local version tag +cu{m.group(1)} (CUDA {tagged[0]}.{tagged[1]})")
    found = _cuda_of_requires(reqs)
    if found is None:
        return None
    return Build(cuda_major=found[0], cudnn_major=_cudnn_of_requires(reqs), source=found[1])
