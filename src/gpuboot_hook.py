"""gpuboot's opt-in start-up hook: ``gpuboot.ensure()`` just before the first import of a GPU consumer.

``gpuboot hook install`` writes ``gpuboot-hook.pth`` into an environment's
site-packages; ``site`` runs its one line at every interpreter start, which
imports this module (``sys`` only: the rest of gpuboot is imported when a
consumer is) and arms a finder at the front of ``sys.meta_path``.  The finder
answers no import itself: when one of the consumers' import names (the
``imports`` of ``gpuboot.consumers.table.CONSUMER_TABLE``, written into the line at
install time) is about to be imported for the first time, it takes itself off
``sys.meta_path``, runs ``gpuboot.ensure()``, and lets the import go on.  So an
unmodified app (whisperX, a faster-whisper command line tool, a notebook) gets
the libraries its consumer needs preloaded before the consumer looks for them.

Never breaks an app: any error in ``ensure()`` is swallowed (shown with
``GPUBOOT_HOOK_DEBUG=1``); ``GPUBOOT_HOOK=0`` turns it off for one run.
"""

import sys

__all__ = ["arm", "armed"]


class _Finder:
    """A ``sys.meta_path`` entry that watches for the first import of one of ``names``."""

    def __init__(self, names):  # type: ignore[no-untyped-def]
        self.names = frozenset(names)

    def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
        if path is None and name in self.names:
            _disarm()
            _ensure(name)
        return None


def armed():  # type: ignore[no-untyped-def]
    """The armed finder, or ``None``."""
    return next((f for f in sys.meta_path if isinstance(f, _Finder)), None)


def _disarm():  # type: ignore[no-untyped-def]
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Finder)]


def arm(names):  # type: ignore[no-untyped-def]
    """Run ``ensure()`` before the first import of any of ``names`` (top-level import names); at once if one is
    already imported.  Does nothing with ``GPUBOOT_HOOK=0`` or when already armed."""
    import os

    if os.environ.get("GPUBOOT_HOOK", "1") == "0" or armed() is not None:
        return
    already = [n for n in names if n in sys.modules]
    if already:
        _ensure(already[0])
        return
    sys.meta_path.insert(0, _Finder(names))


def _ensure(trigger):  # type: ignore[no-untyped-def]
    import os

    debug = os.environ.get("GPUBOOT_HOOK_DEBUG") == "1"
    try:
        import gpuboot

        report = gpuboot.ensure()
        if debug:
            sys.stderr.write(f"gpuboot hook: ensure() before `import {trigger}`: {report.summary()}\n")
    except Exception as exc:  # an app must start whatever happens here
        if debug:
            sys.stderr.write(f"gpuboot hook: ensure() before `import {trigger}` failed: {exc!r}\n")
