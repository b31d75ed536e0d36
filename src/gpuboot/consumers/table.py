"""The GPU consumers gpuboot knows (``CONSUMER_TABLE``, one row each) and what the installed ones need.

Nothing here imports ctranslate2, torch or the others: versions come from
``importlib.metadata`` (the ``.dist-info`` directories), read by the rules and
readers of ``_consumer_rules``, and the majors a consumer's own binaries link
(``_code/files.py``) correct them.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

from ..base.record import Record
from .readers import (
    CTRANSLATE2_RULES,
    CUPY_LIBS,
    JAX_LIBS,
    ONNXRUNTIME_RULES,
    TF_LIBS,
    Need,
    Rule,
    canonical,
    cuda_version_of_tag,
    match_rules,
    torch_need,
    wheels_need,
)

__all__ = ["Need", "Rule", "Consumer", "CONSUMER_TABLE", "CONSUMERS", "CTRANSLATE2_RULES", "consumer", "needs_of",
           "installed_needs", "read_metadata", "cuda_version_of_tag"]


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
        binaries: ``glob`` patterns, relative to the directory holding its
            ``.dist-info``, of the files that carry its GPU code and name the
            CUDA libraries it links (``_code/files.py``); where they
            link a CUDA or cuDNN major, that major is the one it needs, whatever
            its version or name says.
        imports: its top-level import names (``gpuboot hook`` runs ``ensure()``
            before the first of them is imported).
        build_arch: how to build it with native code for one architecture:
            ``{cc}`` becomes ``9.0``, ``{arch}`` ``90``.
        libraries: catalog names it loads, when no rule says (a row read from its
            binaries or its name alone).
    """

    name: str
    for_name: str
    rules: Tuple[Rule, ...] = ()
    reads: Optional[Callable[[str, Sequence[str]], Optional[Need]]] = None
    plain_load_on_windows: bool = False
    upgrade: Optional[str] = None
    upgrade_source: str = ""
    binaries: Tuple[str, ...] = ()
    imports: Tuple[str, ...] = ()
    build_arch: str = ""
    libraries: Tuple[str, ...] = ()


#: The consumers gpuboot knows; a new consumer is one row (and its rules).  Binaries, libraries and majors of the
#: new rows were read off their wheels (tensorflow 2.21.0, jax-cuda12-plugin/-pjrt 0.10.2, cupy-cuda12x 14.2.0:
#: Requires-Dist, ELF DT_NEEDED and RUNPATH, fatbins); TensorRT's and llama-cpp-python's CUDA builds are not on PyPI
#: as wheels, so theirs come from their binaries when installed.
CONSUMER_TABLE: Tuple[Consumer, ...] = (
    Consumer(name="ctranslate2", for_name="ctranslate2", rules=CTRANSLATE2_RULES, plain_load_on_windows=True,
             upgrade="ctranslate2>=4.6.3",
             upgrade_source="ctranslate2 >= 4.6.3: CUDA 12 builds (CTranslate2 CHANGELOG 4.0.0, 4.6.3)",
             binaries=("ctranslate2.libs/libctranslate2*.so*", "ctranslate2/ctranslate2.dll"), imports=("ctranslate2",),
             build_arch="build CTranslate2 for it: cmake -DWITH_CUDA=ON -DCUDA_ARCH_LIST={cc} (CTranslate2's CMake "
                        "option; a native sm_120 build ran float16 4.3x faster than the PTX one, CTranslate2 #1933)"),
    Consumer(name="onnxruntime-gpu", for_name="onnxruntime", rules=ONNXRUNTIME_RULES,
             binaries=("onnxruntime/capi/libonnxruntime_providers_cuda.so",
                       "onnxruntime/capi/onnxruntime_providers_cuda.dll"), imports=("onnxruntime",),
             build_arch="build ONNX Runtime for it: ./build.sh --use_cuda --cmake_extra_defines "
                        "CMAKE_CUDA_ARCHITECTURES={arch} (ONNX Runtime build documentation)"),
    Consumer(name="torch", for_name="torch", reads=torch_need, libraries=("cudart", "cublas"),
             binaries=("torch/lib/libtorch_cuda.so", "torch/lib/torch_cuda.dll"), imports=("torch",),
             build_arch="build PyTorch for it: TORCH_CUDA_ARCH_LIST={cc} python setup.py develop (PyTorch README, "
                        "'From Source')"),
    Consumer(name="tensorflow", for_name="tensorflow",
             reads=wheels_need(TF_LIBS, optional=("nccl", "cupti", "nvrtc")),
             binaries=("tensorflow/libtensorflow_framework.so.2", "tensorflow/libtensorflow_cc.so.2"),
             imports=("tensorflow",),
             build_arch="build TensorFlow for it: ./configure with TF_CUDA_COMPUTE_CAPABILITIES={cc} (TensorFlow "
                        "'Build from source')"),
    Consumer(name="jax-cuda12-plugin", for_name="jax", reads=wheels_need(JAX_LIBS, optional=("nvrtc", "nvjitlink"),
                                                                             name_major=12),
             binaries=("jax_plugins/xla_cuda12/xla_cuda_plugin.so", "jax_cuda12_plugin/_linalg.so"), imports=("jax",),
             build_arch="build jaxlib's CUDA plugin for it: python build/build.py build --wheels=jax-cuda-plugin "
                        "--cuda_compute_capabilities={cc} (JAX 'Building from source')"),
    Consumer(name="jax-cuda13-plugin", for_name="jax", reads=wheels_need(JAX_LIBS, optional=("nvrtc", "nvjitlink"),
                                                                             name_major=13),
             binaries=("jax_plugins/xla_cuda13/xla_cuda_plugin.so", "jax_cuda13_plugin/_linalg.so"), imports=("jax",),
             build_arch="build jaxlib's CUDA plugin for it: python build/build.py build --wheels=jax-cuda-plugin "
                        "--cuda_compute_capabilities={cc} (JAX 'Building from source')"),
    Consumer(name="cupy-cuda12x", for_name="cupy", reads=wheels_need((), optional=CUPY_LIBS, name_major=12),
             binaries=("cupy/cuda/thrust.*", "cupy/cuda/cub.*", "cupy_backends/cuda/libs/cublas.*"),
             imports=("cupy",),
             build_arch="build CuPy for it: CUPY_NVCC_GENERATE_CODE=arch=compute_{arch},code=sm_{arch} pip install "
                        "cupy --no-binary cupy (CuPy 'Installation', environment variables)"),
    Consumer(name="cupy-cuda13x", for_name="cupy", reads=wheels_need((), optional=CUPY_LIBS, name_major=13),
             binaries=("cupy/cuda/thrust.*", "cupy/cuda/cub.*", "cupy_backends/cuda/libs/cublas.*"),
             imports=("cupy",),
             build_arch="build CuPy for it: CUPY_NVCC_GENERATE_CODE=arch=compute_{arch},code=sm_{arch} pip install "
                        "cupy --no-binary cupy (CuPy 'Installation', environment variables)"),
    Consumer(name="tensorrt-cu12-libs", for_name="tensorrt", reads=wheels_need(("cudart",), name_major=12),
             binaries=("tensorrt_libs/libnvinfer.so.*", "tensorrt_libs/nvinfer_*.dll"), imports=("tensorrt",)),
    Consumer(name="tensorrt-cu13-libs", for_name="tensorrt", reads=wheels_need(("cudart",), name_major=13),
             binaries=("tensorrt_libs/libnvinfer.so.*", "tensorrt_libs/nvinfer_*.dll"), imports=("tensorrt",)),
    Consumer(name="llama-cpp-python", for_name="llama-cpp", libraries=("cudart", "cublasLt", "cublas"),
             binaries=("llama_cpp/lib/libggml-cuda.so", "llama_cpp/lib/ggml-cuda.dll"), imports=("llama_cpp",),
             build_arch='build it for it: CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES={arch}" pip install '
                        "llama-cpp-python --no-binary llama-cpp-python (llama-cpp-python README)"),
)

#: Consumers gpuboot knows, by distribution name.
CONSUMERS: Tuple[str, ...] = tuple(c.name for c in CONSUMER_TABLE)


def consumer(name: str) -> Optional[Consumer]:
    """The row of distribution ``name`` (any spelling: ``onnxruntime_gpu``), or ``None``."""
    wanted = canonical(name)
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
        need = row.reads(version, requires)
        return need._replace(consumer=row.name) if need is not None and not need.consumer else need
    return match_rules(row.name, version, row.rules)


Metadata = Callable[[str], Optional[Tuple[str, Sequence[str]]]]


def read_metadata(name: str) -> Optional[Tuple[str, Sequence[str]]]:
    """``(version, Requires-Dist)`` of the first installed distribution called
    ``name`` whose metadata is valid (``_metadata``), or ``None``.  Never raises
    for what the metadata says: a malformed one is skipped here and reported by
    ``malformed_distributions()`` (doctor's ``malformed-metadata``)."""
    from ..machine.metadata import read_distribution
    from ..machine.snapshot import current

    given = current().metadata
    if given is not None:
        return given(name)
    dist, _bad = read_distribution(name)
    return (dist.version, list(dist.requires)) if dist is not None else None


def installed_needs(consumers: Sequence[str] = CONSUMERS) -> List[Need]:
    """``Need``s of the consumers installed in this environment: from their
    version tables or Requires-Dist, corrected by what their own binaries link
    (``Consumer.binaries``: ``libonnxruntime_providers_cuda.so`` needing
    ``libcublas.so.13`` is a CUDA 13 build whatever its version range says)."""
    out: List[Need] = []
    for name in consumers:
        found = read_metadata(name)
        if found is None:
            continue
        need = _linked_need(name, found[0], needs_of(name, found[0], found[1]))
        if need is not None:
            out.append(need)
    return out


def _linked_need(name: str, version: str, need: Optional[Need]) -> Optional[Need]:
    """``need`` corrected by the CUDA and cuDNN majors the consumer's binaries link, when they name any."""
    from .binaries import installed_binaries, linked

    row = consumer(name)
    if row is None or not row.binaries:
        return need
    found, binaries = installed_binaries(row.name, row.binaries)
    if found != version or not binaries:
        return need
    links = linked(binaries)
    if links.cuda_major is None:
        return need
    evidence = "; ".join(links.evidence) + " (its binary's dynamic section)"
    if need is None:
        return Need(consumer=row.name, version=version, cuda_major=links.cuda_major, libraries=row.libraries,
                    cudnn_major=links.cudnn_major, source=evidence)
    cudnn = links.cudnn_major if links.cudnn_major is not None else need.cudnn_major
    if links.cuda_major == need.cuda_major and cudnn == need.cudnn_major:
        return need
    return need._replace(cuda_major=links.cuda_major, cudnn_major=cudnn,
                         source=f"{evidence}, not what {need.source or 'its metadata'} says")
