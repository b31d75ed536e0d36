"""Finding and loading NVIDIA libraries (internal).

The NVIDIA facts (``catalog``), the search of a ``Machine`` snapshot judged by soname (``search``, ``owners``,
``pathsafety``; the names a binary carries are ``binaries/names.py``'s), the resolution to one CUDA major
(``resolve``, ``needs``), what a process has loaded (``loaded``) and one loader per platform (``loader``,
``linux``, ``windows``).  The public faces are ``gpuboot.locate`` and ``gpuboot.dllpath``.
"""
