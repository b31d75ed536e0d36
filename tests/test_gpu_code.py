"""Will this GPU run this package's kernels?  The CUDA compatibility rules over fatbins nvcc built with chosen
targets, then the real ctranslate2 wheel against a table of GPUs: through select_device over a fake NVML, and on
hosts whose NVML and libcuda are stub libraries (compiled against NVIDIA's headers) in private mount namespaces,
where doctor, select_device and load_whisper's plan see what a user would."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Tuple

import pytest
from driver_host import (
    A100_SXM,
    GTX_980,
    GTX_1080,
    H100_SXM,
    RTX_4090,
    RTX_5090,
    TESLA_K80,
    StubGPU,
    namespaces_available,
    run,
    stub_cuda,
    stub_nvml,
)
from fake_nvml import A100, H100, gpu
from fake_nvml import GTX_980 as FAKE_980
from fake_nvml import GTX_1080 as FAKE_1080
from fake_nvml import RTX_4090 as FAKE_4090
from fake_nvml import RTX_5090 as FAKE_5090
from fake_nvml import TESLA_K80 as FAKE_K80
from gpu_code import KERNEL, SECOND, fixture
from helpers import choose, require_real, skip_or_fail

from gpuboot._code.rules import PTX_ISA_CUDA, cubin_runs, judge, ptx_needs_cuda, ptx_runs
from gpuboot.binaries.fatbin import GpuCode, read_fatbin

# --------------------------------------------------------------------------- the rules


def code(name: str, version: Tuple[int, int] = (9, 0)) -> GpuCode:
    kind = "cubin" if name.startswith("sm_") else "ptx"
    digits = name.split("_")[1]
    suffix = digits[-1] if digits[-1] in "af" else ""
    return GpuCode(kind=kind, target=int(digits.rstrip("af")), suffix=suffix, version=version)  # type: ignore[arg-type]


@pytest.mark.parametrize(("entry", "cc", "runs"), [
    ("sm_86", (8, 6), True), ("sm_86", (8, 9), True), ("sm_86", (8, 0), False), ("sm_80", (9, 0), False),
    ("sm_53", (5, 2), False), ("sm_50", (5, 2), True), ("sm_35", (3, 7), True),
    ("sm_90a", (9, 0), True), ("sm_90a", (9, 1), False), ("sm_100a", (10, 3), False),
    ("sm_100f", (10, 3), True), ("sm_100f", (10, 0), True), ("sm_100f", (12, 0), False), ("sm_103f", (10, 0), False),
    ("sm_120", (12, 1), True), ("sm_120", (10, 0), False),
])
def test_a_cubin_runs_on_its_major_at_an_equal_or_higher_minor(entry: str, cc: Tuple[int, int], runs: bool) -> None:
    assert cubin_runs(code(entry), cc) is runs


@pytest.mark.parametrize(("entry", "cc", "runs"), [
    ("compute_86", (8, 6), True), ("compute_86", (9, 0), True), ("compute_86", (12, 0), True),
    ("compute_86", (8, 0), False), ("compute_90a", (9, 0), True), ("compute_90a", (10, 0), False),
    ("compute_100f", (10, 3), True), ("compute_100f", (12, 0), False), ("compute_120", (12, 1), True),
])
def test_ptx_is_jit_compiled_for_any_equal_or_newer_gpu(entry: str, cc: Tuple[int, int], runs: bool) -> None:
    assert ptx_runs(code(entry), cc) is runs


def test_the_ptx_isa_table_names_the_first_cuda_release_of_each_isa() -> None:
    assert ptx_needs_cuda((8, 7)) == (12, 8) and ptx_needs_cuda((9, 0)) == (13, 0) and ptx_needs_cuda((7, 8)) == (11, 8)
    assert ptx_needs_cuda((8, 6)) == (12, 7)  # CUDA 12.6 kept ISA 8.5
    assert ptx_needs_cuda((99, 0)) is None
    ordered = sorted(PTX_ISA_CUDA.items())
    assert [cuda for _isa, cuda in ordered] == sorted(cuda for _isa, cuda in ordered)  # a newer ISA, a newer CUDA


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nvcc")


MIXED = ("sm_75", "sm_90a", "sm_100f", "sm_120", "compute_120", "compute_86")


@pytest.mark.parametrize(("cc", "driver", "kind", "words"), [
    ((7, 5), (13, 0), "native", "sm_75"),
    ((8, 0), (13, 0), "none", "no code for CC 8.0"),  # sm_75 is another major; the PTX targets 8.6 and 12.0
    ((8, 6), (13, 0), "jit", "only PTX compute_86"),
    ((8, 9), (13, 0), "jit", "only PTX compute_86"),
    ((9, 0), (13, 0), "native", "sm_90a"),
    ((10, 0), (13, 0), "native", "sm_100f"),
    ((10, 3), (13, 0), "native", "sm_100f"),
    ((12, 1), (13, 0), "native", "sm_120"),
    ((8, 6), (12, 8), "none", "PTX ISA 9.0, which needs a driver for CUDA 13.0"),
    ((8, 6), None, "jit", "a driver for CUDA 13.0 or newer"),
])
def test_judging_an_nvcc_built_library(built: Path, cc: Tuple[int, int], driver: Any, kind: str, words: str) -> None:
    fat = read_fatbin(fixture(built, "mixed", MIXED, sources=(KERNEL, SECOND)))
    assert fat is not None
    verdict = judge(fat, cc, driver)
    assert verdict.kind == kind, verdict.reason
    assert words in verdict.reason
    assert verdict.modules == 2 and (verdict.missing == 2) is (kind == "none" and verdict.ptx_cuda is None)


def test_a_kernel_runs_only_through_its_own_module(built: Path, tmp_path: Path) -> None:
    """One module built for sm_86 and sm_90, another for sm_86 only: an H100 has native code for one module and none
    for the other, and the verdict says so (the first kernel of the second module fails)."""
    from gpu_code import build

    both = build(tmp_path / "a", "partial", ("sm_86", "sm_90"), sources=(KERNEL,))
    fat_a = read_fatbin(both)
    only = build(tmp_path / "b", "partial2", ("sm_86",), sources=(SECOND,))
    fat_b = read_fatbin(only)
    assert fat_a is not None and fat_b is not None
    merged = fat_a._replace(modules=fat_a.modules + fat_b.modules, code=fat_a.code + fat_b.code)
    verdict = judge(merged, (9, 0), (12, 8), name="libpartial.so")
    assert verdict.kind == "none" and "in 1 of its 2 modules" in verdict.reason
    assert judge(merged, (8, 9), (12, 8)).kind == "native"


def test_modules_built_only_for_one_architecture_count_only_there(built: Path) -> None:
    from gpu_code import build

    general = read_fatbin(fixture(built, "general", ("sm_80",), sources=(KERNEL,)))
    hopper = read_fatbin(build(built / "hopper", "hopper", ("sm_90a",), sources=(SECOND,)))
    assert general is not None and hopper is not None and hopper.modules[0].specific
    merged = general._replace(modules=general.modules + hopper.modules, code=general.code + hopper.code)
    assert judge(merged, (8, 6), None).kind == "native"  # the Hopper-only module is never called on an RTX 3090
    assert judge(merged, (9, 0), None).kind == "none"  # an H100 calls the general module: no sm_90 code there


# --------------------------------------------------------------------------- the real ctranslate2 wheel


def _installed_ct2() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ctranslate2")
    except PackageNotFoundError:
        require_real("ctranslate2")
        raise


#: GPU, what ctranslate2 4.8.5 (cubins sm_53..sm_86, PTX compute_86 at ISA 8.7) does there on a driver for CUDA 12.8,
#: and on one for CUDA 12.4 (driver 550).
CT2_TABLE = [
    (FAKE_K80, "cpu", "cpu", "has no code for CC 3.7"),
    (FAKE_980, "cpu", "cpu", "has no code for CC 5.2"),
    (FAKE_1080, "cuda", "cuda", "native"),
    (A100, "cuda", "cuda", "native"),
    (FAKE_4090, "cuda", "cuda", "native"),
    (H100, "jit", "cpu", "PTX ISA 8.7, which needs a driver for CUDA 12.8"),
    (FAKE_5090, "jit", "cpu", "PTX ISA 8.7, which needs a driver for CUDA 12.8"),
]


@pytest.mark.parametrize(("spec", "new_driver", "old_driver", "words"), CT2_TABLE, ids=[r[0][0] for r in CT2_TABLE])
def test_ctranslate2_against_a_table_of_gpus(spec: tuple, new_driver: str, old_driver: str, words: str) -> None:
    if _installed_ct2() != "4.8.5":
        skip_or_fail("the table is ctranslate2 4.8.5's")
    new = choose([gpu(spec, 0)], driver_cuda=12080)
    old = choose([gpu(spec, 0)], driver_cuda=12040)
    ct2 = {c.consumer: c for c in new.gpu_code}["ctranslate2"]
    assert new.kind == "cuda" and old.kind == "cuda"  # the GPU is still chosen: other consumers may run there
    if new_driver == "jit":
        assert new.ct2_device == "cuda" and ct2.verdict.kind == "jit"
        assert any("JIT-compiles" in w and "CUDA_CACHE_MAXSIZE" in w for w in new.warnings), new.warnings
        assert "CC 9.0" in ct2.verdict.reason or "CC 12.0" in ct2.verdict.reason
        assert "CTranslate2 on the CPU" in old.reason and words in old.reason and "222" in old.reason
        assert old.ct2_device == "cpu" and "update the NVIDIA driver" in old.reason
    elif new_driver == "cpu":
        for choice in (new, old):
            assert choice.ct2_device == "cpu" and words in choice.reason, choice.reason
            assert "sm_53" in choice.reason and "compute_86" in choice.reason  # what the binary carries
        assert 'pip install "ctranslate2<4"' in new.reason  # the build that still carries sm_35/sm_50
    else:
        assert new.ct2_device == old.ct2_device == "cuda" and ct2.verdict.kind == "native"
        assert not [w for w in new.warnings if "JIT" in w]


def test_a_machine_with_two_gpus_prefers_the_one_ctranslate2_can_run_on() -> None:
    big_but_old = (FAKE_980[0], FAKE_980[1], 48 * 2**30, FAKE_980[3])  # more free memory than the 4090
    c = choose([gpu(big_but_old, 0), gpu(FAKE_4090, 1)], driver_cuda=12080)
    assert c.gpu is not None and c.gpu.name == FAKE_4090[0] and c.ct2_device == "cuda"
    assert any("not chosen" in w and "CC 5.2" in w for w in c.warnings), c.warnings


def test_the_fix_for_old_gpus_is_read_off_the_ctranslate2_3_wheel(tmp_path: Path) -> None:
    """The ctranslate2 row's ``arch_fixes`` claim: ctranslate2 3.24.0's manylinux wheel carries sm_35 and sm_50
    cubins."""
    import zipfile

    from gpuboot.consumers.table import consumer

    cache = Path(os.environ.get("GPUBOOT_OLD_WHEELS", Path.home() / ".cache" / "gpuboot-tests" / "old"))
    wheels = sorted(cache.glob("ctranslate2-3.24.0-*manylinux*x86_64.whl"))
    if not wheels:
        require_real(f"the ctranslate2 3.24.0 manylinux wheel in {cache} (scripts/test downloads it)")
    with zipfile.ZipFile(wheels[0]) as z:
        member = next(n for n in z.namelist() if "/libctranslate2" in n)
        z.extract(member, tmp_path)
    fat = read_fatbin(tmp_path / member)
    assert fat is not None
    names = [c.name for c in fat.cubins]
    assert names[:2] == ["sm_35", "sm_50"]
    fix = consumer("ctranslate2").arch_fixes[0]  # type: ignore[union-attr]
    for cc in ((3, 7), (5, 2)):
        assert fix.cc_from <= cc < fix.cc_below
        assert judge(fat, cc, (11, 4)).kind == "native"


# --------------------------------------------------------------------------- at the NVML/libcuda boundary

NAMESPACE_TABLE = [
    (TESLA_K80, 12080, "cpu", "has no code for CC 3.7"),
    (GTX_980, 12080, "cpu", "has no code for CC 5.2"),
    (GTX_1080, 12080, "cuda", "runs natively on"),
    (A100_SXM, 12080, "cuda", "runs natively on"),
    (RTX_4090, 12080, "cuda", "runs natively on"),
    (H100_SXM, 12080, "cuda", "runs through a JIT compile on"),
    (RTX_5090, 12080, "cuda", "runs through a JIT compile on"),
    (H100_SXM, 12040, "cpu", "PTX ISA 8.7, which needs a driver for CUDA 12.8"),
]


@pytest.mark.parametrize(("stub", "cuda", "ct2_device", "words"), NAMESPACE_TABLE,
                         ids=[f"{r[0].name}-{r[1]}" for r in NAMESPACE_TABLE])
def test_ctranslate2_on_hosts_whose_gpu_answers_through_stub_libraries(tmp_path: Path, stub: StubGPU, cuda: int,
                                                                       ct2_device: str, words: str) -> None:
    namespaces_available()
    if _installed_ct2() != "4.8.5":
        skip_or_fail("the table is ctranslate2 4.8.5's")
    driver = "570.86.15" if cuda >= 12080 else "550.54.14"
    libs = [stub_cuda(tmp_path / "cuda", version=cuda, gpus=(stub,), file_version=driver),
            stub_nvml(tmp_path / "nvml", driver=driver, cuda=cuda, gpus=(stub,))]
    out: Dict[str, Any] = run(tmp_path, libdirs=libs, kernel_module=driver,
                              nodes=["nvidiactl", "nvidia0", "nvidia-uvm"])
    assert out["answered"] is True and out["kind"] == "cuda", out["reason"]
    assert out["ct2_device"] == ct2_device, out["reason"]
    findings = {f[0]: f for f in out["findings"]}
    code = [f for f in out["findings"] if f[0].startswith("gpu-code") and f[2].startswith("ctranslate2")]
    assert len(code) == 1, out["findings"]
    assert words in code[0][2] and stub.name in code[0][2]
    severity = {"cuda": "ok" if "natively" in words else "warning", "cpu": "problem"}[ct2_device]
    assert code[0][1] == severity
    if ct2_device == "cpu":
        assert out["exit"] == 1 and code[0][3]  # a problem, with its fix
        assert words in out["reason"]
    else:
        assert "driver" in findings and findings["driver"][1] == "ok"
