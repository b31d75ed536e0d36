"""An application that uses gpuboot's public API; tests/test_public_api.py
type-checks it with ``mypy --strict`` (explicit re-exports, literal __all__)."""

from __future__ import annotations

import gpuboot
from gpuboot import DeviceChoice, EnsureReport, GpubootError, Library, WhisperLoad


def start() -> str:
    report: EnsureReport = gpuboot.ensure()
    libs: list[Library] = gpuboot.locate(["cublas"])
    missing = gpuboot.resolve(["cublas", "cudnn"]).missing
    choice: DeviceChoice = gpuboot.select_device(prefer="speed")
    env: dict[str, str] = gpuboot.subprocess_env()
    try:
        model = gpuboot.load_whisper("tiny", device=choice.ct2_device, compute_type=choice.compute_type)
    except (gpuboot.ModelNotFoundError, gpuboot.DriverNotFoundError, gpuboot.IncompatibleDependencyError) as exc:
        return exc.fix
    except GpubootError as exc:
        return str(exc)
    info: WhisperLoad = gpuboot.load_info(model)
    return f"{report.summary()} {len(libs)} {len(missing)} {len(env)} {info.reason}"
