"""GPU code (internal): what a consumer's binaries carry and whether a GPU runs it.

The fatbins a binary carries (``fatbin``), the CUDA compatibility rules that
judge them against a compute capability and a driver (``rules``), a consumer's
own binaries and what they link (``files``), and each installed consumer
judged against one GPU with the way out (``consumers``).  Nothing here loads a
binary; ``select``, ``doctor`` and ``gpuboot.check_process`` use it.
"""
