"""What the installed GPU consumers need, read from package metadata only.

Nothing here imports ctranslate2, torch or onnxruntime: versions come from
``importlib.metadata`` (the ``.dist-info`` directories).
"""

from __future__ import annotations

import re
from typing import Callable, List, Optional, Sequence, Tuple

from ._record import Record

__all__ = ["Need", "Rule", "CTRANSLATE2_RULES", "needs_of", "installed_needs", "CONSUMERS", "cuda_version_of_tag"]


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

    __slots__ = ("consumer", "version", "cuda_major", "libraries", "optional", "cudnn_major", "source")
    consumer: str
    version: str
    cuda_major: int
    libraries: Tuple[str, ...]
    optional: Tuple[str, ...]
    cudnn_major: Optional[int]
    source: str

    def __init__(self, consumer: str, version: str, cuda_major: int, libraries: Tuple[str, ...],
                 optional: Tuple[str, ...] = (), cudnn_major: Optional[int] = None, source: str = "") -> None:
        self._set(consumer=consumer, version=version, cuda_major=cuda_major, libraries=libraries,
                  optional=optional, cudnn_major=cudnn_major, source=source)


class Rule(Record):
    """One row of a consumer's compatibility table; ``specifier`` is a PEP 440
    specifier on the consumer's version."""

    __slots__ = ("specifier", "cuda_major", "libraries", "optional", "cudnn_major", "source")
    specifier: str
    cuda_major: int
    libraries: Tuple[str, ...]
    optional: Tuple[str, ...]
    cudnn_major: Optional[int]
    source: str

    def __init__(self, specifier: str, cuda_major: int, libraries: Tuple[str, ...], optional: Tuple[str, ...] = (),
                 cudnn_major: Optional[int] = None, source: str = "") -> None:
        self._set(specifier=specifier, cuda_major=cuda_major, libraries=libraries, optional=optional,
                  cudnn_major=cudnn_major, source=source)


# CTranslate2 CHANGELOG and faster-whisper README ("GPU" section). cudart is
# linked statically into libctranslate2 (its ELF NEEDED list has no cudart; it
# dlopens libcublas.so.12 by name, and cuBLAS loads lazily at the first GEMM).
CTRANSLATE2_RULES: Tuple[Rule, ...] = (
    Rule("<4.0.0", 11, ("cublas", "cudnn"), cudnn_major=8,
         source="CTranslate2 CHANGELOG 4.0.0: 'CUDA 12 is now the default'; 3.x used CUDA 11 + cuDNN 8"),
    Rule(">=4.0.0,<4.5.0", 12, ("cublas", "cudnn"), cudnn_major=8,
         source="CTranslate2 CHANGELOG 4.0.0: CUDA 12 + cuDNN 8"),
    Rule(">=4.5.0,<4.6.3", 12, ("cublas", "cudnn"), cudnn_major=9,
         source="CTranslate2 CHANGELOG 4.5.0: cuDNN 9"),
    Rule(">=4.6.3", 12, ("cublas",), optional=("cudnn",), cudnn_major=9,
         source="CTranslate2 CHANGELOG 4.6.3: cuDNN optional (pure-CUDA Conv1d)"),
)

# onnxruntime-gpu: CUDA Execution Provider requirements table
# (onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html).
ONNXRUNTIME_RULES: Tuple[Rule, ...] = (
    Rule(">=1.19.0", 12, ("cudart", "cublas", "cufft", "cudnn"), optional=("curand",), cudnn_major=9,
         source="onnxruntime CUDA EP requirements: 1.19+ default build is CUDA 12.x + cuDNN 9"),
    Rule(">=1.17.0,<1.19.0", 12, ("cudart", "cublas", "cufft", "cudnn"), cudnn_major=8,
         source="onnxruntime CUDA EP requirements: 1.17-1.18 default CUDA 12 builds use cuDNN 8"),
    Rule("<1.17.0", 11, ("cudart", "cublas", "cufft", "cudnn"), cudnn_major=8,
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
            return Need(consumer, version, rule.cuda_major, rule.libraries, rule.optional,
                        rule.cudnn_major, rule.source)
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


def _torch_need(version: str, requires: Sequence[str]) -> Optional[Need]:
    """torch: ``+cu121`` local tags name the CUDA build; PyPI's Linux wheels
    without a tag declare ``nvidia-*-cu12`` (or CUDA 13 ``nvidia-*``) in
    Requires-Dist; ``+cpu`` and Windows PyPI wheels use no CUDA."""
    m = re.search(r"\+cu(\d+)", version)
    cuda: Optional[int] = None
    src = ""
    tagged = cuda_version_of_tag(m.group(1)) if m else None
    if m and tagged:
        cuda = tagged[0]
        src = f"torch local version tag +cu{m.group(1)} (CUDA {tagged[0]}.{tagged[1]})"
    if cuda is None:
        for req in requires:
            r = re.match(r"\s*nvidia-cublas(?:-cu(\d+))?\b", req)
            if r:
                cuda = int(r.group(1)) if r.group(1) else 13
                src = f"torch Requires-Dist: {req.split(';')[0].strip()}"
                break
    if cuda is None:
        return None
    cudnn: Optional[int] = None
    for req in requires:
        r = re.match(r"\s*nvidia-cudnn-cu\d+\s*==\s*(\d+)", req)
        if r:
            cudnn = int(r.group(1))
    return Need("torch", version, cuda, ("cudart", "cublas"), ("cudnn", "nvrtc", "cufft", "curand",
                                                               "cusparse", "cusolver", "nccl"),
                cudnn, src)


def needs_of(consumer: str, version: str, requires: Sequence[str] = ()) -> Optional[Need]:
    """The ``Need`` of ``consumer`` at ``version``, or ``None`` when that build
    uses no CUDA (or the version is not one gpuboot knows)."""
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
    """``(version, Requires-Dist)`` of an installed distribution, or ``None``."""
    from importlib import metadata

    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    return dist.version, list(dist.requires or [])


def installed_needs(consumers: Sequence[str] = CONSUMERS, metadata: Metadata = read_metadata) -> List[Need]:
    """``Need``s of the consumers installed in this environment."""
    out: List[Need] = []
    for name in consumers:
        found = metadata(name)
        if found is None:
            continue
        need = needs_of(name, found[0], found[1])
        if need is not None:
            out.append(need)
    return out
