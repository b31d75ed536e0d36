"""Which shared objects a process has loaded, by soname and real path: the one view the loader and doctor share.

glibc satisfies ``dlopen("libcublas.so.12")`` with any loaded object whose
``DT_SONAME`` is ``libcublas.so.12``, whatever its file is called: a CUDA
toolkit's ``libcublas.so.12 -> libcublas.so.12.1.3.1`` appears in
``/proc/self/maps`` under the versioned name.  So a loaded object is known
by the soname its headers carry (``binary.py``), else its file name, and by
its real path.
"""

from __future__ import annotations

import os
from typing import Dict, Iterable, Optional

from ..binaries.names import soname_of

__all__ = ["LoadedView"]


class LoadedView:
    """Loaded objects indexed by soname; each maps to its real path."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.by_soname: Dict[str, str] = {}
        for path in paths:
            real = os.path.realpath(path)
            for name in (soname_of(real), os.path.basename(path)):
                if name:
                    self.by_soname.setdefault(name, real)

    def loaded(self, soname: str) -> Optional[str]:
        """The real path of the object loaded under ``soname``, or ``None``."""
        return self.by_soname.get(soname)
