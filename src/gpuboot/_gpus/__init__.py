"""GPUs, the driver and precision (internal): what the machine's driver facts mean.

NVML discovery over a ``Machine`` snapshot (``nvml``, ``device``), ``CUDA_VISIBLE_DEVICES`` as CUDA reads it
(``visible``), the driver probe's answer as the broken layer and its fix (``causes``, ``cause_rules``), the
cuda.h/nvml.h codes (``codes``) and the dtype / ``compute_type`` rules (``precision``).  The facts themselves
are read in ``machine/`` (the driver check, the probe, CUDA's own order).  The public faces are ``gpuboot.select``
and ``gpuboot.placement.memory``; ``gpuboot.discover`` and ``gpuboot.list_devices`` are ``nvml``'s.
"""
