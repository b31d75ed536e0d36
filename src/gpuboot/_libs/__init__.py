"""Finding and loading NVIDIA libraries (internal).

The NVIDIA facts (``catalog``), what a binary says about itself (``binary``),
the search judged by soname (``search``, ``owners``, ``pathsafety``), the
resolution to one CUDA major (``resolve``, ``needs``), what a process has
loaded (``loaded``) and one loader per platform (``loader``, ``linux``,
``windows``).  The public faces are ``gpuboot.locate`` and ``gpuboot.dllpath``.
"""
