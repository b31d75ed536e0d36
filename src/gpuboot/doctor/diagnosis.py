"""``diagnose()``: every check over one gathered ``Context``, in order."""

from __future__ import annotations

from typing import Callable, List, Mapping, Optional, Tuple

from ..consumers.table import for_names
from .checks_code import check_gpu_code, check_process_mix
from .checks_driver import check_driver
from .checks_gpu import check_choice, check_devices, check_driver_age
from .checks_known import check_consumer_quirks, check_known_bad
from .checks_libs import (
    check_cpu_only_builds,
    check_ld_library_path,
    check_libraries,
    check_renamed,
    check_shadowed,
    check_windows_path,
)
from .checks_meta import check_metadata
from .gather import gather
from .report import Context, Finding, Report

__all__ = ["CONSUMER_ALIASES", "CHECKS", "diagnose"]

#: consumer names (``diagnose(consumer=)``, ``gpuboot doctor --for``) -> their distribution names
#: (the rows' ``for_name``: jax is ``jax-cuda12-plugin`` and ``jax-cuda13-plugin``).
CONSUMER_ALIASES: Mapping[str, Tuple[str, ...]] = for_names()


CHECKS: Tuple[Callable[[Context], List[Finding]], ...] = (
    check_driver, check_driver_age, check_devices, check_gpu_code, check_choice, check_metadata, check_libraries,
    check_renamed, check_shadowed, check_ld_library_path, check_cpu_only_builds, check_windows_path, check_known_bad,
    check_consumer_quirks,
    check_process_mix,
)


def diagnose(ctx: Optional[Context] = None, *, consumer: Optional[str] = None) -> Report:
    """Run every check.

    Args:
        ctx: a ``Context``; default ``gather()``: the current machine (``machine.snapshot.current()``).
        consumer: a name of ``CONSUMER_ALIASES`` (a row's ``for_name``: ctranslate2, torch, onnxruntime,
            tensorflow, jax, ...) to check for that consumer only.

    Raises:
        ValueError: an unknown ``consumer``.
    """
    if consumer is not None:
        if consumer not in CONSUMER_ALIASES:
            raise ValueError(f"consumer must be one of {', '.join(CONSUMER_ALIASES)}, not {consumer!r}")
    if ctx is None:
        ctx = gather(consumers=CONSUMER_ALIASES[consumer] if consumer is not None else None)
    findings: List[Finding] = []
    for check in CHECKS:
        try:
            findings.extend(check(ctx))
        except Exception as exc:  # a broken check must not hide the others
            findings.append(Finding(id="check-failed", severity="warning", title=f"{check.__name__} failed: {exc!r}",
                                    evidence=(),
                                    remedy="report this at the gpuboot issue tracker with `gpuboot doctor --json`"))
    if consumer is not None and not ctx.needs:
        findings.append(Finding(id="consumer-not-installed", severity="info",
                                title=f"{' or '.join(CONSUMER_ALIASES[consumer])} is not installed (or is a CPU-only "
                                "build)",
                                evidence=(),
                                remedy=None))
    return Report(findings=tuple(findings), context=ctx)
