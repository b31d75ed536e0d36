"""GPU code fixtures and the oracle: binaries built by the CUDA toolkit's ``nvcc`` with chosen ``-gencode``
targets, and ``cuobjdump`` (the ``nvidia-cuda-cuobjdump`` wheel, a test dependency) reading them.

``nvcc`` comes from the CUDA 13.0 toolkit on these machines (``/usr/local/cuda*/bin``, or ``PATH``).  Every fixture
is built once per session.  ``oracle(path)`` is what ``cuobjdump`` lists for a file: one
``(kind, arch, code version, compressed)`` per entry, ``arch`` as it prints it (``sm_90a``, ``sm_100f``).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, Sequence, Tuple

from helpers import require_real

KERNEL = """
__global__ void scale(float* a, float s, int n) { int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) a[i] *= s; }
extern "C" int launch(float* a, float s, int n) { scale<<<(n + 255) / 256, 256>>>(a, s, n); return 0; }
"""
SECOND = """
__global__ void shift(float* a, float s, int n) { int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) a[i] += s; }
extern "C" int launch2(float* a, float s, int n) { shift<<<(n + 255) / 256, 256>>>(a, s, n); return 0; }
"""

Entry = Tuple[str, str, Tuple[int, int], bool]


def nvcc() -> str:
    """The toolkit's ``nvcc`` (fails under CI when absent)."""
    found = shutil.which("nvcc") or next(iter(sorted(glob.glob("/usr/local/cuda*/bin/nvcc"), reverse=True)), None)
    if not found:
        require_real("the CUDA toolkit's nvcc (/usr/local/cuda/bin/nvcc)")
    assert found is not None
    return found


def cuobjdump() -> str:
    """``cuobjdump`` from the ``nvidia-cuda-cuobjdump`` wheel."""
    for entry in sys.path:
        for sub in ("nvidia/cu13/bin/cuobjdump", "nvidia/cuda_cuobjdump/bin/cuobjdump"):
            path = Path(entry) / sub
            if entry and path.exists():
                if not os.access(path, os.X_OK):
                    path.chmod(0o755)
                return str(path)
    require_real("cuobjdump from the nvidia-cuda-cuobjdump wheel (pip install nvidia-cuda-cuobjdump)")
    raise AssertionError("unreachable")


def gencode(targets: Sequence[str]) -> list:
    """``-gencode`` options: ``"sm_90a"`` a cubin, ``"compute_86"`` PTX."""
    out = []
    for t in targets:
        arch = re.sub(r"^(sm|compute)_", "compute_", t)
        out += ["-gencode", f"arch={arch},code={t}"]
    return out


def build(directory: Path, name: str, targets: Sequence[str], *, kind: str = "shared",
          sources: Sequence[str] = (KERNEL,),
          extra: Sequence[str] = ()) -> Path:
    """A binary carrying ``targets``: ``kind`` ``"shared"`` (an ELF ``.so``) or ``"fatbin"`` (a bare fatbin file).
    Each source is one module (one fatbin container)."""
    directory.mkdir(parents=True, exist_ok=True)
    srcs = []
    for i, text in enumerate(sources):
        src = directory / f"{name}-{i}.cu"
        src.write_text(text)
        srcs.append(str(src))
    out = directory / (f"lib{name}.so" if kind == "shared" else f"{name}.fatbin")
    if kind == "shared":
        args = [nvcc(), "-shared", "-Xcompiler", "-fPIC", "-o", str(out), *srcs, *gencode(targets), *extra]
    else:
        args = [nvcc(), "-fatbin", "-o", str(out), srcs[0], *gencode(targets), *extra]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def oracle(path: Path) -> Counter:
    """What ``cuobjdump`` lists in ``path``: a multiset of ``(kind, arch, version, compressed)``."""
    proc = subprocess.run([cuobjdump(), str(path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 or "does not contain device code" in proc.stderr, proc.stderr
    out: Counter = Counter()
    for block in re.split(r"\n(?=Fatbin (?:elf|ptx) code:)", proc.stdout):
        m = re.match(r"Fatbin (elf|ptx) code:", block.strip())
        if not m:
            continue
        head = block.strip().split("\n\n", 1)[0]
        arch = re.search(r"^arch = (\S+)$", head, re.M)
        version = re.search(r"^code version = \[(\d+),(\d+)\]$", head, re.M)
        assert arch and version, head
        out[("cubin" if m.group(1) == "elf" else "ptx", arch.group(1), (int(version.group(1)), int(version.group(2))),
             bool(re.search(r"^compressed$", head, re.M)))] += 1
    return out


def read(path: Path) -> Counter:
    """What gpuboot reads in ``path``, in the oracle's terms."""
    from gpuboot.binaries.fatbin import read_fatbin

    fat = read_fatbin(path)
    assert fat is not None and not fat.malformed, fat
    return Counter({(c.kind, f"sm_{c.target}{c.suffix}", c.version, c.compressed): c.count for c in fat.code})


def pe_with_fatbin(directory: Path, fatbin: Path, name: str = "kernels") -> Path:
    """A real Windows DLL (mingw) whose ``.nv_fatb`` section holds ``fatbin``'s bytes, as nvcc lays it out on
    Windows."""
    gcc = shutil.which("x86_64-w64-mingw32-gcc")
    if gcc is None:
        require_real("mingw (x86_64-w64-mingw32-gcc: apt-get install gcc-mingw-w64-x86-64)")
    assert gcc is not None
    data = fatbin.read_bytes()
    body = ",".join(str(b) for b in data)
    src = directory / f"{name}.c"
    src.write_text(f'__attribute__((section(".nv_fatb"), used, aligned(8)))\n'
                   f"static const unsigned char fatbin[{len(data)}] = {{{body}}};\n"
                   "__declspec(dllexport) int first_byte(void) { return fatbin[0]; }\n")
    out = directory / f"{name}.dll"
    proc = subprocess.run([gcc, "-shared", "-O0", "-o", str(out), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


_BUILT: Dict[str, Path] = {}


def fixture(root: Path, key: str, targets: Sequence[str], **kw: object) -> Path:
    """``build`` once per session, by ``key``."""
    if key not in _BUILT:
        _BUILT[key] = build(root / key, key.replace("-", "_"), targets, **kw)  # type: ignore[arg-type]
    return _BUILT[key]

