"""``gpuboot transcribe``'s inputs, planned before any model is loaded: folders expanded, special files refused,
each recording's transcript path (folders mirrored under ``--output-dir``), clashes, ``--skip-existing``, and the
output directory tried for real.

Names that are not UTF-8 (bytes a POSIX file system allows) stay as Python
holds them (``surrogateescape``) for every file operation, so the transcript
keeps the recording's exact name; ``shown`` is the form that goes into text:
the stray bytes as ``\\xNN``.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..base.record import Record
from ..errors import GpubootError, OutputDirError
from ..whisper.audio import SPECIAL_FILES, special_kind

__all__ = ["AUDIO_SUFFIXES", "SPECIAL_FILES", "WRITE_FIXES", "Input", "Refused", "shown", "expand", "special_kind",
           "mirror", "case_insensitive", "first_clash", "check_output_dir", "write_problem", "OutputDirError"]

#: Suffixes taken from a folder given as an input (lower case): containers FFmpeg decodes that hold speech.
AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".flac", ".m4a", ".ogg", ".oga", ".opus", ".aac", ".wma", ".aif",
                            ".aiff", ".amr", ".mka", ".webm", ".mp4", ".m4v", ".mov", ".mkv", ".3gp", ".caf"})

_ANY_DIR = "pass --output-dir with a directory this user can write"
#: Why a transcript cannot be written, by ``errno``: (what it means, the fix).  The rest: the system's words.
WRITE_FIXES: Dict[int, Tuple[str, str]] = {
    errno.ENOSPC: ("no space left on the device", "free space there, or pass --output-dir on another disk"),
    errno.EDQUOT: ("the disk quota is used up", "free space within the quota, or pass --output-dir elsewhere"),
    errno.EROFS: ("the file system is read-only", "pass --output-dir on a writable file system"),
    errno.EACCES: ("permission denied", "give this user write permission (chmod u+w) or " + _ANY_DIR[5:]),
    errno.EPERM: ("the operation is not permitted", _ANY_DIR),
    errno.ELOOP: ("the path loops through symbolic links", "fix or remove the symbolic link in the path"),
    errno.ENAMETOOLONG: ("the path is too long for the file system", "pass a shorter --output-dir"),
    errno.ENOTDIR: ("a part of the path is a file, not a directory", "remove that file or pass another --output-dir"),
    errno.EEXIST: ("a file is in the way of a directory", "remove that file or pass another --output-dir"),
}


def shown(path: str) -> str:
    """``path`` fit for text (a terminal line, JSON): bytes that are not UTF-8 written as ``\\xNN``."""
    try:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no undecodable byte made
        return path.encode("utf-8", "backslashreplace").decode("utf-8")


class Input(Record):
    """One recording to transcribe.

    Attributes:
        path: its path, as given or as found in a folder given.
        base: its transcripts' path without the format suffix (``<base>.srt``...): the output directory, the
            folders mirrored from the inputs' common parent, and its stem.
    """

    path: str
    base: Path


class Refused(Record):
    """An input refused before any work: one error line, and the others go on."""

    path: str
    message: str
    fix: str


def expand(paths: Iterable[str]) -> Tuple[List[str], List[Refused]]:
    """The recordings in ``paths``: files as given (a missing or unreadable one is left for the decoder's own
    message), folders walked for ``AUDIO_SUFFIXES`` (hidden entries and links to folders skipped, names sorted),
    special files refused."""
    files: List[str] = []
    refused: List[Refused] = []
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            files.append(path)
            continue
        kind = special_kind(mode)
        if kind is not None:
            refused.append(Refused(path=path, message=f"{shown(path)} is {kind}, not an audio file",
                                   fix="pass the recording itself (copy a stream to a file first)"))
        elif stat.S_ISDIR(mode):
            found = _walk(path)
            if found:
                files.extend(found)
            else:
                refused.append(Refused(path=path, message=f"the folder {shown(path)} holds no audio files",
                                       fix="pass audio files, or a folder holding files named " +
                                       " ".join(sorted("*" + s for s in AUDIO_SUFFIXES))))
        else:
            files.append(path)
    return files, refused


def _walk(folder: str) -> List[str]:
    found: List[str] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in AUDIO_SUFFIXES:
                continue
            path = os.path.join(root, name)
            try:
                mode = os.stat(path).st_mode
            except OSError:
                continue
            if stat.S_ISREG(mode):
                found.append(path)
    return found


def _stem(path: str) -> str:
    return Path(path).stem or "audio"


def mirror(paths: Sequence[str], output_dir: Path) -> List[Path]:
    """Each input's transcript base: ``output_dir`` / its folders below the inputs' common parent / its stem
    (``day1/talk.wav`` and ``day2/talk.wav`` -> ``out/day1/talk``, ``out/day2/talk``; inputs in one folder ->
    ``out/talk``).  Inputs with no common parent (Windows drives) are not mirrored."""
    folders = [os.path.dirname(os.path.abspath(p)) for p in paths]
    try:
        common = os.path.commonpath(folders) if folders else ""
    except ValueError:
        common = ""
    bases = []
    for path, folder in zip(paths, folders):
        rel = os.path.relpath(folder, common) if common else "."
        bases.append(output_dir / rel / _stem(path) if rel != "." else output_dir / _stem(path))
    return bases


def case_insensitive(directory: Path) -> bool:
    """``directory``'s file system finds a name in another case (NTFS, APFS, FAT; Wine's drives): a file made
    there under a lower-case name is looked up upper-cased.  ``False`` when it cannot be tried."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".gpuboot-case-", dir=directory)
    except OSError:
        return False
    os.close(fd)
    try:
        head, name = os.path.split(probe)
        return os.path.exists(os.path.join(head, name.upper()))
    finally:
        try:
            os.unlink(probe)
        except OSError:
            pass


def first_clash(inputs: Sequence[Input], *, insensitive: bool) -> Optional[Tuple[Input, Input]]:
    """Two inputs whose transcripts would overwrite each other (one base; compared case-insensitively on such
    a file system), or ``None``."""
    seen: Dict[str, Input] = {}
    for item in inputs:
        key = os.path.normcase(os.path.abspath(item.base))
        key = key.casefold() if insensitive else key
        if key in seen:
            return seen[key], item
        seen[key] = item
    return None


def write_problem(exc: OSError, where: Path) -> GpubootError:
    """An ``OSError`` from writing under ``where`` as an error naming the real cause (``WRITE_FIXES``)."""
    meaning, fix = WRITE_FIXES.get(exc.errno or -1, (exc.strerror or str(exc), _ANY_DIR))
    return OutputDirError(f"cannot write transcripts to {shown(str(where))}: {meaning}", fix)


def check_output_dir(directories: Iterable[Path]) -> None:
    """Make ``directories`` (the output directory and the mirrored folders) and write a 64 KiB file in each,
    synced to the disk, then remove it: a read-only, full or looping path is found before hours of work.

    Raises:
        OutputDirError: the real cause and its fix (``WRITE_FIXES``).
    """
    for directory in dict.fromkeys(directories):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".gpuboot-probe-", dir=directory)
        except FileExistsError as exists:  # a name that is there but is no directory: a file, or a link loop
            cause: OSError = exists
            try:
                os.stat(directory)
            except OSError as real:
                cause = real
            raise write_problem(cause, directory) from None
        except OSError as exc:
            raise write_problem(exc, directory) from None
        try:
            try:
                os.write(fd, b"\0" * 65536)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise write_problem(exc, directory) from None
        finally:
            try:
                os.unlink(probe)
            except OSError:
                pass
