"""A Ray task that uses gpuboot: nothing Ray-specific is needed.

    pip install ray
    python examples/ray_task.py

Ray sets CUDA_VISIBLE_DEVICES in each task to the GPU(s) it reserved, so
inside the task that GPU is CUDA ordinal 0 and ``select_device()`` finds it
through the ordinary CUDA_VISIBLE_DEVICES rules.  Without Ray installed the
same function runs in-process, to show what it reports.
"""

from __future__ import annotations

import os
from typing import Dict


def describe_device() -> Dict[str, object]:
    import gpuboot

    gpuboot.ensure()
    choice = gpuboot.select_device()
    return {"CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"), "device": choice.torch_device,
            "compute_type": choice.compute_type, "reason": choice.reason}


def main() -> None:
    try:
        import ray
    except ImportError:
        print("ray is not installed; running the task in-process:")
        print(describe_device())
        return
    ray.init()
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    task = ray.remote(num_gpus=1 if has_gpu else 0)(describe_device)
    for result in ray.get([task.remote() for _ in range(int(ray.cluster_resources().get("GPU", 1)))]):
        print(result)


if __name__ == "__main__":
    main()
