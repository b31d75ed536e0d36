"""Record the file list of a real wheel on PyPI, and with ``--metadata`` its ``METADATA``, without downloading it
whole.

Reads only the zip central directory (and the one compressed ``METADATA`` member) through HTTP range requests
(with ``--metadata`` the list keeps the ``.dist-info`` files, the packages' ``__init__.py`` and the shared
objects: a consumer's wheel), so a 700 MB cuDNN wheel costs a few hundred kilobytes.  A project whose CUDA
builds PyPI has only as a source distribution (``.tar.gz``) gets that distribution's ``PKG-INFO`` instead, read
off the head of the archive.  Used to refresh the fixtures in ``tests/data/wheels/`` and
``tests/data/consumers/``; not part of the installed package.

Usage: python tools/wheel_filelist.py [--metadata] PROJECT VERSION PLATFORM_TAG OUT_DIR
       (PLATFORM_TAG is a substring of the file name, e.g. ``win_amd64``, ``manylinux_2_27_x86_64``, or
       ``tar.gz`` for a source distribution)
"""

from __future__ import annotations

import io
import json
import re
import struct
import sys
import tarfile
import urllib.request
import zlib
from pathlib import Path


def _get(url: str, headers: dict[str, str] | None = None) -> bytes:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return bytes(resp.read())


def find(project: str, version: str, platform_tag: str) -> dict[str, object]:
    """The index's entry (``filename``, ``url``, ``hashes``) of ``project==version``'s file for ``platform_tag``."""
    page = json.loads(_get(f"https://pypi.org/simple/{project}/",
                           {"Accept": "application/vnd.pypi.simple.v1+json"}).decode())
    norm = re.sub(r"[-_.]+", "_", project)
    for entry in page["files"]:
        name = entry["filename"]
        if (name.startswith((f"{norm}-{version}-", f"{norm}-{version}.", f"{project}-{version}."))
                and platform_tag in name):
            return dict(entry)
    raise SystemExit(f"no {project}=={version} file for {platform_tag}")


def wheel_url(project: str, version: str, platform_tag: str) -> str:
    return str(find(project, version, platform_tag)["url"])


def _central_directory(url: str) -> bytes:
    tail = _get(url, {"Range": "bytes=-65536"})
    eocd = tail.rfind(b"PK\x05\x06")
    if eocd < 0:
        raise SystemExit("no end-of-central-directory record")
    cd_size, cd_offset = struct.unpack("<II", tail[eocd + 12 : eocd + 20])
    if cd_offset == 0xFFFFFFFF:  # zip64
        loc = tail.rfind(b"PK\x06\x07")
        (eocd64_off,) = struct.unpack("<Q", tail[loc + 8 : loc + 16])
        rec = _get(url, {"Range": f"bytes={eocd64_off}-{eocd64_off + 56}"})
        cd_size, cd_offset = struct.unpack("<QQ", rec[40:56])
    return _get(url, {"Range": f"bytes={cd_offset}-{cd_offset + cd_size - 1}"})


def _entries(cd: bytes) -> list[tuple[str, int, int, int]]:
    """(name, compression, compressed size, local header offset) of each member."""
    out = []
    pos = 0
    while pos + 46 <= len(cd) and cd[pos : pos + 4] == b"PK\x01\x02":
        method = struct.unpack("<H", cd[pos + 10 : pos + 12])[0]
        csize = struct.unpack("<I", cd[pos + 20 : pos + 24])[0]
        n, m, k = struct.unpack("<HHH", cd[pos + 28 : pos + 34])
        offset = struct.unpack("<I", cd[pos + 42 : pos + 46])[0]
        out.append((cd[pos + 46 : pos + 46 + n].decode("utf-8"), method, csize, offset))
        pos += 46 + n + m + k
    return out


def remote_namelist(url: str) -> list[str]:
    return [name for name, _m, _s, _o in _entries(_central_directory(url))]


def remote_member(url: str, wanted: str) -> bytes:
    """One member of the remote zip, read by range (stored or deflated)."""
    for name, method, csize, offset in _entries(_central_directory(url)):
        if name == wanted:
            head = _get(url, {"Range": f"bytes={offset}-{offset + 29}"})
            n, m = struct.unpack("<HH", head[26:30])
            start = offset + 30 + n + m
            data = _get(url, {"Range": f"bytes={start}-{start + csize - 1}"})
            return data if method == 0 else zlib.decompress(data, -15)
    raise SystemExit(f"no {wanted} in {url}")


def sdist_pkg_info(url: str, limit: int = 4 << 20) -> bytes:
    """``PKG-INFO`` of a ``.tar.gz`` source distribution, read off the first ``limit`` bytes (it comes first)."""
    head = _get(url, {"Range": f"bytes=0-{limit - 1}"})
    raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head)
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r|") as tar:
        try:
            for member in tar:
                if member.name.count("/") == 1 and member.name.endswith("/PKG-INFO"):
                    f = tar.extractfile(member)
                    if f is not None:
                        return f.read()
        except (tarfile.ReadError, EOFError):
            pass
    raise SystemExit(f"no PKG-INFO in the first {limit} bytes of {url}")


def main() -> None:
    args = sys.argv[1:]
    metadata = args[:1] == ["--metadata"]
    project, version, tag, out = args[1:5] if metadata else args[:4]
    entry = find(project, version, tag)
    url, filename = str(entry["url"]), str(entry["filename"])
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    origin = f"{filename} sha256={dict(entry['hashes']).get('sha256', '?')} (PyPI)\n"  # type: ignore[call-overload]
    if filename.endswith(".tar.gz"):
        (dest / f"{filename}.PKG-INFO").write_bytes(sdist_pkg_info(url))
        print(dest / f"{filename}.PKG-INFO")
    else:
        names = remote_namelist(url)
        if metadata:  # a consumer's wheel: its .dist-info, its packages' __init__.py (the import names the
            # start-up hook watches) and the shared objects that carry its GPU code
            names = [n for n in names if ".dist-info/" in n or re.fullmatch(r"[^/]+/__init__\.py", n)
                     or re.search(r"\.(so|dll|pyd)(\.[\w.]*)?$", n)]
        (dest / f"{filename}.txt").write_text("\n".join(sorted(names)) + "\n")
        print(dest / f"{filename}.txt", len(names))
        if metadata:
            member = next(n for n in names if n.endswith(".dist-info/METADATA"))
            (dest / f"{filename}.METADATA").write_bytes(remote_member(url, member))
    if metadata:
        with open(dest / "ORIGINS", "a") as f:
            f.write(origin)


if __name__ == "__main__":
    main()
