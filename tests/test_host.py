"""What this process may use of the host: CPUs (affinity, cgroup quota)."""

from __future__ import annotations

import pytest

from gpuboot.machine.process import cpu_threads


def test_cpu_threads_honours_affinity_and_cgroup_quota(tmp_path: pytest.TempPathFactory) -> None:
    root = tmp_path  # type: ignore[assignment]
    (root / "cpu.max").write_text("150000 100000\n")  # type: ignore[operator]
    import os

    affinity = len(os.sched_getaffinity(0))
    assert cpu_threads(cgroup_root=str(root)) == min(affinity, 2)
    (root / "cpu.max").write_text("max 100000\n")  # type: ignore[operator]
    assert cpu_threads(cgroup_root=str(root)) == affinity
