"""Doctor's values: ``Finding``, ``Context`` (a ``Machine`` snapshot and the consumers asked about: what the
checks read), ``Report`` (the findings; text, or the schema's JSON)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Literal, Mapping, Optional, Tuple

from ..base.record import Record
from .actions import Action, remedy_text

if TYPE_CHECKING:
    from .._gpus.device import Inventory
    from .._libs.types import Library
    from ..consumers.types import Need
    from ..machine.probe import DriverProbe
    from ..machine.snapshot import Machine

__all__ = ["SCHEMA_VERSION", "json_schema", "SEVERITIES", "Severity", "Finding", "Context", "Report"]

SCHEMA_VERSION = 3


def json_schema() -> Dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``gpuboot doctor --json``, read from
    ``doctor-schema.json`` inside the installed package."""
    import json
    from importlib import resources

    text = resources.files(__package__).joinpath("doctor-schema.json").read_text(encoding="utf-8")
    data: Dict[str, Any] = json.loads(text)
    return data


#: How bad a finding is, least first.
Severity = Literal["ok", "info", "warning", "problem"]
SEVERITIES: Tuple[Severity, ...] = ("ok", "info", "warning", "problem")


class Finding(Record):
    """One check's result.

    Attributes:
        id: stable identifier (``"missing-library"``), for scripts and bug reports.
        severity: ``"ok"``, ``"info"``, ``"warning"`` or ``"problem"``.
        title: one line for a terminal.
        evidence: paths, versions, values that show it.
        remedy: what a person reads: exact commands (quoted for the platform's
            shell) or a one-line instruction, or ``None``.
        actions: the remedy as structured steps (``actions.Action``: argv
            words and the kind of change) -- what ``--fix`` plans from; ``()``
            when the remedy is an instruction only.
    """

    id: str
    severity: Severity
    title: str
    evidence: Tuple[str, ...] = ()
    remedy: Optional[str] = None
    actions: Tuple[Action, ...] = ()

    @classmethod
    def fixed_by(cls, id: str, severity: Severity, title: str, evidence: Tuple[str, ...], platform: str,
                 *actions: Action) -> Finding:
        """A finding whose remedy is ``actions``; its text is those steps quoted for ``platform``'s shell."""
        return cls(id=id, severity=severity, title=title, evidence=evidence,
                   remedy=remedy_text(actions, platform) if actions else None, actions=actions)


class Context(Record):
    """What the checks read: a ``Machine`` snapshot and the consumers asked about (distribution names).

    Everything else is computed from the snapshot once (``Machine.memo``): the inventory, the needs of the
    installed consumers, every NVIDIA library found, each consumer's binaries.
    """

    #: The snapshot is where the facts are read from, not a value: two contexts asking about the same
    #: consumers are equal whichever snapshot they read.
    _not_values = ("machine",)
    machine: Machine
    consumers: Tuple[str, ...] = ()

    @property
    def platform(self) -> str:
        return self.machine.platform

    @property
    def environ(self) -> Mapping[str, str]:
        return self.machine.environ

    @property
    def initial_environ(self) -> Optional[Mapping[str, str]]:
        return self.machine.initial_environ

    @property
    def driver_present(self) -> bool:
        return self.machine.driver.present

    @property
    def driver_evidence(self) -> str:
        return self.machine.driver.evidence

    @property
    def probe(self) -> Optional[DriverProbe]:
        """What the driver answered, or ``None``: not asked (a described machine)."""
        return self.machine.probe

    @property
    def inventory(self) -> Inventory:
        from .._gpus.nvml import discover

        with self.machine.scope():
            return discover()

    @property
    def needs(self) -> List[Need]:
        from ..consumers.installed import installed_needs

        return installed_needs(self.machine, self.consumers)

    @property
    def installed(self) -> List[Library]:
        """Every catalog library found at every version (``locate()``'s inventory), search order."""
        from .._libs.resolve import locate

        return self.machine.memo("every library", lambda: locate(self.machine))

    @property
    def loaded(self) -> Tuple[str, ...]:
        """The shared objects this process has mapped (``()`` where they cannot be read)."""
        return self.machine.loaded or ()

    @property
    def binaries(self) -> Dict[str, Tuple[Optional[str], Tuple[str, ...]]]:
        """Each installed consumer's ``(version, binaries)``: the files carrying its GPU code."""
        from ..consumers.binaries import installed_binaries
        from ..consumers.table import consumer

        rows = [consumer(n.consumer) for n in self.needs]
        return {row.name: installed_binaries(self.machine, row) for row in rows if row is not None and row.binaries}


class Report(Record):
    """Doctor's findings over one ``Context``: ``render()`` for people, ``to_dict()`` for ``--json``."""

    findings: Tuple[Finding, ...]
    context: Context

    @property
    def problems(self) -> List[Finding]:
        return [f for f in self.findings if f.severity == "problem"]

    @property
    def answered(self) -> bool:
        """CUDA answered: the driver probe's ``cuInit`` returned 0 and counted at least one GPU
        (``False`` when the driver was not asked)."""
        probe = self.context.probe
        return bool(probe is not None and probe.answered)

    @property
    def nvml_answered(self) -> bool:
        """NVML answered: in this process (``discover`` read the driver's version) or in the probe."""
        probe = self.context.probe
        nvml = self.context.driver_present and self.context.inventory.error is None
        return bool(nvml or (probe is not None and probe.nvml_answered))

    @property
    def exit_code(self) -> int:
        """0 healthy (warnings allowed), 1 when a problem was found."""
        return 1 if self.problems else 0

    def to_dict(self) -> Dict[str, Any]:
        """The report as ``gpuboot doctor --json`` prints it (``doctor-schema.json``): a JSON-able dict."""
        inv = self.context.inventory
        return {
            "schema_version": SCHEMA_VERSION,
            "platform": self.context.platform,
            "driver": {"present": self.context.driver_present, "evidence": self.context.driver_evidence,
                       "answered": self.answered, "nvml_answered": self.nvml_answered,
                       "probe": self.context.probe.to_dict() if self.context.probe is not None else None,
                       "version": inv.driver_version,
                       "cuda_version": list(inv.cuda_driver_version) if inv.cuda_driver_version else None},
            "devices": [{"nvml_index": d.nvml_index, "cuda_ordinal": d.cuda_ordinal, "uuid": d.uuid, "name": d.name,
                         "compute_capability": list(d.compute_capability), "total_memory": d.total_memory,
                         "free_memory": d.free_memory, "mig_enabled": d.mig_enabled} for d in inv.devices],
            "needs": [{"consumer": n.consumer, "version": n.version, "cuda_major": n.cuda_major,
                       "cudnn_major": n.cudnn_major, "libraries": list(n.libraries), "optional": list(n.optional),
                       "source": n.source} for n in self.context.needs],
            "installed": [{"name": lib.name, "filename": lib.filename, "path": str(lib.path),
                           "cuda_major": lib.cuda_major, "distribution": lib.distribution, "version": lib.version,
                           "source": lib.source} for lib in self.context.installed],
            "findings": [{"id": f.id, "severity": f.severity, "title": f.title, "evidence": list(f.evidence),
                          "remedy": f.remedy, "actions": [a.to_dict() for a in f.actions]} for f in self.findings],
            "exit_code": self.exit_code,
        }

    def render(self) -> str:
        """One line per finding (``ok`` / ``info`` / ``warning`` / ``problem``),
        evidence and remedy indented underneath."""
        lines: List[str] = []
        for f in self.findings:
            lines.append(f"{f.severity:<8}{f.title}")
            lines.extend(f"          {e}" for e in f.evidence)
            if f.remedy:
                lines.append(f"          fix: {f.remedy}")
        n = len(self.problems)
        w = sum(1 for f in self.findings if f.severity == "warning")
        lines.append(f"{n} problem{'s' if n != 1 else ''}, {w} warning{'s' if w != 1 else ''}")
        return "\n".join(lines) + "\n"
