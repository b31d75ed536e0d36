"""What the installed GPU consumers need, read from package metadata only.

Nothing here imports ctranslate2, torch or onnxruntime: versions come from
``importlib.metadata`` (the ``.dist-info`` directories).
"""

from __future__ import annotations

import re
from typing import Any, Callable, List, Optional, Sequence, Tuple

from ._record import Record

__all__ = ["Need", "Rule", "Consumer", "CONSUMER_TABLE", "CONSUMERS", "CTRANSLATE2_RULES", "consumer", "needs_of",
           "installed_needs", "read_metadata", "cuda_version_of_tag"]


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


class Consumer(Record):
    """One row of ``CONSUMER_TABLE``: a package that loads NVIDIA libraries, and how gpuboot reads its needs.

    Attributes:
        name: its distribution name, canonical (``"onnxruntime-gpu"``).
        for_name: its name for ``gpuboot doctor --for`` and ``diagnose(consumer=)`` (``"onnxruntime"``).
        rules: version ranges -> CUDA/cuDNN majors and libraries (``Rule``), when its version tells.
        reads: how the need is read from ``(version, Requires-Dist)`` when its metadata tells instead
            (torch's ``+cu121`` tags and ``nvidia-*`` requirements); ``None``: ``rules``.
        plain_load_on_windows: loads its CUDA DLLs with plain ``LoadLibraryA`` (searches ``PATH``, not
            ``os.add_dll_directory``): doctor checks ``PATH`` for it on Windows.
        upgrade: the requirement that moves a build for an older CUDA major than the installed wheels to
            the current one (ctranslate2 3.x beside CUDA 12 wheels), or ``None``.
        upgrade_source: where that upgrade comes from.
    """

    name: str
    for_name: str
    rules: Tuple[Rule, ...] = ()
    reads: Optional[Callable[[str, Sequence[str]], Optional[Need]]] = None
    plain_load_on_windows: bool = False
    upgrade: Optional[str] = None
    upgrade_source: str = ""


#: The consumers gpuboot knows; a new consumer is one row (and its rules).
CONSUMER_TABLE: Tuple[Consumer, ...] = (
    Consumer(name="ctranslate2", for_name="ctranslate2", rules=CTRANSLATE2_RULES, plain_load_on_windows=True,
             upgrade="ctranslate2>=4.6.3",
             upgrade_source="ctranslate2 >= 4.6.3: CUDA 12 builds (CTranslate2 CHANGELOG 4.0.0, 4.6.3)"),
    Consumer(name="onnxruntime-gpu", for_name="onnxruntime", rules=ONNXRUNTIME_RULES),
    Consumer(name="torch", for_name="torch", reads=_torch_need),
)

#: Consumers gpuboot knows, by distribution name.
CONSUMERS: Tuple[str, ...] = tuple(c.name for c in CONSUMER_TABLE)


def consumer(name: str) -> Optional[Consumer]:
    """The row of distribution ``name`` (any spelling: ``onnxruntime_gpu``), or ``None``."""
    wanted = _canonical(name)
    return next((c for c in CONSUMER_TABLE if c.name == wanted), None)


def needs_of(consumer_name: str, version: str, requires: Sequence[str] = ()) -> Optional[Need]:
    """The ``Need`` of ``consumer_name`` at ``version``, or ``None`` when that build
    uses no CUDA (or the version is not one gpuboot knows, or not a version)."""
    if not isinstance(consumer_name, str) or not isinstance(version, str):
        return None
    row = consumer(consumer_name)
    if row is None:
        return None
    if row.reads is not None:
        return row.reads(version, requires)
    return _match_rules(row.name, version, row.rules)


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
