"""``gpuboot.check_process()``: the CUDA libraries a process has mapped, against what its consumers need.

Real loader state first: a child interpreter that ``dlopen``s two copies of the real ``libcudart.so.12`` (by
absolute path, as a consumer that preloads by path does beside one that loads by name) and whose
``/proc/self/maps`` check_process reads.  Then mixes built from compiled objects carrying the real sonames.  Last,
the real thing: PyTorch's CUDA 13 build from PyPI with its ``nvidia-*`` wheels and ctranslate2 (CUDA 12) in one
process, in both import orders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
from helpers import compile_stub, injected, require_real, run_child

from gpuboot.consumers.readers import Need
from gpuboot.mix.process import check_process, mix_findings

ROOT = Path(__file__).resolve().parent.parent


def ids(findings: Any) -> Dict[str, Any]:
    return {f.id: f for f in findings}


def test_two_copies_of_one_soname_mapped_by_path(tmp_path: Path) -> None:
    from gpuboot import locate

    found = locate(["cudart"], cuda_major=12)
    if not found:
        require_real("nvidia-cuda-runtime-cu12 (its libcudart.so.12)")
    real = found[0].path
    copy = tmp_path / "vendored" / "libcudart.so.12"
    copy.parent.mkdir()
    shutil.copy(real, copy)
    proc = run_child(f"""
        import ctypes, json, gpuboot
        ctypes.CDLL({str(real)!r})
        ctypes.CDLL({str(copy)!r})  # a second copy: glibc maps a file given by path even when its soname is loaded
        r = gpuboot.check_process()
        print(json.dumps([[f.id, f.severity, f.title, f.fix] for f in r.findings] + [r.ok]))
    """)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out[-1] is False
    dup = [f for f in out[:-1] if f[0] == "duplicate-library"]
    assert dup and "libcudart.so.12" in dup[0][2] and str(copy) in dup[0][2] and "gpuboot.ensure()" in dup[0][3]


def test_one_copy_of_each_is_fine(tmp_path: Path) -> None:
    proc = run_child("""
        import ctypes, json, gpuboot
        from gpuboot.locate import locate
        libs = locate(["cudart"])
        for lib in libs:
            ctypes.CDLL(str(lib.path))
        r = gpuboot.check_process()
        print(json.dumps([r.ok, [list(x) for x in r.libraries], [f.id for f in r.findings]]))
    """)
    ok, libs, found = json.loads(proc.stdout.strip().splitlines()[-1])
    if not libs:
        require_real("nvidia-cuda-runtime-cu12")
    assert ok is True and found == [] and libs[0][:2] == ["cudart", "libcudart.so.12"]


def _objects(tmp: Path, layout: Dict[str, List[str]]) -> List[str]:
    """Compiled shared objects with the given sonames, by directory: the paths a process would have mapped."""
    out = []
    for directory, sonames in layout.items():
        for soname in sonames:
            out.append(str(compile_stub(tmp / directory / soname, soname)))
    return out


def test_two_cudnn_majors_and_cudnn_parts_from_another_place(tmp_path: Path) -> None:
    mapped = _objects(tmp_path, {"wheel": ["libcudnn.so.9"], "system": ["libcudnn_ops.so.9", "libcudnn.so.8"]})
    with injected(loaded=mapped, metadata={}, platform="linux"):
        r = check_process()
    found = ids(r.findings)
    assert "two-cudnn" in found and "libcudnn.so.8" in found["two-cudnn"].title
    mixed = found["cudnn-parts-mixed"]
    assert "libcudnn_ops.so.9 from" in mixed.title and "cudnnGetLibConfig" in mixed.title
    assert str(tmp_path / "system") in mixed.fix
    assert not r.ok


def test_a_loaded_consumer_whose_major_is_neither_mapped_nor_installed(tmp_path: Path) -> None:
    mapped = _objects(tmp_path, {"cu13": ["libcublas.so.13", "libcublasLt.so.13"], "ct2": ["libctranslate2.so.4"]})
    ct2 = Need(consumer="ctranslate2", version="4.8.5", cuda_major=12, libraries=("cublas",), source="test")
    libs, consumers, found = mix_findings(mapped, [ct2], {"ctranslate2": [mapped[-1]]}, "linux", installed=[])
    assert consumers == ["ctranslate2"] and [x[1] for x in libs] == ["libcublas.so.13", "libcublasLt.so.13"]
    missing = ids(found)["consumer-library-missing"]
    assert "needs libcublas.so.12" in missing.title and "pip install nvidia-cublas-cu12" in missing.fix
    _, _, none = mix_findings(mapped, [ct2], {"ctranslate2": []}, "linux", installed=[])  # not loaded: no verdict
    assert "consumer-library-missing" not in ids(none)


def test_consumers_of_two_majors_that_both_require_one_soname() -> None:
    old_ct2 = Need(consumer="ctranslate2", version="4.5.0", cuda_major=12, libraries=("cublas", "cudnn"),
                   cudnn_major=9, source="test")
    torch = Need(consumer="torch", version="2.14.1", cuda_major=13, libraries=("cudart", "cublas", "cudnn"),
                 cudnn_major=9, source="test")
    _, _, found = mix_findings([], [old_ct2, torch], {}, "linux")
    shared = ids(found)["shared-soname"]
    assert "libcudnn.so.9" in shared.title and "CUDA 12" in shared.title and "CUDA 13" in shared.title
    assert 'pip install "ctranslate2>=4.6.3"' in shared.fix and "CHANGELOG 4.6.3" in shared.fix  # pairings
    new_ct2 = old_ct2._replace(version="4.8.5", libraries=("cublas",), optional=("cudnn",))
    assert "shared-soname" not in ids(mix_findings([], [new_ct2, torch], {}, "linux")[2])  # cuDNN optional there


def test_windows_says_it_did_not_look() -> None:
    with injected(platform="win32"):
        r = check_process()
    assert r.checked is False and r.ok


# --------------------------------------------------------------------------- real CUDA torch beside ctranslate2

TORCH = "2.14.1"  # on these machines' disk (/etc/xdg/pip caps torch at it); a CUDA 13 build with nvidia-* wheels
TORCH_ENV = Path(os.environ.get("GPUBOOT_TORCH_ENV", Path.home() / ".cache" / "gpuboot-tests" / f"torch-{TORCH}"))


def torch_env() -> Path:
    """A venv with PyPI's CUDA build of torch, its nvidia-* wheels, ctranslate2 and nvidia-cublas-cu12 (made once,
    about a minute from the local wheel files; 5.6 GB)."""
    python = TORCH_ENV / "bin" / "python"
    marker = TORCH_ENV / "ready"
    if marker.exists():
        return python
    if os.environ.get("GPUBOOT_REQUIRE_REAL") != "1" and not os.environ.get("GPUBOOT_TORCH_ENV"):
        pytest.skip("the CUDA torch environment is built under CI (GPUBOOT_REQUIRE_REAL=1) or GPUBOOT_TORCH_ENV")
    from importlib.metadata import version

    subprocess.run([sys.executable, "-m", "venv", "--clear", str(TORCH_ENV)], check=True, capture_output=True)
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           f"torch=={TORCH}", f"ctranslate2=={version('ctranslate2')}", "nvidia-cublas-cu12",
                           "packaging", "nvidia-ml-py", "platformdirs"], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        require_real(f"torch {TORCH} with its CUDA wheels ({proc.stderr[-500:]})")
    marker.write_text("")
    return python


ORDERS = {
    "ensure-first": ["rep = gpuboot.ensure()", "import torch, ctranslate2"],
    "imports-first": ["import torch, ctranslate2", "rep = gpuboot.ensure()"],
}

SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import gpuboot
from gpuboot.machine.driver import DriverInfo
from gpuboot.machine.snapshot import Machine
# a host with a driver: ensure() does its work (loading needs no GPU)
with Machine(driver=DriverInfo(present=True, evidence="given")).scope():
    {first}
    {second}
    r = gpuboot.check_process()
import torch
maps = [l.split(None, 5)[5].strip() for l in open("/proc/self/maps") if len(l.split(None, 5)) == 6]
print(json.dumps({{"cuda": torch.version.cuda, "consumers": r.consumers, "ok": r.ok,
                  "findings": [f.line() for f in r.findings], "libraries": [list(x) for x in r.libraries],
                  "needs": [[n.consumer, n.cuda_major] for n in rep.needs], "missing": len(rep.missing),
                  "maps": sorted(set(maps))}}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("order", sorted(ORDERS))
def test_real_cuda_torch_and_ctranslate2_in_one_process(order: str, tmp_path: Path) -> None:
    python = torch_env()
    first, second = ORDERS[order]
    script = tmp_path / "order.py"
    script.write_text(SCRIPT.format(first=first, second=second))
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "PYTHONPATH")}
    proc = subprocess.run([str(python), "-s", str(script), str(ROOT / "src")], capture_output=True, text=True,
                          env=env, timeout=600, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["cuda"].startswith("13.") and sorted(out["consumers"]) == ["ctranslate2", "torch"]
    assert sorted(out["needs"]) == [["ctranslate2", 12], ["torch", 13]] and out["missing"] == 0
    assert out["ok"] is True and out["findings"] == []
    by_soname: Dict[str, List[str]] = {}
    for _name, soname, path in out["libraries"]:
        by_soname.setdefault(soname, []).append(path)
    assert all(len(paths) == 1 for paths in by_soname.values()), by_soname  # one copy of each
    cudnn = [s for s in by_soname if s.startswith("libcudnn.so.")]
    assert cudnn == ["libcudnn.so.9"]  # never two cuDNN versions
    assert {"libcublas.so.12", "libcublas.so.13", "libcudart.so.13"} <= set(by_soname)  # each consumer its own
    mapped = [p for p in out["maps"] if "/nvidia/" in p]
    real = {os.path.realpath(p) for p in mapped}
    assert len(real) == len({os.path.basename(p) for p in real})  # no file name twice, from anywhere
