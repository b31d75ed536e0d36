"""Compare gpuboot's view of the GPUs with torch's and CTranslate2's.

    python scripts/gpu_check.py [--out docs/gpu-check.txt]

Prints first what the driver itself answered (gpuboot's driver probe: the
libcuda the loader resolved, cuInit, NVML, the kernel module, device nodes,
container and WSL facts) and the broken layer, if any; then, per CUDA ordinal:
NVML (through gpuboot) name, compute capability,
memory and UUID; torch's name, capability, memory and UUID; CTranslate2's
supported compute types and gpuboot's choice.  Exits 1 on any disagreement
(device counts, names, compute capability, UUID order, a chosen compute type
CTranslate2 does not support), 0 when everything agrees or there is no GPU
to compare.  Run it on a machine with a GPU and commit its output to docs/.
"""

from __future__ import annotations

import argparse
import platform
import sys
from typing import List


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the report to this file")
    args = parser.parse_args()

    import gpuboot
    from gpuboot._gpus.precision import compute_type_for

    lines: List[str] = []
    problems: List[str] = []

    def say(text: str) -> None:
        print(text)
        lines.append(text)

    from gpuboot._gpus.causes import driver_causes
    from gpuboot.machine.probe import probe_driver

    probe = probe_driver()
    say(f"driver probe ({probe.elapsed_ms:.0f} ms in a child process):")
    for key, value in probe.to_dict().items():
        if value not in (None, [], False) and key != "elapsed_ms":
            say(f"  {key}: {value}")
    causes = driver_causes(probe)
    for c in causes:
        say(f"  {c.severity}: {c.line()}")
    if not causes:
        say("  the driver answered" if probe.answered else "  no NVIDIA driver here")

    inv = gpuboot.discover()
    say(f"python {platform.python_version()}  driver {inv.driver_version}  driver CUDA {inv.cuda_driver_version}")
    if inv.error:
        say(f"NVML: {inv.error}")
    for w in inv.warnings:
        say(f"warning: {w}")
    visible = list(inv.visible)
    say(f"NVML (gpuboot): {len(visible)} visible device(s)")
    for d in visible:
        say(f"  cuda:{d.cuda_ordinal} {d.name} CC {d.compute_capability} total {d.total_memory} "
            f"free {d.free_memory} {d.uuid}")

    try:
        import torch
    except ImportError:
        torch = None  # type: ignore[assignment]
        say("torch: not installed")
    if torch is not None:
        n = torch.cuda.device_count()
        say(f"torch {torch.__version__}: {n} device(s)")
        if n != len(visible):
            problems.append(f"device count: NVML/gpuboot {len(visible)} vs torch {n}")
        for i in range(n):
            props = torch.cuda.get_device_properties(i)
            free, total = torch.cuda.mem_get_info(i)
            uuid = str(getattr(props, "uuid", ""))
            say(f"  cuda:{i} {props.name} CC {(props.major, props.minor)} total {total} free {free} GPU-{uuid}")
            if i < len(visible):
                d = visible[i]
                torch_cc = (props.major, props.minor)
                if torch_cc != d.compute_capability:
                    problems.append(f"cuda:{i} CC: gpuboot {d.compute_capability} vs torch {torch_cc}")
                if props.name not in d.name and d.name not in props.name:
                    problems.append(f"cuda:{i} name: gpuboot {d.name!r} vs torch {props.name!r}")
                if uuid and not d.uuid.endswith(uuid):
                    problems.append(f"cuda:{i} UUID: gpuboot {d.uuid} vs torch {uuid} (ordinal mapping is wrong)")

    try:
        import ctranslate2
    except ImportError:
        ctranslate2 = None
        say("ctranslate2: not installed")
    if ctranslate2 is not None:
        n = ctranslate2.get_cuda_device_count()
        say(f"ctranslate2 {ctranslate2.__version__}: {n} device(s)")
        if n != len(visible):
            problems.append(f"device count: NVML/gpuboot {len(visible)} vs ctranslate2 {n}")
        for i in range(min(n, len(visible))):
            supported = set(ctranslate2.get_supported_compute_types("cuda", i))
            for prefer in ("auto", "speed", "accuracy"):
                ctype, _ = compute_type_for(visible[i], prefer, ct2_version=ctranslate2.__version__)
                ok = ctype in supported
                say(f"  cuda:{i} prefer={prefer}: gpuboot {ctype} {'in' if ok else 'NOT in'} {sorted(supported)}")
                if not ok:
                    problems.append(f"cuda:{i} gpuboot chose {ctype} for prefer={prefer}, "
                                    f"unsupported by ctranslate2 ({sorted(supported)})")

    choice = gpuboot.select_device()
    say(f"select_device: {choice.torch_device} torch_dtype={choice.torch_dtype} "
        f"compute_type={choice.compute_type} -- {choice.reason}")
    if not visible:
        say("no GPU visible to NVML: nothing to compare")
    for p in problems:
        say(f"DISAGREEMENT: {p}")
    say("result: " + ("FAIL" if problems else "ok"))
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
