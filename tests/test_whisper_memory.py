"""Which Whisper model fits a device's free memory (measured peaks with headroom)."""

from __future__ import annotations

from typing import Dict

import pytest
from fake_nvml import (
    GTX_1080,
    RTX_3070,
    GiB,
    MiB,
    gpu,
)
from helpers import choose, hosted

from gpuboot.whisper.model_memory import recommend_whisper_model

NO_ENV: Dict[str, str] = {}


@pytest.mark.parametrize(("spec", "free", "prefer", "model"), [
    (RTX_3070, 8 * GiB, "auto", "large-v3"),          # 4521 MB x 1.2 = 5.3 GiB fits
    (RTX_3070, 5 * GiB, "auto", "large-v3-turbo"),    # large fp16 needs 5.3 GiB; turbo 2.97 GiB
    (RTX_3070, 5 * GiB, "memory", "large-v3"),        # int8: 2953 MB x 1.2 = 3.46 GiB
    (RTX_3070, 2600 * MiB, "auto", "small"),          # distil 2.82 GiB no; medium no; small 2.4 GiB
    (GTX_1080, 8 * GiB, "auto", "large-v3"),          # int8 on Pascal
    (RTX_3070, 500 * MiB, "auto", "tiny"),
])
def test_recommend_whisper_model(spec: tuple, free: int, prefer: str, model: str) -> None:
    c = choose([gpu(spec, 0, free=free)], prefer=prefer)
    assert recommend_whisper_model(c) == model


def test_recommend_on_cpu_is_capped_at_small() -> None:
    c = choose([], env=NO_ENV)
    assert c.kind == "cpu"
    assert hosted(recommend_whisper_model, ram=64 * GiB)(c) == "small"
    assert hosted(recommend_whisper_model, ram=1 * GiB)(c) == "tiny"
