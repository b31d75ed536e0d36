"""One GPU per torchrun worker, chosen by gpuboot.

    torchrun --nproc-per-node=4 examples/torchrun_worker.py

torchrun sets LOCAL_RANK in each worker; ``select_device()`` reads it and
gives worker r the visible GPU at r % (number of visible GPUs), in CUDA
ordinal order -- the same answer in every process, with no coordination.
Runs without torch too (it then only prints the choice).
"""

from __future__ import annotations

import os

import gpuboot


def main() -> None:
    gpuboot.ensure()
    choice = gpuboot.select_device()  # worker rank from LOCAL_RANK
    rank = os.environ.get("LOCAL_RANK", "-")
    print(f"rank {rank}: {choice.torch_device} dtype={choice.torch_dtype} -- {choice.reason}")
    try:
        import torch
    except ImportError:
        return
    device = torch.device(choice.torch_device)
    dtype = getattr(torch, choice.torch_dtype)
    x = torch.ones(4, 4, device=device, dtype=dtype)
    print(f"rank {rank}: tensor on {x.device} sum={float(x.sum())}")


if __name__ == "__main__":
    main()
