"""Doctor's values: ``Finding``, ``Context`` (what the checks read), ``Report`` (text, or the schema's JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Literal, Mapping, Optional, Sequence, Tuple

from ..base.record import Record
from ..consumers.table import Need
from .actions import Action, remedy_text

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


def no_metadata(name: str) -> Optional[Tuple[str, Sequence[str]]]:
    """A metadata source that knows no distribution (a ``Context`` built by hand)."""
    return None


def no_distributions() -> Sequence[Tuple[str, str, Sequence[str]]]:
    """No installed distribution known (a ``Context`` built by hand)."""
    return ()


@dataclass
class Context:
    """Everything the checks read.  ``gather()`` fills it from this process."""

    platform: str
    environ: Mapping[str, str]
    initial_environ: Optional[Mapping[str, str]]
    driver_present: bool
    driver_evidence: str
    inventory: Any  # devices.Inventory
    needs: List[Need]
    installed: List[Any]  # locate() inventory: list[Library]
    loaded: List[str]  # paths of shared objects mapped in this process
    search_paths: Optional[Sequence[str]] = None
    metadata: Callable[[str], Optional[Tuple[str, Sequence[str]]]] = field(default=no_metadata)
    wsl: bool = False
    cpu_threads: int = 1  # CPUs this process may use (affinity, cgroup quota)
    probe: Any = None  # _gpus.probe.DriverProbe: what the driver answered (None: not asked)
    #: (name, version, Requires-Dist) of every installed distribution: a remedy must not break one.
    distributions: Callable[[], Sequence[Tuple[str, str, Sequence[str]]]] = field(default=no_distributions)
    #: installed distributions whose metadata is malformed (``_metadata.Malformed``).
    malformed: Callable[[], Sequence[Any]] = field(default=no_distributions)
    #: each installed consumer's ``(version, binaries)``: the files carrying its GPU code (``_code/files.py``).
    binaries: Mapping[str, Tuple[Optional[str], Tuple[str, ...]]] = field(default_factory=dict)


class Report(Record):
    #: Not hashable: it holds the mutable ``Context`` the checks read.
    __hash__ = None  # type: ignore[assignment]
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
