"""``gpuboot doctor``: every known way GPU start-up goes wrong, with the fix.

Each check (``CHECKS``, in order) reads a ``Context`` (gathered once by
``gather``) and returns ``Finding``s: an id, a severity, the evidence (paths,
versions) and a remedy -- exact commands, as structured steps
(``Finding.actions``), or a one-line instruction.  Nothing heavy is imported:
versions come from package metadata.  The JSON form (``gpuboot doctor
--json``) follows ``gpuboot/doctor/doctor-schema.json`` (``schema_version``
3), shipped in the package (``json_schema()``).

Modules: ``report`` (the values and their rendering), ``gather``,
``checks_driver``, ``checks_gpu``, ``checks_meta`` and ``checks_libs`` (the
checks), ``diagnosis`` (their order), ``actions`` (remedies as steps),
``plan`` and ``remedy`` (``--fix``).
"""

from __future__ import annotations

from .actions import Action
from .diagnosis import CHECKS, CONSUMER_ALIASES, diagnose
from .gather import gather
from .report import SCHEMA_VERSION, SEVERITIES, Context, Finding, Report, json_schema

__all__ = ["json_schema", "Finding", "Action", "Context", "Report", "gather", "diagnose", "SCHEMA_VERSION", "CHECKS",
           "CONSUMER_ALIASES", "SEVERITIES"]
