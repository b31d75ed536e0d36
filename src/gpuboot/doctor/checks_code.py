"""Doctor's checks of the GPU code each installed consumer carries against each visible GPU, and of the mix of
CUDA libraries in this process."""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Tuple

from .._gpus.codes import cuda_version
from .actions import Action, host, pip_install
from .report import Context, Finding, Severity

if TYPE_CHECKING:
    from .._code.consumers import ConsumerCode
    from ..consumers.types import Consumer

__all__ = ["check_gpu_code", "check_process_mix"]


def _driver_cuda(ctx: Context) -> Optional[Tuple[int, int]]:
    cuda_v = ctx.inventory.cuda_driver_version
    if cuda_v is None and ctx.probe is not None and (ctx.probe.answered or ctx.probe.nvml_answered):
        cuda_v = cuda_version(ctx.probe.nvml_cuda_version or ctx.probe.cuda_driver_version)
    return cuda_v  # type: ignore[no-any-return]


def _actions(row: Consumer, code: ConsumerCode) -> Tuple[Action, ...]:
    """The fix as steps: a pip install where it is a known build of the row's whose requirement is the whole
    fix (``Consumer.arch_fixes``), else an instruction."""
    known = code.arch_fix
    if code.verdict.kind == "none" and known is not None:
        url = row.index_of(known.index) if known.index else None
        if url is not None:
            return (pip_install(row.name, force_reinstall=True, index_url=url),)
        if known.requirement:
            return (pip_install(known.requirement),)
    return (host(code.fix),) if code.fix else ()


def check_gpu_code(ctx: Context) -> List[Finding]:
    """Every installed consumer's GPU code (its binaries' fatbins) against every visible GPU: native is ok, a
    JIT-only GPU a warning (slow first start, a driver new enough for the PTX), no code a problem."""
    from .._code.consumers import consumer_code
    from ..consumers.table import consumer

    driver_cuda = _driver_cuda(ctx)
    binaries = ctx.binaries
    out: List[Finding] = []
    for device in ctx.inventory.visible:
        cc = device.compute_capability
        label = f"cuda:{device.cuda_ordinal} {device.name} (CC {cc[0]}.{cc[1]})"
        for need in ctx.needs:
            row = consumer(need.consumer)
            if row is None or need.consumer not in binaries:
                continue
            version, files = binaries[need.consumer]
            code = consumer_code(row, version, files, cc, driver_cuda, label)
            if code is None:
                continue
            evidence = (f"carries: {code.verdict.carries}", *code.binaries,
                        *((f"source: {code.source}",) if code.source else ()))
            if code.verdict.kind == "native":
                out.append(Finding(id="gpu-code", severity="ok", title=code.line(), evidence=evidence))
                continue
            severity: Severity = "warning" if code.verdict.kind == "jit" else "problem"
            fid = "gpu-code-jit" if code.verdict.kind == "jit" else "gpu-code-missing"
            actions = _actions(row, code)
            out.append(Finding.fixed_by(fid, severity, code.summary(), evidence, ctx.platform, *actions) if actions
                       else Finding(id=fid, severity=severity, title=code.summary(), evidence=evidence))
    return out


def check_process_mix(ctx: Context) -> List[Finding]:
    """The CUDA libraries this process has mapped, against its consumers (``gpuboot.check_process``'s rules), and
    installed consumers of different CUDA majors that require one soname."""
    from ..mix.process import mix_findings

    binaries = {name: found[1] for name, found in ctx.binaries.items()}
    _libs, _consumers, found = mix_findings(ctx.loaded if ctx.platform != "win32" else [], ctx.needs, binaries,
                                            ctx.platform, ctx.installed)
    return [Finding(id=f.id, severity="problem" if f.severity == "problem" else "warning", title=f.title,
                    remedy=f.fix) for f in found]
