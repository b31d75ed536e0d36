"""The GPU consumers gpuboot knows: ``CONSUMER_TABLE``, one row each, carrying everything known about it.

A new consumer, or a new fact about one (a CTranslate2 release's rule, a known-bad build, an old build that still
carries an architecture), is a change to its row here, plus the test data of its real wheel
(``tests/data/consumers/``, checked by ``tests/test_consumer_rows.py``).  Binaries, libraries and majors were read
off the wheels named in each row's comment (Requires-Dist, the file list, ELF ``DT_NEEDED`` and ``RUNPATH``,
fatbins); TensorRT's and llama-cpp-python's CUDA builds are not on PyPI as wheels (PyPI has their source
distributions), so theirs come from their binaries when installed.
Nothing here imports a consumer, except ``ctranslate2_compute_types`` when asked to.
"""

from __future__ import annotations

from typing import Dict, Optional, Set, Tuple

from .readers import local_tag_or_requires, requires_dist
from .types import ArchFix, Consumer, Index, Pairing, Quirk, Rule

__all__ = ["CONSUMER_TABLE", "CONSUMERS", "consumer", "for_names", "ctranslate2_compute_types", "torch_mps_available"]


def ctranslate2_compute_types(ordinal: int) -> Optional[Set[str]]:
    """``ctranslate2.get_supported_compute_types("cuda", ordinal)``, or ``None`` where ctranslate2 is absent or
    CUDA has no such device.  Imports ctranslate2."""
    import importlib.util

    if importlib.util.find_spec("ctranslate2") is None:
        return None
    try:
        import ctranslate2

        # Without a usable CUDA device the first call raises, and later calls in the same process answer
        # {"float32"} (ctranslate2 4.8.5): only a device that CUDA counts has a meaningful answer.
        if ctranslate2.get_cuda_device_count() <= ordinal:
            return None
        return set(ctranslate2.get_supported_compute_types("cuda", ordinal))
    except Exception:  # raises RuntimeError without a driver or CUDA device
        return None


def torch_mps_available() -> bool:
    """``torch.backends.mps.is_available()``, ``False`` where torch is absent.  Imports torch."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.backends.mps.is_available())


#: The libraries TensorFlow, JAX and CuPy load (their wheels' Requires-Dist and DT_NEEDED).
_TF_LIBS = ("cudart", "cublasLt", "cublas", "cufft", "curand", "cusolver", "cusparse", "cudnn", "nvjitlink")
_JAX_LIBS = ("cudart", "cublasLt", "cublas", "cufft", "cusolver", "cusparse", "cudnn", "cupti")
_CUPY_LIBS = ("cublasLt", "cublas", "cufft", "curand", "cusolver", "cusparse", "nvrtc")
_CUPY_BUILD = ("build CuPy for it: CUPY_NVCC_GENERATE_CODE=arch=compute_{arch},code=sm_{arch} pip install cupy "
               "--no-binary cupy (CuPy 'Installation', environment variables)")
_JAX_BUILD = ("build jaxlib's CUDA plugin for it: python build/build.py build --wheels=jax-cuda-plugin "
              "--cuda_compute_capabilities={cc} (JAX 'Building from source')")


def _cupy(major: int) -> Consumer:  # cupy-cuda12x 14.2.0, cupy-cuda13x 14.2.0 (manylinux2014)
    return Consumer(name=f"cupy-cuda{major}x", for_name="cupy", imports=("cupy",), reads=requires_dist,
                    cuda_major=major, optional=_CUPY_LIBS, build_arch=_CUPY_BUILD,
                    binaries=("cupy/cuda/thrust.*", "cupy/cuda/cub.*", "cupy_backends/cuda/libs/cublas.*"))


def _jax(major: int) -> Consumer:  # jax-cuda12-plugin 0.12.0.1, jax-cuda13-plugin 0.12.1; xla_cuda_plugin.so: -pjrt's
    return Consumer(name=f"jax-cuda{major}-plugin", for_name="jax", imports=("jax",), reads=requires_dist,
                    cuda_major=major, libraries=_JAX_LIBS, optional=("nvrtc", "nvjitlink"), build_arch=_JAX_BUILD,
                    binaries=(f"jax_plugins/xla_cuda{major}/xla_cuda_plugin.so", f"jax_cuda{major}_plugin/_linalg.so"))


def _tensorrt(major: int) -> Consumer:  # tensorrt-cu12/-cu13-libs 11.4.0.106: PyPI has the sdists, NVIDIA the wheels
    return Consumer(name=f"tensorrt-cu{major}-libs", for_name="tensorrt", imports=("tensorrt",), reads=requires_dist,
                    cuda_major=major, libraries=("cudart",),
                    binaries=("tensorrt_libs/libnvinfer.so.*", "tensorrt_libs/nvinfer_*.dll"))


#: The consumers gpuboot knows, one row each; a row's rules are oldest first.
CONSUMER_TABLE: Tuple[Consumer, ...] = (
    # ctranslate2 4.8.5 (cp311 manylinux and win_amd64), 4.7.0, 4.6.3, 4.6.2, 3.24.0 (manylinux). cudart is linked
    # statically into libctranslate2 (its NEEDED list has no cudart; it dlopens libcublas.so.12 by name, and cuBLAS
    # loads lazily at the first GEMM). Rules: CTranslate2 CHANGELOG and faster-whisper README ("GPU").
    Consumer(
        name="ctranslate2", for_name="ctranslate2", imports=("ctranslate2",), plain_load_on_windows=True,
        binaries=("ctranslate2.libs/libctranslate2*.so*", "ctranslate2/ctranslate2.dll"),
        rules=(
            Rule(specifier="<4.0.0", cuda_major=11, libraries=("cublas", "cudnn"), cudnn_major=8,
                 source="CTranslate2 CHANGELOG 4.0.0: 'CUDA 12 is now the default'; 3.x used CUDA 11 + cuDNN 8"),
            Rule(specifier=">=4.0.0,<4.5.0", cuda_major=12, libraries=("cublas", "cudnn"), cudnn_major=8,
                 source="CTranslate2 CHANGELOG 4.0.0: CUDA 12 + cuDNN 8"),
            Rule(specifier=">=4.5.0,<4.6.3", cuda_major=12, libraries=("cublas", "cudnn"), cudnn_major=9,
                 source="CTranslate2 CHANGELOG 4.5.0: cuDNN 9"),
            Rule(specifier=">=4.6.3", cuda_major=12, libraries=("cublas",), optional=("cudnn",), cudnn_major=9,
                 source="CTranslate2 CHANGELOG 4.6.3: cuDNN optional (pure-CUDA Conv1d)"),
        ),
        upgrade=True, chooses="compute_type", placement=True, compute_types=ctranslate2_compute_types,
        build_arch="build CTranslate2 for it: cmake -DWITH_CUDA=ON -DCUDA_ARCH_LIST={cc} (CTranslate2's CMake "
                   "option; a native sm_120 build ran float16 4.3x faster than the PTX one, CTranslate2 #1933)",
        arch_fixes=(
            ArchFix(cc_from=(3, 5), cc_below=(5, 3),
                    fix='pip install "ctranslate2<4" (3.24.0: cubins sm_35 and sm_50; built for CUDA 11 and cuDNN 8, '
                        'so also pip install nvidia-cublas-cu11 "nvidia-cudnn-cu11<9")',
                    source="the ctranslate2 3.24.0 manylinux wheel's libctranslate2 fatbin: cubins sm_35, sm_50, "
                           "sm_53, sm_60, sm_61, sm_70, sm_75, sm_80, sm_86 (tests/test_gpu_code.py reads it)"),
        ),
        # torch < 2.4 pins cuDNN 8 (torch 2.3.1: nvidia-cudnn-cu12==8.9.2.26); ctranslate2 4.5.0-4.6.2 needs
        # cuDNN 9; ctranslate2 4.4.0 is the last on cuDNN 8 and torch 2.4 the first on cuDNN 9.
        pairings=(
            Pairing(library="nvidia-cudnn-cu12", major=9, pinned_by="torch", pinned_spec="<2.4",
                    consumer_fix="ctranslate2==4.4.0", other_fix="torch>=2.4",
                    source="faster-whisper #1086; CTranslate2 CHANGELOG 4.5.0 (cuDNN 9); torch 2.4.0 Requires-Dist"),
        ),
        quirks=(
            Quirk(id="ctranslate2-int8-cc12", severity="warning", versions="<4.7", cc_majors=(12,),
                  drops=("int8", "int8_float32", "int8_float16", "int8_bfloat16"),
                  what="int8 compute types fail with CUBLAS_STATUS_NOT_SUPPORTED", fix="ctranslate2>=4.7.0",
                  source="CTranslate2 #1865; fixed by padding int8 GEMMs to multiples of 16 in 4.7.0 "
                         "(CTranslate2 #1982)"),
            Quirk(id="ctranslate2-int8-cublas13", severity="warning", cuda_from=13, cc_majors=(12,),
                  drops=("int8_float16", "int8_bfloat16"),
                  what="int8_float16 and int8_bfloat16 crash in cuBLAS 13 unless CTranslate2 was built for sm_120",
                  instead="use compute_type float16 or bfloat16 (or build CTranslate2 with -DCUDA_ARCH_LIST=12.0)",
                  source="CTranslate2 #1933 (int8_float16 and int8_bfloat16 with cuBLAS 13 on CC 12.0)"),
        )),
    # onnxruntime-gpu 1.31.1 (manylinux): the CUDA Execution Provider requirements table
    # (onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html).
    Consumer(
        name="onnxruntime-gpu", for_name="onnxruntime", imports=("onnxruntime",), placement=True,
        binaries=("onnxruntime/capi/libonnxruntime_providers_cuda.so",
                  "onnxruntime/capi/onnxruntime_providers_cuda.dll"),
        rules=(
            Rule(specifier="<1.17.0", cuda_major=11, libraries=("cudart", "cublas", "cufft", "cudnn"), cudnn_major=8,
                 source="onnxruntime CUDA EP requirements: up to 1.16 CUDA 11.x + cuDNN 8"),
            Rule(specifier=">=1.17.0,<1.19.0", cuda_major=12, libraries=("cudart", "cublas", "cufft", "cudnn"),
                 cudnn_major=8,
                 source="onnxruntime CUDA EP requirements: 1.17-1.18 default CUDA 12 builds use cuDNN 8"),
            Rule(specifier=">=1.19.0", cuda_major=12, libraries=("cudart", "cublas", "cufft", "cudnn"),
                 optional=("curand",), cudnn_major=9,
                 source="onnxruntime CUDA EP requirements: 1.19+ default build is CUDA 12.x + cuDNN 9"),
        ),
        build_arch="build ONNX Runtime for it: ./build.sh --use_cuda --cmake_extra_defines "
                   "CMAKE_CUDA_ARCHITECTURES={arch} (ONNX Runtime build documentation)"),
    # torch 2.9.1 (manylinux_2_28: CUDA 12.8 Requires-Dist; win_amd64: the CPU build), 2.15.0 (CUDA 13: NVIDIA's
    # cuda-toolkit metapackage), 2.4.0 and 2.3.1 (the cuDNN 9 and cuDNN 8 pins of the pairing).
    Consumer(
        name="torch", for_name="torch", imports=("torch",), reads=local_tag_or_requires,
        libraries=("cudart", "cublas"), optional=("cudnn", "nvrtc", "cufft", "curand", "cusparse", "cusolver", "nccl"),
        binaries=("torch/lib/libtorch_cuda.so", "torch/lib/torch_cuda.dll"), chooses="torch_dtype", placement=True,
        apple_gpu=torch_mps_available,
        build_arch="build PyTorch for it: TORCH_CUDA_ARCH_LIST={cc} python setup.py develop (PyTorch README, "
                   "'From Source')",
        arch_fixes=(
            ArchFix(cc_from=(5, 0), cc_below=(7, 5), index="cu126",
                    fix="install PyTorch's CUDA 12.6 build, which still carries Maxwell (5.0), Pascal (6.0) and "
                        "Volta (7.0): pip install torch --index-url https://download.pytorch.org/whl/cu126",
                    source="PyTorch 2.8 release notes ('Removed support for Maxwell, Pascal, and Volta architectures "
                           "with CUDA 12.8 and 12.9 builds'); support matrix in pytorch/pytorch#172352 (12.6: 5.0, "
                           "6.0, 7.0, 7.5, 8.0, 8.6, 9.0)"),
        ),
        # PyTorch's "Previous PyTorch Versions" page (pytorch.org/get-started/previous-versions).
        index_url="https://download.pytorch.org/whl/{tag}",
        indexes=(Index(tag="cu117", cuda=(11, 7), serves=">=1.13,<2.1"),
                 Index(tag="cu118", cuda=(11, 8), serves=">=2.0,<2.8"),
                 Index(tag="cu121", cuda=(12, 1), serves=">=2.1,<2.6"),
                 Index(tag="cu124", cuda=(12, 4), serves=">=2.4,<2.7"),
                 Index(tag="cu126", cuda=(12, 6), serves=">=2.6,<2.10"),
                 Index(tag="cu128", cuda=(12, 8), serves=">=2.7"),
                 Index(tag="cu129", cuda=(12, 9), serves=">=2.8,<2.9"),
                 Index(tag="cu130", cuda=(13, 0), serves=">=2.9"))),
    # tensorflow 2.21.0 (manylinux): its and-cuda extra.
    Consumer(
        name="tensorflow", for_name="tensorflow", imports=("tensorflow",), reads=requires_dist, libraries=_TF_LIBS,
        optional=("nccl", "cupti", "nvrtc"),
        binaries=("tensorflow/libtensorflow_framework.so.2", "tensorflow/libtensorflow_cc.so.2"),
        build_arch="build TensorFlow for it: ./configure with TF_CUDA_COMPUTE_CAPABILITIES={cc} (TensorFlow "
                   "'Build from source')"),
    _jax(12),
    _jax(13),
    _cupy(12),
    _cupy(13),
    _tensorrt(12),
    _tensorrt(13),
    # llama-cpp-python 0.3.36 (PyPI's sdist; CUDA wheels are on its own index): what it needs comes from its
    # libggml-cuda's NEEDED.
    Consumer(
        name="llama-cpp-python", for_name="llama-cpp", imports=("llama_cpp",),
        libraries=("cudart", "cublasLt", "cublas"),
        binaries=("llama_cpp/lib/libggml-cuda.so", "llama_cpp/lib/ggml-cuda.dll"),
        build_arch='build it for it: CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES={arch}" pip install '
                   "llama-cpp-python --no-binary llama-cpp-python (llama-cpp-python README)"),
)

#: Consumers gpuboot knows, by distribution name.
CONSUMERS: Tuple[str, ...] = tuple(c.name for c in CONSUMER_TABLE)


def consumer(name: str) -> Optional[Consumer]:
    """The row of distribution ``name`` (any spelling: ``onnxruntime_gpu``), or ``None``."""
    from ..machine.metadata import canonical_name

    wanted = canonical_name(name)
    return next((c for c in CONSUMER_TABLE if c.name == wanted), None)


def for_names() -> Dict[str, Tuple[str, ...]]:
    """``--for`` name -> the distribution names of its rows (``jax`` is ``jax-cuda12-plugin`` and
    ``jax-cuda13-plugin``), table order."""
    out: Dict[str, Tuple[str, ...]] = {}
    for row in CONSUMER_TABLE:
        out[row.for_name] = (*out.get(row.for_name, ()), row.name)
    return out
