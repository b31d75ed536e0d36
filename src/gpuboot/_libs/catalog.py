"""The NVIDIA library catalog: facts only, no searching and no loading.

Every soname and DLL name below was read from the real wheels on PyPI; their
file lists are kept in ``tests/data/wheels/`` and ``tests/test_catalog.py``
checks the catalog against them.  Wheels read (2026-11):

* CUDA 11: nvidia-cuda-runtime-cu11 11.8.89, nvidia-cublas-cu11 11.11.3.6,
  nvidia-cuda-nvrtc-cu11 11.8.89, nvidia-cudnn-cu11 8.9.x.
* CUDA 12: nvidia-*-cu12 12.9.x (cufft 11.4, curand 10.3, cusolver 11.7,
  cusparse 12.5, nvjitlink 12.9, cupti 12.9, nccl 2.32), nvidia-cudnn-cu12
  8.9.7.29 and 9.28.0.42.
* CUDA 13: nvidia-cuda-runtime 13.5, nvidia-cublas 13.10, nvidia-cufft 12.5,
  nvidia-curand 10.4, nvidia-cusolver 12.4, nvidia-cusparse 12.9,
  nvidia-nvjitlink 13.5, nvidia-cuda-cupti 13.5, nvidia-cudnn-cu13 9.28,
  nvidia-nccl-cu13 2.32.  CUDA 13 wheels drop the ``-cuXX`` suffix and share
  one directory, ``nvidia/cu13/lib`` (Windows ``nvidia/cu13/bin/x86_64``).

Facts worth knowing, all visible in those lists:

* A soname's number is the library's own ABI version, not the CUDA major:
  CUDA 12 cuFFT is ``libcufft.so.11`` and CUDA 13 cuFFT is ``libcufft.so.12``;
  cuRAND is ``libcurand.so.10`` for CUDA 11, 12 and 13.  Where the name alone
  is ambiguous, the directory (``cu13``) or the owning distribution
  (``nvidia-curand-cu12``) says which CUDA major a file belongs to.
* cuDNN and NCCL keep ``nvidia/cudnn`` and ``nvidia/nccl`` for every CUDA
  major; their CUDA major comes from the distribution's ``-cuXX`` suffix.
* Wheels ship only soname-named files: there is no unversioned
  ``libcudart.so`` in any of them.
"""

from __future__ import annotations

from ..base.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Mapping

#: Versions of CUDA this catalog knows, oldest first.
CUDA_MAJORS: tuple[int, ...] = (11, 12, 13)
#: Versions of cuDNN this catalog knows.
CUDNN_MAJORS: tuple[int, ...] = (8, 9)

# What a library's ``variants`` mapping is keyed by.
KEY_CUDA = "cuda"  # the CUDA major (cudart, cublas, ...)
KEY_CUDNN = "cudnn"  # the cuDNN major; CUDA major from the distribution
KEY_NCCL = "nccl"  # NCCL's own major (2); CUDA major from the distribution
KEY_DRIVER = "driver"  # installed with the driver, never by a wheel


class Variant(Record):
    """One version of a library: its file names on each platform.

    ``linux`` holds sonames and ``windows`` DLL names.  A name may be a
    ``fnmatch`` pattern where NVIDIA puts a changing version in it
    (``cupti64_2025.2.1.dll``).  The first name is the one a consumer loads.
    """

    linux: tuple[str, ...] = ()
    windows: tuple[str, ...] = ()
    #: pip requirement that installs this variant, for each CUDA major where it
    #: differs; key 0 means "any CUDA major".
    wheels: Mapping[int, str] = {}


class LibrarySpec(Record):
    """Catalog entry for one NVIDIA library.

    Attributes:
        name: gpuboot's short name (``"cublas"``).
        component: the per-component wheel directory, ``nvidia/<component>``.
        key: what ``variants`` is keyed by (``KEY_CUDA`` and friends).
        variants: key value (a CUDA major, a cuDNN major, ...) -> ``Variant``.
        depends: names that must be loaded first, in order (from the wheels'
            ELF ``NEEDED`` entries: libcublas.so.12 needs libcublasLt.so.12).
        parts: for a library split into sub-libraries that it ``dlopen``s
            itself (cuDNN 9), the names of those parts.
        optional: names it ``dlopen``s when present and works without
            (cuDNN 9 and nvrtc: runtime-compiled engines).
    """

    name: str
    component: str
    key: str
    variants: Mapping[int, Variant]
    depends: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    def filenames(self, platform: str, version: int) -> tuple[str, ...]:
        variant = self.variants.get(version)
        if variant is None:
            return ()
        return variant.windows if platform == "win32" else variant.linux


def _cuda(
    linux: Mapping[int, str | tuple[str, ...]],
    windows: Mapping[int, str | tuple[str, ...]],
    wheel: str | Mapping[int, str],
) -> dict[int, Variant]:
    """Variants of a CUDA toolkit library, wheel names following NVIDIA's rule:
    ``<wheel>-cu11``, ``<wheel>-cu12`` and, from CUDA 13, plain ``<wheel>``
    (or given per CUDA major where a library breaks the rule)."""
    out: dict[int, Variant] = {}
    for major in CUDA_MAJORS:
        lin = linux.get(major, ())
        win = windows.get(major, ())
        if not lin and not win:
            continue
        if not isinstance(wheel, str):
            req = wheel[major]
        else:
            req = wheel if major >= 13 else f"{wheel}-cu{major}"
        out[major] = Variant(
            linux=(lin,) if isinstance(lin, str) else tuple(lin),
            windows=(win,) if isinstance(win, str) else tuple(win),
            wheels={major: req},
        )
    return out


def _entry(name: str, component: str, linux: Mapping[int, str | tuple[str, ...]],
          windows: Mapping[int, str | tuple[str, ...]], wheel: str | Mapping[int, str],
          depends: tuple[str, ...] = ()) -> LibrarySpec:
    return LibrarySpec(name=name, component=component, key=KEY_CUDA,
                       variants=_cuda(linux, windows, wheel), depends=depends)


def _cudnn_part(name: str, linux8: str | None, win8: str | None,
                linux9: str | None, win9: str | None,
                depends: tuple[str, ...] = ()) -> LibrarySpec:
    variants: dict[int, Variant] = {}
    if linux8 or win8:
        variants[8] = Variant(linux=(linux8,) if linux8 else (),
                              windows=(win8,) if win8 else (), wheels=_CUDNN_WHEELS[8])
    if linux9 or win9:
        variants[9] = Variant(linux=(linux9,) if linux9 else (),
                              windows=(win9,) if win9 else (), wheels=_CUDNN_WHEELS[9])
    return LibrarySpec(name=name, component="cudnn", key=KEY_CUDNN, variants=variants, depends=depends)


# cuDNN wheels carry the CUDA major in their name for every CUDA major.
_CUDNN_WHEELS: dict[int, dict[int, str]] = {
    8: {11: "nvidia-cudnn-cu11==8.*", 12: "nvidia-cudnn-cu12==8.*"},
    9: {11: "nvidia-cudnn-cu11==9.*", 12: "nvidia-cudnn-cu12==9.*", 13: "nvidia-cudnn-cu13==9.*"},
}

# cuDNN 9 sub-libraries: libcudnn.so.9 is a shim that dlopens them; all of them
# need libcudnn_graph.so.9 (cuDNN 9 release notes, "API changes": the library
# was split into graph, ops, cnn, adv and engine libraries).
# engines_tensor_ir and ext appeared after 9.1 (absent from the 9.1.0.70 wheel,
# present in 9.28.0.42): parts are loaded when present, never required.
_CUDNN9_PARTS = ("cudnn_graph", "cudnn_engines_precompiled", "cudnn_engines_runtime_compiled",
                 "cudnn_engines_tensor_ir", "cudnn_heuristic", "cudnn_ops", "cudnn_cnn", "cudnn_adv",
                 "cudnn_ext")
# cuDNN 8 sub-libraries (cuDNN 8 developer guide, "library layout").
_CUDNN8_PARTS = ("cudnn_ops_infer", "cudnn_ops_train", "cudnn_cnn_infer", "cudnn_cnn_train",
                 "cudnn_adv_infer", "cudnn_adv_train")

_SPECS: tuple[LibrarySpec, ...] = (
    _entry("cudart", "cuda_runtime",
          {11: "libcudart.so.11.0", 12: "libcudart.so.12", 13: "libcudart.so.13"},
          {11: "cudart64_110.dll", 12: "cudart64_12.dll", 13: "cudart64_13.dll"},
          "nvidia-cuda-runtime"),
    _entry("cublasLt", "cublas",
          {11: "libcublasLt.so.11", 12: "libcublasLt.so.12", 13: "libcublasLt.so.13"},
          {11: "cublasLt64_11.dll", 12: "cublasLt64_12.dll", 13: "cublasLt64_13.dll"},
          "nvidia-cublas"),
    # torch/__init__.py _preload_cuda_deps loads cublasLt before cublas so that
    # libcublas's NEEDED libcublasLt is satisfied by the wheel's copy.
    _entry("cublas", "cublas",
          {11: "libcublas.so.11", 12: "libcublas.so.12", 13: "libcublas.so.13"},
          {11: "cublas64_11.dll", 12: "cublas64_12.dll", 13: "cublas64_13.dll"},
          "nvidia-cublas", depends=("cublasLt",)),
    _entry("nvrtc", "cuda_nvrtc",
          {11: "libnvrtc.so.11.2", 12: "libnvrtc.so.12", 13: "libnvrtc.so.13"},
          {11: "nvrtc64_112_0.dll", 12: "nvrtc64_120_0.dll", 13: "nvrtc64_130_0.dll"},
          "nvidia-cuda-nvrtc"),
    _entry("nvjitlink", "nvjitlink",
          {12: "libnvJitLink.so.12", 13: "libnvJitLink.so.13"},
          {12: "nvJitLink_120_0.dll", 13: "nvJitLink_130_0.dll"},
          "nvidia-nvjitlink"),
    _entry("cufft", "cufft",
          {11: "libcufft.so.10", 12: "libcufft.so.11", 13: "libcufft.so.12"},
          {11: "cufft64_10.dll", 12: "cufft64_11.dll", 13: "cufft64_12.dll"},
          "nvidia-cufft"),
    _entry("curand", "curand",
          {11: "libcurand.so.10", 12: "libcurand.so.10", 13: "libcurand.so.10"},
          {11: "curand64_10.dll", 12: "curand64_10.dll", 13: "curand64_10.dll"},
          "nvidia-curand"),
    _entry("cusparse", "cusparse",
          {11: "libcusparse.so.11", 12: "libcusparse.so.12", 13: "libcusparse.so.12"},
          {11: "cusparse64_11.dll", 12: "cusparse64_12.dll", 13: "cusparse64_12.dll"},
          "nvidia-cusparse", depends=("nvjitlink",)),
    _entry("cusolver", "cusolver",
          {11: "libcusolver.so.11", 12: "libcusolver.so.11", 13: "libcusolver.so.12"},
          {11: "cusolver64_11.dll", 12: "cusolver64_11.dll", 13: "cusolver64_12.dll"},
          "nvidia-cusolver", depends=("cublasLt", "cublas", "nvjitlink", "cusparse")),
    _entry("cupti", "cuda_cupti",
          {11: "libcupti.so.11.*", 12: "libcupti.so.12", 13: "libcupti.so.13"},
          {11: "cupti64_20*.dll", 12: "cupti64_20*.dll", 13: "cupti64_13.dll"},
          "nvidia-cuda-cupti"),
    _entry("cufftw", "cufft",
          {12: "libcufftw.so.11", 13: "libcufftw.so.12"},
          {12: "cufftw64_11.dll", 13: "cufftw64_12.dll"},
          "nvidia-cufft", depends=("cufft",)),
    _entry("cusolverMg", "cusolver",
          {12: "libcusolverMg.so.11", 13: "libcusolverMg.so.12"},
          {12: "cusolverMg64_11.dll", 13: "cusolverMg64_12.dll"},
          "nvidia-cusolver", depends=("cublasLt", "cublas", "nvjitlink")),
    _entry("nvblas", "cublas",
          {11: "libnvblas.so.11", 12: "libnvblas.so.12", 13: "libnvblas.so.13"},
          {11: "nvblas64_11.dll", 12: "nvblas64_12.dll", 13: "nvblas64_13.dll"},
          "nvidia-cublas", depends=("cublasLt", "cublas")),
    _entry("nvfatbin", "nvfatbin",
          {12: "libnvfatbin.so.12", 13: "libnvfatbin.so.13"},
          {12: "nvfatbin_120_0.dll", 13: "nvfatbin_130_0.dll"},
          "nvidia-nvfatbin"),
    _entry("nvjpeg", "nvjpeg",
          {12: "libnvjpeg.so.12", 13: "libnvjpeg.so.13"},
          {12: "nvjpeg64_12.dll", 13: "nvjpeg64_13.dll"},
          "nvidia-nvjpeg"),
    # NVVM: CUDA 12 ships it inside nvidia-cuda-nvcc-cu12 (nvidia/cuda_nvcc/nvvm/lib64,
    # as unversioned libnvvm.so), CUDA 13 as nvidia-nvvm in the cu13 directory.  Its
    # soname is libnvvm.so.4 in both (NVVM's own ABI version), so the directory or
    # the owning wheel tells the CUDA major.
    _entry("nvvm", "cuda_nvcc",
          {12: ("libnvvm.so", "libnvvm.so.4"), 13: "libnvvm.so.4"},
          {12: "nvvm64_40_0.dll", 13: "nvvm64_40_0.dll"},
          {12: "nvidia-cuda-nvcc-cu12", 13: "nvidia-nvvm"}),
    # cuFile (GPUDirect Storage): Linux only; the same soname for CUDA 12 and 13.
    _entry("cufile", "cufile", {12: "libcufile.so.0", 13: "libcufile.so.0"}, {}, "nvidia-cufile"),
    # NPP: nppc is the core every other NPP library needs.
    _entry("nppc", "npp", {12: "libnppc.so.12", 13: "libnppc.so.13"}, {12: "nppc64_12.dll", 13: "nppc64_13.dll"},
          "nvidia-npp"),
    *(_entry(n, "npp", {12: f"lib{n}.so.12", 13: f"lib{n}.so.13"}, {12: f"{n}64_12.dll", 13: f"{n}64_13.dll"},
            "nvidia-npp", depends=("nppc",))
      for n in ("nppial", "nppicc", "nppidei", "nppif", "nppig", "nppim", "nppist", "nppisu", "nppitc", "npps")),
    # Math libraries outside the toolkit's wheel family: the CUDA major stays in
    # the wheel name for CUDA 13 too, and one file name serves both majors (the
    # directory -- cu12/cu13 -- or the owning wheel tells them apart).
    _entry("cusparseLt", "cusparselt", {12: "libcusparseLt.so.0", 13: "libcusparseLt.so.0"},
          {12: "cusparseLt.dll", 13: "cusparseLt_13.dll"},
          {12: "nvidia-cusparselt-cu12", 13: "nvidia-cusparselt-cu13"}),
    _entry("cudss", "", {12: "libcudss.so.1", 13: "libcudss.so.1"}, {12: "cudss64_1.dll", 13: "cudss64_1.dll"},
          {12: "nvidia-cudss-cu12", 13: "nvidia-cudss-cu13"}, depends=("cublasLt", "cublas")),
    _entry("cutensor", "cutensor", {12: "libcutensor.so.2", 13: "libcutensor.so.2"},
          {12: "cutensor.dll", 13: "cutensor.dll"}, {12: "cutensor-cu12", 13: "cutensor-cu13"},
          depends=("cublasLt",)),
    _entry("cutensorMg", "cutensor", {12: "libcutensorMg.so.2", 13: "libcutensorMg.so.2"},
          {12: "cutensorMg.dll", 13: "cutensorMg.dll"}, {12: "cutensor-cu12", 13: "cutensor-cu13"},
          depends=("cutensor", "cublasLt")),
    _entry("nvshmem", "nvshmem", {12: "libnvshmem_host.so.3", 13: "libnvshmem_host.so.3"}, {},
          {12: "nvidia-nvshmem-cu12", 13: "nvidia-nvshmem-cu13"}),
    # cuDNN: asking for "cudnn" loads the shim and, for cuDNN 9, every part
    # (onnxruntime.preload_dlls loads only libcudnn.so.9 and leaves the parts to
    # a later dlopen by name, which fails when the wheel dir is not on the path).
    _cudnn_part("cudnn_graph", None, None, "libcudnn_graph.so.9", "cudnn_graph64_9.dll"),
    _cudnn_part("cudnn_engines_precompiled", None, None, "libcudnn_engines_precompiled.so.9",
                "cudnn_engines_precompiled64_9.dll", depends=("cudnn_graph",)),
    _cudnn_part("cudnn_engines_runtime_compiled", None, None,
                "libcudnn_engines_runtime_compiled.so.9",
                "cudnn_engines_runtime_compiled64_9.dll", depends=("cudnn_graph",)),
    _cudnn_part("cudnn_engines_tensor_ir", None, None, "libcudnn_engines_tensor_ir.so.9",
                "cudnn_engines_tensor_ir64_9.dll", depends=("cudnn_graph",)),
    _cudnn_part("cudnn_heuristic", None, None, "libcudnn_heuristic.so.9",
                "cudnn_heuristic64_9.dll", depends=("cudnn_graph",)),
    _cudnn_part("cudnn_ops", None, None, "libcudnn_ops.so.9", "cudnn_ops64_9.dll",
                depends=("cudnn_graph",)),
    _cudnn_part("cudnn_cnn", None, None, "libcudnn_cnn.so.9", "cudnn_cnn64_9.dll",
                depends=("cudnn_graph", "cudnn_ops")),
    _cudnn_part("cudnn_adv", None, None, "libcudnn_adv.so.9", "cudnn_adv64_9.dll",
                depends=("cudnn_graph", "cudnn_ops")),
    _cudnn_part("cudnn_ext", None, None, "libcudnn_ext.so.9", "cudnn_ext64_9.dll",
                depends=("cudnn_graph",)),
    _cudnn_part("cudnn_ops_infer", "libcudnn_ops_infer.so.8", "cudnn_ops_infer64_8.dll", None, None),
    _cudnn_part("cudnn_ops_train", "libcudnn_ops_train.so.8", "cudnn_ops_train64_8.dll", None, None,
                depends=("cudnn_ops_infer",)),
    _cudnn_part("cudnn_cnn_infer", "libcudnn_cnn_infer.so.8", "cudnn_cnn_infer64_8.dll", None, None,
                depends=("cudnn_ops_infer",)),
    _cudnn_part("cudnn_cnn_train", "libcudnn_cnn_train.so.8", "cudnn_cnn_train64_8.dll", None, None,
                depends=("cudnn_ops_infer", "cudnn_ops_train", "cudnn_cnn_infer")),
    _cudnn_part("cudnn_adv_infer", "libcudnn_adv_infer.so.8", "cudnn_adv_infer64_8.dll", None, None,
                depends=("cudnn_ops_infer",)),
    _cudnn_part("cudnn_adv_train", "libcudnn_adv_train.so.8", "cudnn_adv_train64_8.dll", None, None,
                depends=("cudnn_ops_infer", "cudnn_ops_train", "cudnn_adv_infer")),
    LibrarySpec(
        name="cudnn", component="cudnn", key=KEY_CUDNN,
        variants={8: Variant(linux=("libcudnn.so.8",), windows=("cudnn64_8.dll",), wheels=_CUDNN_WHEELS[8]),
         9: Variant(linux=("libcudnn.so.9",), windows=("cudnn64_9.dll",), wheels=_CUDNN_WHEELS[9])},
        parts=_CUDNN9_PARTS + _CUDNN8_PARTS,
        # cuDNN uses cuBLASLt for matmul engines and nvrtc for runtime-compiled
        # engines (cuda-pathfinder 1.9 descriptor catalog: dependencies cublasLt,
        # optional nvrtc; cuDNN 9 installation guide: "cuDNN depends on cuBLAS").
        depends=("cublasLt",), optional=("nvrtc",),
    ),
    # NCCL ships for Linux only; its CUDA major is in the wheel name.
    LibrarySpec(name="nccl", component="nccl", key=KEY_NCCL,
                variants={2: Variant(linux=("libnccl.so.2",), windows=(), wheels={12: "nvidia-nccl-cu12",
                                                                                  13: "nvidia-nccl-cu13"})}),
    # Driver libraries: installed with the NVIDIA driver, never by pip.
    LibrarySpec(name="cuda", component="", key=KEY_DRIVER, variants={1: Variant(linux=("libcuda.so.1",),
                                                                                windows=("nvcuda.dll",))}),
    LibrarySpec(name="nvml", component="", key=KEY_DRIVER,
                variants={1: Variant(linux=("libnvidia-ml.so.1",), windows=("nvml.dll",))}),
)

#: name -> spec, in catalog order.
CATALOG: Mapping[str, LibrarySpec] = {s.name: s for s in _SPECS}

#: Names that ``locate()`` with ``names=None`` lists (everything a wheel ships).
WHEEL_LIBRARIES: tuple[str, ...] = tuple(s.name for s in _SPECS if s.key != KEY_DRIVER)

def spec(name: str) -> LibrarySpec:
    """Return the catalog entry for ``name``.

    Raises:
        UnknownLibraryError: ``name`` is not in the catalog; the message lists
            the known names.
    """
    try:
        return CATALOG[name]
    except KeyError:
        from ..errors import UnknownLibraryError

        raise UnknownLibraryError(name, tuple(CATALOG)) from None
