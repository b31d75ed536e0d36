"""The ``gpuboot`` logger, with the ``NullHandler`` a library attaches so that
an application that configures no logging sees no stray records (the CLI
installs its own handler and format)."""

from __future__ import annotations

import logging

__all__ = ["log"]

log = logging.getLogger("gpuboot")
if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
    log.addHandler(logging.NullHandler())
