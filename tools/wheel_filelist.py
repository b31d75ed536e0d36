"""Record the file list of a real wheel on PyPI without downloading it whole.

Reads only the zip central directory through HTTP range requests, so a 700 MB
cuDNN wheel costs a few hundred kilobytes.  Used to refresh the fixtures in
``tests/data/wheels/``; not part of the installed package.

Usage: python tools/wheel_filelist.py PROJECT VERSION PLATFORM_TAG OUT_DIR
       (PLATFORM_TAG is a substring of the wheel file name, e.g. ``win_amd64``
       or ``manylinux_2_27_x86_64``)
"""

from __future__ import annotations

import re
import struct
import sys
import urllib.request
from pathlib import Path


def _get(url: str, headers: dict[str, str] | None = None) -> bytes:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return bytes(resp.read())


def wheel_url(project: str, version: str, platform_tag: str) -> str:
    page = _get(f"https://pypi.org/simple/{project}/").decode()
    norm = re.sub(r"[-_.]+", "_", project)
    for href in re.findall(r'href="([^"#]+)', page):
        name = href.rsplit("/", 1)[-1]
        if name.startswith(f"{norm}-{version}-") and platform_tag in name and name.endswith(".whl"):
            return href
    raise SystemExit(f"no {project}=={version} wheel for {platform_tag}")


def remote_namelist(url: str) -> list[str]:
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
    cd = _get(url, {"Range": f"bytes={cd_offset}-{cd_offset + cd_size - 1}"})
    names: list[str] = []
    pos = 0
    while pos + 46 <= len(cd) and cd[pos : pos + 4] == b"PK\x01\x02":
        n, m, k = struct.unpack("<HHH", cd[pos + 28 : pos + 34])
        names.append(cd[pos + 46 : pos + 46 + n].decode("utf-8"))
        pos += 46 + n + m + k
    return names


def main() -> None:
    project, version, tag, out = sys.argv[1:5]
    url = wheel_url(project, version, tag)
    names = remote_namelist(url)
    dest = Path(out) / f"{url.rsplit('/', 1)[-1]}.txt"
    dest.write_text("\n".join(sorted(names)) + "\n")
    print(dest, len(names))


if __name__ == "__main__":
    main()
