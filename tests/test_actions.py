"""Remedies as structured steps (doctor/actions.py): only what packaging accepts becomes a step, and a step is
shown quoted for the platform's shell, never re-parsed."""

from __future__ import annotations

import shlex
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuboot.base.quote import command_line
from gpuboot.consumers.table import CONSUMER_TABLE, consumer
from gpuboot.doctor.actions import InvalidAction, index_for, pip_install, pip_uninstall, remedy_text, remove_link

TORCH = consumer("torch")


@pytest.mark.parametrize("bad", [
    "2.3.1' --extra-index-url https://evil.example/simple 'x",
    "torch==2.3.1 --extra-index-url https://evil.example/simple",
    "--index-url=https://evil.example/simple",
    "torch @ https://evil.example/torch.whl",
    "torch==2.3.1; python_version > '3'",
    "torch[cuda]==2.3.1",
    "",
    "torch==2.3.1\nos",
])
def test_a_requirement_carrying_anything_but_a_name_and_a_version_is_refused(bad: str) -> None:
    with pytest.raises(InvalidAction):
        pip_install(bad)


@pytest.mark.parametrize("bad", ["-y", "torch --index-url x", "../etc", "torch;rm", "", "nvidia cublas", "a" * 0])
def test_an_uninstall_takes_distribution_names_only(bad: str) -> None:
    with pytest.raises(InvalidAction):
        pip_uninstall(bad)


def test_names_are_canonical_and_options_come_from_a_fixed_set() -> None:
    a = pip_install("Nvidia_CUDNN.cu12 == 9.*", upgrade=True)
    assert a.words() == ("pip", "install", "--upgrade", "nvidia-cudnn-cu12==9.*")
    assert pip_uninstall("NVIDIA_CUBLAS_CU12").words() == ("pip", "uninstall", "-y", "nvidia-cublas-cu12")
    torch = pip_install("torch==2.5.1", force_reinstall=True, index_url=TORCH.index_of("cu124"))  # type: ignore[union-attr]
    assert torch.options == ("--force-reinstall", "--index-url", "https://download.pytorch.org/whl/cu124")
    with pytest.raises(InvalidAction):  # only an index a consumer's row names
        pip_install("torch==2.5.1", index_url="https://download.pytorch.org/whl/cu124 --extra-index-url "
                                              "https://evil.example/simple")
    with pytest.raises(InvalidAction):
        pip_install("torch==2.5.1", index_url="https://evil.example/simple")
    with pytest.raises(InvalidAction):
        remove_link("relative/libcublas.so.12")


def test_commands_are_quoted_for_the_platform_shell() -> None:
    link = "/home/u/my venv/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.12"
    text = remedy_text((remove_link(link), pip_install("nvidia-cublas-cu12")), "linux")
    assert text == f"rm {shlex.quote(link)} && pip install nvidia-cublas-cu12"
    assert shlex.split(text.split(" && ")[0]) == ["rm", link]  # pasted into a shell, one word
    win = r"C:\Users\u\my venv\Lib\site-packages\nvidia\cublas\bin\cublas64_12.dll"
    shown = command_line(["rm", win], "win32")
    assert shown == f'rm "{win}"' and "\\\\" not in shown  # cmd.exe rules keep the backslashes as they are
    assert command_line(["pip", "install", "nvidia-cudnn-cu12==8.*"], "linux") == "pip install 'nvidia-cudnn-cu12==8.*'"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=20), min_size=1, max_size=5))
def test_a_posix_command_line_splits_back_into_the_same_words(words: list) -> None:
    words = [w for w in words if "\x00" not in w]
    if words:
        assert shlex.split(command_line(words, "linux")) == words


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\x00\"", blacklist_categories=("Cs",)),
                        min_size=1, max_size=20), min_size=1, max_size=4))
def test_a_windows_command_line_is_what_subprocess_passes(words: list) -> None:
    assert command_line(words, "win32") == subprocess.list2cmdline(words)


@pytest.mark.parametrize(("version", "driver", "expected"), [
    ("2.3.1", (12, 8), ("cu121", "reinstall")),    # cu128 has no torch 2.3.1
    ("2.5.1+cpu", (12, 4), ("cu124", "reinstall")),
    ("2.7.0", (12, 8), ("cu128", "reinstall")),
    ("2.7.0", (12, 6), ("cu126", "reinstall")),
    ("2.9.1", (13, 0), ("cu130", "reinstall")),
    ("2.9.1", (11, 8), ("cu126", "upgrade-driver")),  # its builds need CUDA 12.6 at least
    ("1.12.1", (12, 4), ("cu124", "upgrade")),  # no index of the table serves it
    ("2.5.1", (11, 0), ("cu118", "upgrade-driver")),  # cu118 is the one needing the oldest driver
    ("1.12.1", (11, 0), (None, "none")),              # neither a served version nor a driver any index runs on
    ("not a version", (12, 4), (None, "none")),
])
def test_the_torch_index_serves_that_version_and_runs_on_the_driver(version: str, driver: tuple,
                                                                    expected: tuple) -> None:
    assert index_for(TORCH, version, driver) == expected  # type: ignore[arg-type]


def test_every_index_table_is_well_formed() -> None:
    from packaging.specifiers import SpecifierSet

    for row in (r for r in CONSUMER_TABLE if r.indexes):
        tags = [i.tag for i in row.indexes]
        cudas = [i.cuda for i in row.indexes]
        assert len(tags) == len(set(tags)) and cudas == sorted(cudas), row.name
        assert "{tag}" in row.index_url and row.index_url.startswith("https://"), row.name
        for i in row.indexes:
            assert i.tag == f"cu{i.cuda[0]}{i.cuda[1]}" and str(SpecifierSet(i.serves))
