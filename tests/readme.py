"""The README's example outputs, held against what the code prints now.

A block that follows ``<!-- output: NAME -->`` is an example of NAME's output:
``assert_exact`` compares it whole, ``assert_excerpt`` line by line in order
(the README may leave lines out; ``...`` inside a line stands for any text).
Paths that differ per machine are written as placeholders (``<venv>``,
``<driver>``).  With ``GPUBOOT_UPDATE_README=1`` an exact block is rewritten
from the output instead (then review the diff).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Optional

README = Path(__file__).resolve().parent.parent / "README.md"


def _span(name: str, text: str) -> tuple:
    marker = f"<!-- output: {name} -->\n"
    start = text.index(marker) + len(marker)
    assert text.startswith("```", start), f"the marker {name!r} is not followed by a code block"
    body = text.index("\n", start) + 1
    end = text.index("\n```", body)
    return body, end


def block(name: str) -> str:
    """The example block named ``name``."""
    text = README.read_text()
    body, end = _span(name, text)
    return text[body:end]


def _normalise(actual: str, placeholders: Optional[Dict[str, str]]) -> str:
    """``actual`` with each value replaced by its placeholder, the longest value first."""
    for placeholder, value in sorted((placeholders or {}).items(), key=lambda kv: -len(kv[1])):
        actual = actual.replace(value, placeholder)
    return actual


def _matches(pattern: str, line: str) -> bool:
    if "..." not in pattern:
        return pattern == line
    regex = ".*".join(re.escape(part) for part in pattern.split("..."))
    return re.fullmatch(regex, line) is not None


def assert_excerpt(name: str, actual: str, placeholders: Optional[Dict[str, str]] = None) -> None:
    """Every line of the README's block ``name`` is a line of ``actual``, in order."""
    assert_excerpt_text(block(name), actual, placeholders, name)


def assert_excerpt_text(expected: str, actual: str, placeholders: Optional[Dict[str, str]] = None,
                        name: str = "") -> None:
    """Every line of ``expected`` (a part of a README block) is a line of ``actual``, in order."""
    lines: List[str] = _normalise(actual, placeholders).splitlines()
    at = 0
    for want in expected.splitlines():
        while at < len(lines) and not _matches(want, lines[at]):
            at += 1
        assert at < len(lines), f"README example {name!r}: {want!r} is not in the output:\n" + "\n".join(lines)
        at += 1


def assert_exact(name: str, actual: str, placeholders: Optional[Dict[str, str]] = None) -> None:
    """The README's block ``name`` is ``actual`` (placeholders put in)."""
    got = _normalise(actual, placeholders).rstrip("\n")
    if os.environ.get("GPUBOOT_UPDATE_README") == "1":
        text = README.read_text()
        body, end = _span(name, text)
        README.write_text(text[:body] + got + text[end:])
    assert block(name) == got, f"README example {name!r} differs from the output (GPUBOOT_UPDATE_README=1 updates)"
