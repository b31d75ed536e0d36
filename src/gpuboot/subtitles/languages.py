"""What each language's subtitles allow: characters per line, reading speed, and how its script is written.

One row per language (ISO 639-1 code, as Whisper reports it).  Line lengths and
reading speeds are Netflix's Timed Text Style Guides per language (English: 42
characters, 20 characters per second for adult programmes; most European
languages 42 and 17; Simplified and Traditional Chinese 16 and 9; Korean 16 and
12; Japanese 13 full-width characters and 4 per second), as tabulated in
"Subtitle specs by language" (sublingo.cc, 2026-06-11).  Lao, Burmese and Khmer
have no Netflix guide: they take Thai's row.  A language without a row takes
``DEFAULT``.

The script facts: Chinese, Japanese, Thai, Lao, Burmese and Khmer are written
without spaces between words (a subtitle must not insert any); their sentence
and clause marks (``。！？``, ``，、；：``, Thai and Lao have none: a space ends a
phrase, Burmese ``။`` and ``၊``, Khmer ``។`` and ``៕``); Arabic and Hebrew run
right to left and are kept in logical order (a file stores logical order; the
player lays it out).
"""

from __future__ import annotations

import unicodedata
from typing import Dict, Optional

from ..base.record import Record

__all__ = ["Language", "LANGUAGES", "DEFAULT", "language", "width", "SENTENCE_MARKS", "CLAUSE_MARKS"]

#: Marks that end a sentence in any script (ASCII, CJK full width, Arabic, Devanagari, Burmese, Khmer).
SENTENCE_MARKS = ".!?…。！？؟।။។៕"
#: Marks that end a clause (ASCII, dashes, CJK full width, Arabic, Burmese).
CLAUSE_MARKS = ",;:\u2014\u2013，、；：،؛၊"


class Language(Record):
    """One language's subtitle limits and script.

    Attributes:
        code: ISO 639-1 (``"en"``).
        name: its English name.
        max_line: characters per line (``width`` counts them).
        max_cps: characters per second (reading speed, adult programmes).
        spaced: words are separated by spaces.
        rtl: written right to left.
        source: where the limits come from.
    """

    code: str
    name: str
    max_line: int = 42
    max_cps: float = 17.0
    spaced: bool = True
    rtl: bool = False
    source: str = "Netflix Timed Text Style Guides (per language)"


def _row(code: str, name: str, max_line: int = 42, max_cps: float = 17.0, spaced: bool = True,
         rtl: bool = False, source: str = "Netflix Timed Text Style Guides (per language)") -> Language:
    return Language(code=code, name=name, max_line=max_line, max_cps=max_cps, spaced=spaced, rtl=rtl, source=source)


_THAI_LIKE = "no Netflix guide: Thai's row (Netflix Thai Timed Text Style Guide)"

#: Languages by ISO 639-1 code; a new language is one row.
LANGUAGES: Dict[str, Language] = {row.code: row for row in (
    _row("en", "English", 42, 20.0, source="Netflix English (USA) Timed Text Style Guide: 42 characters, 20 per "
                                           "second for adult programmes"),
    _row("es", "Spanish"), _row("fr", "French"), _row("de", "German"), _row("it", "Italian"),
    _row("pt", "Portuguese"), _row("nl", "Dutch"), _row("ru", "Russian"), _row("pl", "Polish"),
    _row("tr", "Turkish"), _row("sv", "Swedish"), _row("id", "Indonesian"), _row("vi", "Vietnamese"),
    _row("hi", "Hindi"), _row("uk", "Ukrainian"),
    _row("ar", "Arabic", rtl=True), _row("he", "Hebrew", rtl=True), _row("fa", "Persian", rtl=True),
    _row("ur", "Urdu", rtl=True),
    _row("zh", "Chinese", 16, 9.0, spaced=False), _row("ja", "Japanese", 13, 4.0, spaced=False),
    _row("ko", "Korean", 16, 12.0),
    _row("th", "Thai", spaced=False),
    _row("lo", "Lao", spaced=False, source=_THAI_LIKE), _row("my", "Burmese", spaced=False, source=_THAI_LIKE),
    _row("km", "Khmer", spaced=False, source=_THAI_LIKE),
)}

#: A language without a row (or unknown): Netflix's most common limits.
DEFAULT = _row("", "other", source="Netflix Timed Text Style Guides: 42 characters and 17 per second, the limits most "
                                   "language guides give")

#: Scripts written without spaces, by Unicode block: a text in them is taken for that language when none is given.
_UNSPACED_RANGES = ((0x0E00, 0x0E7F, "th"), (0x0E80, 0x0EFF, "lo"), (0x1000, 0x109F, "my"), (0x1780, 0x17FF, "km"),
                    (0x3040, 0x30FF, "ja"), (0x4E00, 0x9FFF, "zh"), (0x3400, 0x4DBF, "zh"))


def language(code: Optional[str], text: str = "") -> Language:
    """The row of ``code`` (``"en"``, ``"zh-CN"`` -> zh); with no code, the script of ``text`` decides for the
    unspaced scripts (kana before Han: Japanese mixes both), else ``DEFAULT``."""
    if code:
        row = LANGUAGES.get(code.lower().replace("_", "-").split("-")[0])
        if row is not None:
            return row
        return DEFAULT
    seen = set()
    for ch in text[:400]:
        o = ord(ch)
        for lo, hi, lang in _UNSPACED_RANGES:
            if lo <= o <= hi:
                seen.add(lang)
    for lang in ("ja", "th", "lo", "my", "km", "zh"):
        if lang in seen:
            return LANGUAGES[lang]
    return DEFAULT


def width(text: str) -> int:
    """Characters a reader counts: code points, without combining marks that sit on another (Thai tone marks,
    Arabic harakat, Devanagari virama: Unicode categories Mn and Me) and without format characters (Cf: the
    zero-width joiner, directional marks).  A CJK character is one."""
    return sum(1 for ch in text if unicodedata.category(ch) not in ("Mn", "Me", "Cf"))
