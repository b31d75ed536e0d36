"""How gpuboot reads what a consumer needs from its metadata: version tables (``Rule`` rows) and readers of its
Requires-Dist (torch's local tags and ``nvidia-*`` requirements, the ``and-cuda``/``with-cuda`` extras).

Values only: nothing here reads the environment.  ``gpuboot.consumers.table`` holds the consumer rows that use them.
"""

from __future__ import annotations

import re
from typing import Any, Callable, List, Optional, Sequence, Tuple

from ..base.record import Record

__all__ = ["Need", "Rule", "CTRANSLATE2_RULES", "ONNXRUNTIME_RULES", "cuda_version_of_tag", "match_rules",
           "torch_need", "wheels_need", "canonical", "TF_LIBS", "JAX_LIBS",
           "CUPY_LIBS"]


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


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def match_rules(consumer: str, version: str, rules: Sequence[Rule]) -> Optional[Need]:
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


def torch_need(version: str, requires: Sequence[str]) -> Optional[Need]:
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
        found = _cuda_of_requires(reqs)
        if found is not None:
            cuda, src = found[0], f"torch {found[1]}"
    if cuda is None:
        return None
    cudnn: Optional[int] = None
    for req in reqs:
        if re.fullmatch(r"nvidia-cudnn-cu\d+", canonical(req.name)):
            pins = [s.version for s in req.specifier if s.operator in ("==", "===")]
            major = re.match(r"(\d+)", pins[0]) if pins else None
            cudnn = int(major.group(1)) if major else cudnn
    return Need(consumer="torch", version=version, cuda_major=cuda, libraries=("cudart", "cublas"),
                optional=("cudnn", "nvrtc", "cufft", "curand", "cusparse", "cusolver", "nccl"),
                cudnn_major=cudnn, source=src)


def _cuda_of_requires(reqs: Sequence[Any]) -> Optional[Tuple[int, str]]:
    """The CUDA major a consumer's Requires-Dist names, with the line: ``nvidia-cuda-runtime-cuNN`` /
    ``nvidia-cublas-cuNN`` (plain names from CUDA 13), or NVIDIA's ``cuda-toolkit[...]==13.0.3`` metapackage
    (torch 2.14.1, CuPy's ``ctk`` extra)."""
    for req in reqs:
        name = canonical(req.name)
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


def wheels_need(libraries: Tuple[str, ...], optional: Tuple[str, ...] = (), name_major: Optional[int] = None
                 ) -> Callable[[str, Sequence[str]], Optional[Need]]:
    """A ``reads`` for a consumer whose Requires-Dist names the NVIDIA wheels it needs (often under an extra:
    ``tensorflow[and-cuda]``, ``jax-cuda12-plugin[with-cuda]``): the CUDA major from ``nvidia-cuda-runtime-cuNN``
    / ``nvidia-cublas-cuNN`` (plain names from CUDA 13), the cuDNN major from ``nvidia-cudnn-cuNN``'s specifier;
    ``name_major`` when its distribution name says it (``cupy-cuda12x``)."""

    def read(version: str, requires: Sequence[str], consumer: str = "") -> Optional[Need]:
        reqs = _requirements(requires)
        cudnn: Optional[int] = None
        found = _cuda_of_requires(reqs)
        cuda, src = found if found is not None else (None, "")
        for req in reqs:
            if re.fullmatch(r"nvidia-cudnn-cu\d+", canonical(req.name)) and cudnn is None:
                cudnn = _major_of(req)
        if cuda is None and name_major is not None:
            cuda, src = name_major, f"its distribution name (CUDA {name_major})"
        if cuda is None:
            return None
        return Need(consumer=consumer, version=version, cuda_major=cuda, libraries=libraries, optional=optional,
                    cudnn_major=cudnn if "cudnn" in libraries + optional else None, source=src)

    return read


#: The libraries TensorFlow, JAX and CuPy load (their wheels' Requires-Dist and DT_NEEDED).
TF_LIBS = ("cudart", "cublasLt", "cublas", "cufft", "curand", "cusolver", "cusparse", "cudnn", "nvjitlink")
JAX_LIBS = ("cudart", "cublasLt", "cublas", "cufft", "cusolver", "cusparse", "cudnn", "cupti")
CUPY_LIBS = ("cublasLt", "cublas", "cufft", "curand", "cusolver", "cusparse", "nvrtc")
