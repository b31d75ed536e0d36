"""GPU discovery through NVML, and the CUDA view of it: the public face of ``gpuboot._gpus``.

``discover()`` reads every GPU (and MIG instance) through NVML without
creating a CUDA context and gives each the CUDA ordinal that
``CUDA_VISIBLE_DEVICES`` and ``CUDA_DEVICE_ORDER`` leave it
(``_gpus/visible.py`` has the rules as the CUDA runtime applies them).
"""

from __future__ import annotations

from ._gpus.device import Device, Inventory
from ._gpus.nvml import discover, list_devices
from ._gpus.order import cuda_order_from_driver
from ._gpus.visible import VisibleEntry, apply_visibility, cuda_order, parse_visible_devices

__all__ = ["Device", "Inventory", "discover", "list_devices", "parse_visible_devices",
           "VisibleEntry", "cuda_order", "apply_visibility", "cuda_order_from_driver"]
