"""Soname alias links, only in gpuboot's own user cache directory: never in site-packages, never across ABI
majors (``libcudnn.so`` -> ``.../libcudnn.so.9`` yes; ``libcublas.so.12`` -> ``.so.11`` never)."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import sys
import threading
from pathlib import Path
from typing import Optional, Tuple

from .types import Library

__all__ = ["alias", "alias_dir", "cache_dir", "check_alias"]

_SONAME = re.compile(r"^(?P<base>.+?\.so)(?P<ver>(?:\.\d+)*)$")


def _split(name: str) -> Optional[Tuple[str, Tuple[int, ...]]]:
    m = _SONAME.match(name)
    if not m:
        return None
    ver = tuple(int(x) for x in m.group("ver").split(".") if x)
    return m.group("base"), ver


def check_alias(target_filename: str, alias_name: str) -> None:
    """Allow an alias only when it names the same ABI as the target.

    ``libcudnn.so`` or ``libcudnn.so.9`` may point at ``libcudnn.so.9.1``;
    ``libcublas.so.12`` may never point at ``libcublas.so.11`` (a different
    major is a different ABI: the loader accepts it and the program crashes or
    computes garbage later).

    Raises:
        AbiMismatchError: the alias would cross an ABI boundary.
        ValueError: either name is not a shared-object name.
    """
    target = _split(target_filename)
    wanted = _split(alias_name)
    if target is None or wanted is None or "/" in alias_name:
        raise ValueError(f"not a shared-object name: {alias_name!r} -> {target_filename!r}")
    if wanted[0] != target[0] or wanted[1] != target[1][: len(wanted[1])]:
        from ..errors import AbiMismatchError

        fix = f"install the wheel that ships {alias_name} (`gpuboot doctor` names it)"
        raise AbiMismatchError(
            f"refusing to alias {target_filename} as {alias_name}: a different major version "
            "is a different ABI, and a renamed or symlinked copy crashes or computes garbage later",
            fix)


def alias_dir(create: bool = True) -> Optional[Path]:
    """gpuboot's alias directory for this Python environment:
    ``<user cache>/gpuboot/lib-<hash of sys.prefix>``, mode 0700.

    Raises:
        CacheDirError: it exists but is owned by another user, is not a
            directory, or is writable by others.
    """
    base = cache_dir(create=create)
    if base is None:
        return None
    tag = hashlib.sha256(os.fsencode(sys.prefix)).hexdigest()[:12]
    path = base / f"lib-{tag}"
    if not path.exists():
        if not create:
            return None
        try:
            path.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise _unwritable(base, exc) from None
    _check_private(path)
    return path


def _unwritable(path: Path, exc: OSError) -> Exception:
    """``CacheDirError`` for a cache directory that refused a write (read-only, full, a read-only file system)."""
    from ..errors import CacheDirError

    why = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return CacheDirError(f"gpuboot's cache directory {path} is not writable ({why})",
                             f"chmod u+w {path}, or export GPUBOOT_CACHE_DIR=/a/directory/you/own")
    return CacheDirError(f"cannot write into gpuboot's cache directory {path} ({why})",
                         "export GPUBOOT_CACHE_DIR=/a/directory/on/a/writable/file/system")


def cache_dir(create: bool = True) -> Optional[Path]:
    """gpuboot's user cache directory (``platformdirs.user_cache_dir``),
    created with mode 0700; ``GPUBOOT_CACHE_DIR`` overrides it.

    Raises:
        CacheDirError: unusable (see ``alias_dir``).
    """
    from ..errors import CacheDirError

    override = os.environ.get("GPUBOOT_CACHE_DIR", "")
    if override:
        if not os.path.isabs(override):
            raise CacheDirError(f"GPUBOOT_CACHE_DIR must be an absolute path, not {override!r}",
                                "export GPUBOOT_CACHE_DIR=/an/absolute/path")
        path = Path(override)
    else:
        import platformdirs

        path = Path(platformdirs.user_cache_dir("gpuboot", appauthor=False))
    try:
        exists = path.exists()
    except OSError as exc:  # a name too long, a loop of links
        raise CacheDirError(f"cannot use {str(path)[:80]}... as gpuboot's cache directory: {exc.strerror or exc}",
                            "export GPUBOOT_CACHE_DIR=/a/directory/you/own") from None
    if not exists:
        if not create:
            return None
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheDirError(f"cannot create gpuboot's cache directory {path}: {exc}",
                                "export GPUBOOT_CACHE_DIR=/a/directory/you/own") from None
    _check_private(path)
    return path


def _check_private(path: Path) -> None:
    from ..errors import CacheDirError

    try:
        st = path.lstat()
    except OSError as exc:
        raise CacheDirError(f"cannot use {path}: {exc}", "export GPUBOOT_CACHE_DIR=/a/directory/you/own") from None
    fix = f"remove {path} or export GPUBOOT_CACHE_DIR=/a/directory/you/own"
    if not stat.S_ISDIR(st.st_mode):
        raise CacheDirError(f"{path} is not a directory", fix)
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise CacheDirError(f"{path} is owned by uid {st.st_uid}, not by you (uid {os.getuid()})", fix)
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheDirError(f"{path} is writable by other users (mode {stat.S_IMODE(st.st_mode):o})",
                            f"chmod 700 {path}")


def alias(library: Library, alias_name: str) -> Path:
    """Create (atomically) the link ``<alias dir>/<alias_name>`` ->
    ``library.path`` for a consumer that asks for a name no wheel ships
    (``libcudnn.so``).  Existing correct links are kept.

    Returns:
        The link's path.  Put ``subprocess_env()`` in a child's environment so
        the child's loader searches the alias directory.

    Raises:
        AbiMismatchError: ``alias_name`` is another ABI major.
        CacheDirError: the cache directory is unusable: another user's, writable by others, not a directory,
            or not writable (read-only, a full or read-only file system), with its fix.
        NotImplementedError: on Windows (DLL names cannot be aliased).
    """
    from ..base.record import expect

    expect(library, Library, "library", "from gpuboot.locate()")
    expect(alias_name, str, "alias_name", "a shared-object name such as 'libcudnn.so'")
    if library.filename.endswith(".dll"):
        raise NotImplementedError("DLL names cannot be aliased; gpuboot puts the DLL directory on PATH")
    check_alias(library.filename, alias_name)
    directory = alias_dir()
    assert directory is not None
    link = directory / alias_name
    target = str(library.path)
    try:
        if os.readlink(link) == target:
            return link
    except OSError:
        pass
    tmp = directory / f".{alias_name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        os.symlink(target, tmp)
        os.replace(tmp, link)  # rename(2) is atomic: readers see old or new, never none
    except OSError as exc:
        raise _unwritable(directory, exc) from None
    finally:
        if os.path.lexists(tmp):
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return link
