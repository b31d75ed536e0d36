"""The GPU code a binary carries, read from its fatbin headers, checked entry by entry against ``cuobjdump``.

Fixtures are built by the CUDA 13.0 toolkit's ``nvcc`` with chosen targets (plain, arch-specific ``sm_90a``,
family-specific ``sm_100f``/``sm_120f``, PTX, compressed and not, several modules); the real material is the
ctranslate2 wheel's ``libctranslate2`` (Linux) and ``ctranslate2.dll`` (Windows, a PE ``.nv_fatb`` section)."""

from __future__ import annotations

import os
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
from gpu_code import SECOND, build, fixture, oracle, pe_with_fatbin, read
from helpers import require_real
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuboot.binaries.fatbin import read_fatbin
from gpuboot.consumers.binaries import installed_binaries
from gpuboot.consumers.table import consumer
from gpuboot.machine.snapshot import Machine

MIXED = ("sm_75", "sm_90a", "sm_100f", "sm_120", "compute_120", "compute_86")
SPECIFIC = ("sm_90", "sm_100", "sm_100a", "compute_100a", "sm_120f", "compute_120f", "compute_89")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nvcc")


def test_a_shared_library_nvcc_built_reads_as_cuobjdump_lists_it(built: Path) -> None:
    lib = fixture(built, "mixed", MIXED, sources=(build.__globals__["KERNEL"], SECOND))
    assert read(lib) == oracle(lib)
    fat = read_fatbin(lib)
    assert fat is not None
    assert [c.name for c in fat.cubins] == ["sm_75", "sm_90a", "sm_100f", "sm_120"]
    assert [(c.name, c.version) for c in fat.ptx] == [("compute_86", (9, 0)), ("compute_120", (9, 0))]
    assert fat.describe() == "cubins sm_75, sm_90a, sm_100f, sm_120; PTX compute_86 (ISA 9.0), compute_120 (ISA 9.0)"
    assert fat.entries == sum(c.count for c in fat.code) and fat.containers >= 2  # two sources: two modules


def test_arch_and_family_specific_targets_are_told_apart(built: Path) -> None:
    fat_file = fixture(built, "specific", SPECIFIC, kind="fatbin")
    assert read(fat_file) == oracle(fat_file)
    fat = read_fatbin(fat_file)
    assert fat is not None
    names = {c.name for c in fat.code}
    assert {"sm_100", "sm_100a", "sm_120f", "compute_100a", "compute_120f", "compute_89"} <= names


def test_compression_is_read_as_cuobjdump_reports_it(built: Path) -> None:
    plain = fixture(built, "uncompressed", ("sm_80", "compute_80"), kind="fatbin", extra=("--compress-mode=none",))
    squeezed = fixture(built, "compressed", ("sm_80", "compute_80"), kind="fatbin", extra=("-Xfatbin=-compress-all",))
    assert read(plain) == oracle(plain) and read(squeezed) == oracle(squeezed)
    assert not any(c.compressed for c in read_fatbin(plain).code)  # type: ignore[union-attr]
    assert all(c.compressed for c in read_fatbin(squeezed).code)  # type: ignore[union-attr]


def test_a_windows_dll_carries_its_fatbin_in_nv_fatb(built: Path) -> None:
    fat_file = fixture(built, "specific", SPECIFIC, kind="fatbin")
    dll = pe_with_fatbin(built, fat_file)
    assert dll.read_bytes()[:2] == b"MZ"
    assert read(dll) == oracle(fat_file)  # cuobjdump on Linux reads no PE: the same bytes, bare, are its answer


def _ct2() -> Path:
    row = consumer("ctranslate2")
    assert row is not None
    _version, binaries = installed_binaries(Machine.now(), row)
    if not binaries:
        require_real("the ctranslate2 wheel")
    return Path(binaries[0])


def test_the_real_ctranslate2_wheel_reads_as_cuobjdump_lists_it() -> None:
    lib = _ct2()
    assert read(lib) == oracle(lib)
    fat = read_fatbin(lib)
    assert fat is not None and fat.containers > 1 and all(m.count for m in fat.modules)
    assert all(c.compressed for c in fat.code)  # CUDA 12 builds compress every entry (LZ4)


def test_the_real_windows_ctranslate2_dll_carries_what_the_linux_library_does(tmp_path: Path) -> None:
    from importlib.metadata import version

    cache = Path(os.environ.get("GPUBOOT_WIN_WHEELS", Path.home() / ".cache" / "gpuboot-tests" / "win"))
    wheels = sorted(cache.glob(f"ctranslate2-{version('ctranslate2')}-*-win_amd64.whl"))
    if not wheels:
        require_real(f"the win_amd64 wheel of ctranslate2 {version('ctranslate2')} in {cache} (scripts/test "
                     "downloads it)")
    with zipfile.ZipFile(wheels[-1]) as z:
        z.extract("ctranslate2/ctranslate2.dll", tmp_path)
    dll = read_fatbin(tmp_path / "ctranslate2" / "ctranslate2.dll")
    linux = read_fatbin(_ct2())
    assert dll is not None and linux is not None and dll.entries > 0
    assert {(c.name, c.version) for c in dll.code} == {(c.name, c.version) for c in linux.code}


def test_a_binary_without_gpu_code_and_files_that_are_not_binaries(tmp_path: Path) -> None:
    plain = read_fatbin(shutil.which("true") or "/bin/true")
    assert plain is not None and plain.code == () and plain.describe() == "no GPU code"
    text = tmp_path / "notes.txt"
    text.write_text("not a binary at all, but long enough to look like one if nobody checked the magic\n" * 2)
    assert read_fatbin(text) is None
    assert read_fatbin(tmp_path / "missing.so") is None


def test_a_truncated_fatbin_reports_what_came_before_and_never_raises(built: Path, tmp_path: Path) -> None:
    whole = fixture(built, "specific", SPECIFIC, kind="fatbin").read_bytes()
    complete = read_fatbin(fixture(built, "specific", SPECIFIC, kind="fatbin"))
    cut = tmp_path / "cut.fatbin"
    cut.write_bytes(whole + whole[:40])  # a whole container, then a second one cut after 40 bytes
    fat = read_fatbin(cut)
    assert fat is not None and complete is not None
    assert (fat.malformed, fat.containers, fat.code) == (True, 1, complete.code)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=0, max_size=400), st.integers(min_value=0, max_value=4000))
def test_garbage_after_a_container_header_never_raises(tmp_path: Path, tail: bytes, cut: int) -> None:
    head = struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(tail)) + tail
    path = tmp_path / "fuzz.fatbin"
    path.write_bytes(head[: 16 + cut])
    fat = read_fatbin(path)
    assert fat is None or fat.entries >= 0


def test_results_are_cached_until_the_file_changes(built: Path, tmp_path: Path) -> None:
    src = fixture(built, "mixed", MIXED, sources=(build.__globals__["KERNEL"], SECOND))
    copy = tmp_path / "libcopy.so"
    shutil.copy(src, copy)
    first = read_fatbin(copy)
    assert read_fatbin(copy) is first  # the same object: nothing re-read
    other = fixture(built, "specific", SPECIFIC, kind="fatbin")
    shutil.copy(other, copy)
    os.utime(copy, ns=(1, 1))
    assert read_fatbin(copy) != first
