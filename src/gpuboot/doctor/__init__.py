"""``gpuboot doctor``: every known way GPU start-up goes wrong, with the fix.

Each check reads a ``Context`` (gathered once by ``gather``, every part
injectable for tests) and returns ``Finding``s: an id, a severity, the
evidence (paths, versions) and a remedy that is an exact command or a
one-line instruction.  Nothing heavy is imported: versions come from
``importlib.metadata``.  The JSON form (``gpuboot doctor --json``) follows
``gpuboot/doctor/doctor-schema.json`` (``schema_version`` 2), shipped in the package
(``json_schema()``).

Modules: ``report`` (the values and their rendering), ``gather``,
``checks_driver``, ``checks_gpu`` and ``checks_libs`` (the checks), ``diagnosis`` (the order).
"""

from __future__ import annotations

from .actions import TORCH_INDEXES, Action
from .checks_driver import check_driver
from .checks_gpu import DRIVER_MINIMUMS, check_choice, check_cublas_for_gpu, check_devices, check_driver_age
from .checks_libs import (
    check_ld_library_path,
    check_libraries,
    check_renamed,
    check_shadowed,
    check_torch,
    check_windows_path,
)
from .diagnosis import CHECKS, CONSUMER_ALIASES, diagnose
from .gather import gather
from .report import SCHEMA_VERSION, SEVERITIES, Context, Finding, Report, json_schema

__all__ = ["json_schema", "Finding", "Action", "Context", "Report", "gather", "diagnose", "DRIVER_MINIMUMS",
           "SCHEMA_VERSION",
           "CHECKS", "CONSUMER_ALIASES", "SEVERITIES", "TORCH_INDEXES", "check_driver", "check_driver_age",
           "check_devices", "check_choice", "check_cublas_for_gpu", "check_libraries", "check_shadowed",
           "check_renamed", "check_ld_library_path", "check_torch", "check_windows_path"]
