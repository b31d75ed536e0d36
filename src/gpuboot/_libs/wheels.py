"""Which pip wheel provides a catalog library, and the command that installs it."""

from __future__ import annotations

from ..base.quote import command_line
from .catalog import KEY_CUDA, KEY_DRIVER, spec

__all__ = ["install_requirement", "install_command"]


def install_requirement(name: str, cuda_major: int | None, version: int | None = None) -> str | None:
    """The pip requirement that provides ``name`` (``"nvidia-cublas-cu12"``,
    ``"nvidia-cudnn-cu12==8.*"``), or ``None`` when no wheel provides it (the
    driver's libraries; a CUDA major no NVIDIA wheel exists for).

    ``version`` is the key of the wanted variant (the cuDNN major for cuDNN);
    ``cuda_major`` picks the wheel family.
    """
    s = spec(name)
    if s.key == KEY_DRIVER:
        return None
    if s.key == KEY_CUDA and cuda_major is not None and cuda_major not in s.variants:
        return None
    key = version if version is not None else (cuda_major if s.key == KEY_CUDA else max(s.variants))
    variant = s.variants.get(key) if key is not None else None
    if variant is None:
        variant = s.variants[max(s.variants)]
    major = cuda_major if cuda_major is not None else max(variant.wheels)
    return variant.wheels.get(major) or variant.wheels[max(variant.wheels)]


def install_command(name: str, cuda_major: int | None, version: int | None = None, platform: str = "linux") -> str:
    """The exact ``pip install`` command that provides ``name`` (``install_requirement``), quoted for
    ``platform``'s shell, or a one-line instruction when no wheel provides it (the driver libraries)."""
    s = spec(name)
    req = install_requirement(name, cuda_major, version)
    if req is not None:
        return command_line(("pip", "install", req), platform)
    if s.key == KEY_DRIVER:
        return "install the NVIDIA driver (https://www.nvidia.com/drivers); pip cannot provide it"
    known = sorted(s.variants)
    return (f"no pip wheel provides {name} for CUDA {cuda_major} (NVIDIA's wheels exist for CUDA "
            f"{', '.join(map(str, known))}): install the CUDA {cuda_major} toolkit, or use a build of the "
            f"consumer for CUDA {known[-1]}")
