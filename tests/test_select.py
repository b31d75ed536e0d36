"""Device placement: the best visible GPU, worker ranks, free memory, the memory check."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Dict, List

import pytest
from fake_nvml import (
    A100,
    GTX_1080,
    RTX_3070,
    RTX_3090,
    T4,
    FakeNVML,
    GiB,
    gpu,
)
from helpers import choose, hosted, machine

from gpuboot._gpus.nvml import list_devices
from gpuboot.placement.memory import check_memory
from gpuboot.select import DeviceAssigner

NO_ENV: Dict[str, str] = {}


def test_mixed_pair_prefers_tensor_cores_and_warns_about_order() -> None:
    gpus = [gpu(GTX_1080, 0), gpu(RTX_3090, 1)]
    c = choose(gpus)
    assert c.gpu is not None and c.gpu.name == RTX_3090[0]
    # FASTEST_FIRST: the 3090 (newer CC) is ordinal 0, and the ambiguity is reported.
    assert c.cuda_ordinal == 0
    assert any("PCI_BUS_ID" in w for w in c.warnings)
    pci = choose([gpu(GTX_1080, 0), gpu(RTX_3090, 1)], env={"CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
    assert pci.cuda_ordinal == 1 and not pci.warnings
    assert [d.name for d in pci.candidates] == [GTX_1080[0], RTX_3090[0]]


def test_identical_gpus_pick_most_free_memory_without_warning() -> None:
    gpus = [gpu(T4, 0, free=3 * GiB), gpu(T4, 1, free=14 * GiB)]
    c = choose(gpus)
    assert c.cuda_ordinal == 1 and not c.warnings


def test_min_free_bytes_skips_full_gpus_and_falls_back_to_cpu() -> None:
    gpus = [gpu(RTX_3070, 0, free=1 * GiB), gpu(RTX_3070, 1, free=6 * GiB)]
    assert choose(gpus, min_free_bytes=5 * GiB).cuda_ordinal == 1
    c = choose([gpu(RTX_3070, 0, free=1 * GiB)], min_free_bytes=5 * GiB)
    assert c.kind == "cpu" and "5.0 GiB free" in c.reason


def test_ranks_spread_round_robin_over_visible_gpus() -> None:
    gpus = [gpu(A100, i) for i in range(4)]
    ordinals = [choose(gpus, worker=r).cuda_ordinal for r in range(8)]
    assert ordinals == [0, 1, 2, 3, 0, 1, 2, 3]
    # torchrun sets LOCAL_RANK
    assert choose(gpus, env={"LOCAL_RANK": "2"}).cuda_ordinal == 2
    assert "worker 2" in choose(gpus, env={"LOCAL_RANK": "2"}).reason


def test_ray_style_visible_devices_need_no_special_code() -> None:
    """Ray sets CUDA_VISIBLE_DEVICES to the GPU it assigned each worker."""
    gpus = [gpu(A100, i, uuid=f"GPU-{i}000") for i in range(4)]
    for assigned in ("0", "1", "2", "3"):
        c = choose(gpus, env={"CUDA_VISIBLE_DEVICES": assigned})
        assert c.cuda_ordinal == 0 and c.gpu is not None and c.gpu.nvml_index == int(assigned)


def test_assigner_is_balanced_under_contention() -> None:
    gpus = [gpu(A100, i) for i in range(3)]
    described = machine(nvml=FakeNVML(gpus), ask_consumers=False)
    assigner = DeviceAssigner(environ=NO_ENV)
    got: List[int] = []
    lock = threading.Lock()

    def worker() -> None:
        with described.scope():  # one machine for every thread: each makes it current in itself
            c = assigner.next()
        with lock:
            got.append(c.cuda_ordinal)  # type: ignore[arg-type]

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = Counter(got)
    assert sorted(counts) == [0, 1, 2]
    assert max(counts.values()) - min(counts.values()) <= 1


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        choose([gpu(A100, 0)], prefer="fast")
    with pytest.raises(ValueError):
        choose([gpu(A100, 0)], worker=-1)
    with pytest.raises(ValueError):
        choose([gpu(A100, 0)], min_free_bytes=-5)
    assert choose([gpu(A100, 0)], env={"LOCAL_RANK": "not-a-number"}).cuda_ordinal == 0


def test_check_memory() -> None:
    (d,) = hosted(list_devices, nvml=FakeNVML([gpu(RTX_3070, 0, free=6 * GiB)]))(environ=NO_ENV)
    ok = check_memory(5 * GiB, d)
    assert ok and ok.free_bytes == 6 * GiB and "fits in" in ok.reason
    no = check_memory(7 * GiB, d)
    assert not no and "does not fit" in no.reason
    assert check_memory(1, None).free_bytes > 0  # CPU RAM
    with pytest.raises(ValueError):
        check_memory(-1, d)
