"""GPU code (internal): whether a GPU runs the GPU code a consumer's binaries carry.

The CUDA compatibility rules that judge a binary's fatbins (``binaries/fatbin.py``) against a compute
capability and a driver (``rules``), and each installed consumer judged against one GPU with the way out from
its row (``consumers``).  Nothing here loads a binary; ``select``, ``doctor`` and ``check_process`` use it.
"""
