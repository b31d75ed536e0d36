"""GPUs, the driver and precision (internal).

Driver presence (``driver``), the host's CPUs and RAM (``host``), NVML
discovery (``nvml``, ``device``), ``CUDA_VISIBLE_DEVICES`` as CUDA reads it
(``visible``), CUDA's own device order (``order``) and the dtype /
``compute_type`` rules (``precision``).  The public faces are
``gpuboot.devices``, ``gpuboot.select`` and ``gpuboot.placement.memory``.
"""
