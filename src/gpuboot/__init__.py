"""gpuboot: make GPU ML applications start right.

>>> import gpuboot
>>> report = gpuboot.ensure()                 # find and preload the NVIDIA wheel libraries consumers need
>>> choice = gpuboot.select_device()          # the GPU CUDA answers for (or the CPU), and the precisions
>>> model = gpuboot.load_whisper("small")     # a verified faster-whisper model, with its fallback trail

Start here: ``ensure()`` (at application start), ``select_device()``,
``load_whisper()`` / ``transcribe()`` / ``make_subtitles()``, ``live()`` / ``LivePool`` (audio transcribed as it
arrives), ``gpuboot.doctor.diagnose()`` and
``fix()`` (what is broken, and the fix), ``check_process()`` (after your imports: will this mix of CUDA
libraries run?).  Finding without loading:
``locate()``, ``resolve()``; loading: ``preload()``; child processes:
``subprocess_env()``; GPUs through NVML: ``discover()``, ``list_devices()``,
``memory_info()``, ``check_pressure()``, ``check_memory()``.  Every error is a
``GpubootError`` whose message ends in the fix.  The ``gpuboot`` command
is ``gpuboot.cli``: {commands}.

``import gpuboot`` imports no torch, faster_whisper, ctranslate2, pynvml or
numpy -- nor even ``typing`` or ``dataclasses``: every public name but
``locate`` is imported on first use (the package's module class).
``gpuboot.locate`` is both the function and the module ``gpuboot/locate.py``:
the function carries the module's public names (``gpuboot.locate.resolve``).
ARCHITECTURE.md draws the layers.
"""

import sys as _sys

from .base import __version__
from .locate import locate

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy honours the name)

# Public name -> module it lives in.
_LAZY = {
    "ensure": "boot", "EnsureReport": "boot", "DriverInfo": "machine.driver", "detect_driver": "machine.driver",
    "resolve": "locate", "Resolution": "locate",
    "preload": "dllpath", "subprocess_env": "startup.shellenv", "alias": "_libs.aliases",
    "load_whisper": "whisper", "load_info": "whisper", "WhisperLoad": "whisper",
    "select_device": "select", "DeviceChoice": "select", "DeviceAssigner": "select", "check_memory": "placement.memory",
    "recommend_whisper_model": "whisper.model_memory", "MemoryCheck": "placement.memory",
    "list_devices": "_gpus.nvml", "discover": "_gpus.nvml", "Device": "_gpus.device", "Inventory": "_gpus.device",
    "Library": "_libs.types", "LoadedLibrary": "_libs.types", "MissingLibrary": "_libs.types",
    "GpubootError": "errors", "LibraryNotFoundError": "errors", "LibraryLoadError": "errors",
    "AbiMismatchError": "errors", "CacheDirError": "errors", "ModelLoadError": "errors",
    "ModelNotFoundError": "errors", "AudioError": "errors", "MissingDependencyError": "errors",
    "UnknownLibraryError": "errors", "BrokenDependencyError": "errors", "IncompatibleDependencyError": "errors",
    "DriverNotFoundError": "errors",
    "transcribe": "whisper", "transcribe_many": "whisper.multibatch",
    "memory_info": "placement.memory", "MemoryInfo": "placement.memory", "check_pressure": "placement.memory",
    "MemoryPressure": "placement.memory", "fix": "doctor.remedy", "FixResult": "doctor.remedy",
    "check_process": "mix.process", "ProcessReport": "mix.process",
    "make_subtitles": "subtitles", "check_subtitles": "subtitles", "Subtitles": "subtitles",
    "SubtitleStyle": "subtitles",
    "live": "streaming", "LiveStream": "streaming", "LivePool": "streaming", "LiveEvent": "streaming",
    "LiveWord": "streaming", "LiveLatency": "streaming", "LiveCapacityError": "streaming",
    "StreamClosedError": "streaming",
}
# A literal list, so that type checkers read the public names (mypy --strict,
# no implicit re-export); tests/test_public_api.py checks it against _LAZY and locate.
__all__ = [
    "AbiMismatchError", "AudioError", "BrokenDependencyError", "CacheDirError", "Device", "DeviceAssigner",
    "DeviceChoice", "DriverInfo", "DriverNotFoundError", "EnsureReport", "GpubootError",
    "IncompatibleDependencyError", "Inventory", "Library", "LibraryLoadError", "LibraryNotFoundError",
    "LoadedLibrary", "MemoryCheck", "MissingDependencyError", "MissingLibrary", "ModelLoadError",
    "ModelNotFoundError", "Resolution", "UnknownLibraryError", "WhisperLoad", "alias", "check_memory",
    "detect_driver", "discover", "ensure", "list_devices", "load_info", "load_whisper", "locate", "preload",
    "recommend_whisper_model", "resolve", "select_device", "subprocess_env", "transcribe",
    "transcribe_many", "memory_info",
    "MemoryInfo", "check_pressure", "MemoryPressure", "fix", "FixResult", "check_process", "ProcessReport",
    "make_subtitles", "check_subtitles", "Subtitles", "SubtitleStyle",
    "live", "LiveStream", "LivePool", "LiveEvent", "LiveWord", "LiveLatency", "LiveCapacityError",
    "StreamClosedError",
]

if TYPE_CHECKING:  # explicit re-exports: every name is in the literal __all__ above
    from ._gpus.device import Device, Inventory
    from ._gpus.nvml import discover, list_devices
    from ._libs.aliases import alias
    from ._libs.types import Library, LoadedLibrary, MissingLibrary
    from .boot import EnsureReport, ensure
    from .dllpath import preload
    from .doctor.remedy import FixResult, fix
    from .errors import (
        AbiMismatchError,
        AudioError,
        BrokenDependencyError,
        CacheDirError,
        DriverNotFoundError,
        GpubootError,
        IncompatibleDependencyError,
        LibraryLoadError,
        LibraryNotFoundError,
        MissingDependencyError,
        ModelLoadError,
        ModelNotFoundError,
        UnknownLibraryError,
    )
    from .locate import Resolution, resolve
    from .machine.driver import DriverInfo, detect_driver
    from .mix.process import ProcessReport, check_process
    from .placement.memory import MemoryCheck, MemoryInfo, MemoryPressure, check_memory, check_pressure, memory_info
    from .select import DeviceAssigner, DeviceChoice, select_device
    from .startup.shellenv import subprocess_env
    from .streaming import (
        LiveCapacityError,
        LiveEvent,
        LiveLatency,
        LivePool,
        LiveStream,
        LiveWord,
        StreamClosedError,
        live,
    )
    from .subtitles import Subtitles, SubtitleStyle, check_subtitles, make_subtitles
    from .whisper.decoding import transcribe
    from .whisper.load import WhisperLoad, load_info, load_whisper
    from .whisper.model_memory import recommend_whisper_model
    from .whisper.multibatch import transcribe_many

def _with_commands(doc: str) -> str:
    """The package docstring with the ``gpuboot`` command's commands, read from ``cli.COMMANDS`` (only when the
    docstring is read: ``help(gpuboot)``, ``pydoc``)."""
    try:
        from .cli import COMMANDS
    except ImportError:  # a broken install still shows its docstring
        return doc.replace("{commands}", "see `gpuboot --help`")
    return doc.replace("{commands}", ", ".join(f"``{name}``" for name in COMMANDS))


class _Package(type(_sys)):  # type: ignore[misc]
    """``gpuboot``'s module type: public names imported on first use (PEP 562 does the same with a module-level
    ``__getattr__``; as methods of the module's class they stay out of ``help(gpuboot)``); ``dir(gpuboot)``
    shows the public names only, and the docstring lists the commands of ``cli.COMMANDS``."""

    def __getattr__(self, name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'gpuboot' has no attribute {name!r}")
        __import__(f"{__name__}.{module}")  # builtin: importlib itself costs an import
        value = getattr(_sys.modules[f"{__name__}.{module}"], name)
        setattr(self, name, value)
        return value

    def __dir__(self) -> list:  # type: ignore[type-arg]
        """``__all__``, ``__version__``, the module's own dunders and the public submodules imported so far
        (``base``, the bottom floor every module imports, is not one)."""
        names = set(__all__) | {"__version__"}
        for key, value in vars(self).items():
            if key.startswith("__") and key.endswith("__"):
                names.add(key)
            elif (not key.startswith("_") and key != "base" and isinstance(value, type(_sys))
                  and value.__name__ == f"{__name__}.{key}"):
                names.add(key)
        return sorted(names)

    @property
    def __doc__(self) -> str:  # type: ignore[override]
        return _with_commands(vars(self).get("__doc__") or "")


_sys.modules[__name__].__class__ = _Package
