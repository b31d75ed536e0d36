"""The subtitle standard gpuboot follows, as values a caller can change: ``SubtitleStyle``.

Defaults are Netflix's Timed Text Style Guide (General Requirements and the
subtitle timing guidelines): at least 5/6 s and at most 7 s on screen; at
least 2 frames between cues, and a gap under 12 frames (0.5 s at 24 fps)
closed to 2 frames ("chaining"); the in-cue on the first spoken frame and the
out-cue up to 12 frames after speech ends; 2 lines; characters per line and
per second from the language's guide (``languages.LANGUAGES``: English 42 and
20 for adult programmes).
"""

from __future__ import annotations

import math
from typing import Optional

from ..base.record import Record
from .languages import Language, language

__all__ = ["SubtitleStyle", "CHILDREN_CPS"]

#: Netflix's reading speed for children's programmes (English template guide: 13; English (USA): 17).
CHILDREN_CPS = 17.0


class SubtitleStyle(Record):
    """What the cues must meet.  ``None`` takes the language's value.

    Attributes:
        language: ISO 639-1 code (``"en"``); ``None``: the transcription's, else the text's script decides.
        max_line: characters per line (``languages.width`` counts them).
        max_lines: lines per cue.
        max_cps: characters per second (reading speed).
        min_duration, max_duration: seconds on screen.
        fps: frames per second of the video the subtitles go with (gaps and extensions are frames).
        min_gap_frames: frames between two cues, at least.
        chain_frames: a gap shorter than this is closed to ``min_gap_frames`` (the cues chain).
        extend_frames: frames the out-cue may run past the end of speech (more for reading speed when the
            next cue leaves room).
        pause: seconds of silence between two words that end a cue.
        clause_pause: seconds of silence after a clause mark (a comma) that end a cue: sentences spoken with
            short pauses often come back from Whisper joined by commas.
    """

    language: Optional[str] = None
    max_line: Optional[int] = None
    max_lines: int = 2
    max_cps: Optional[float] = None
    min_duration: float = 5 / 6
    max_duration: float = 7.0
    fps: float = 24.0
    min_gap_frames: int = 2
    chain_frames: int = 12
    extend_frames: int = 12
    pause: float = 1.0
    clause_pause: float = 0.25

    def check(self) -> SubtitleStyle:
        """``self`` when every value is usable.

        Raises:
            ValueError: a value that is not finite, or out of its range (naming the option and the range).
        """
        if self.language is not None and not isinstance(self.language, str):
            raise ValueError(f"language must be an ISO 639-1 code such as 'en', not {self.language!r}")
        for name, low, high in (("max_lines", 1, 10), ("min_gap_frames", 0, 100), ("chain_frames", 0, 1000),
                                ("extend_frames", 0, 1000)):
            value = getattr(self, name)
            if not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be a whole number from {low} to {high}, not {value!r}")
        if self.max_line is not None and (not isinstance(self.max_line, int) or not 1 <= self.max_line <= 1000):
            raise ValueError(f"max_line must be a whole number from 1 to 1000, not {self.max_line!r}")
        for name, low_f, high_f in (("min_duration", 0.0, 60.0), ("max_duration", 0.1, 3600.0), ("fps", 1.0, 1000.0),
                                ("pause", 0.0, 60.0), ("clause_pause", 0.0, 60.0)):
            number = float(getattr(self, name))
            if not math.isfinite(number) or not low_f <= number <= high_f:
                raise ValueError(f"{name} must be a number from {low_f:g} to {high_f:g}, not {getattr(self, name)!r}")
        if self.max_cps is not None and (not math.isfinite(float(self.max_cps)) or not 1 <= self.max_cps <= 100):
            raise ValueError(f"max_cps must be a number from 1 to 100, not {self.max_cps!r}")
        if self.min_duration > self.max_duration:
            raise ValueError(f"min_duration ({self.min_duration:g} s) is above max_duration ({self.max_duration:g} s)")
        return self

    def lang(self, text: str = "") -> Language:
        """The language row (``language`` or the script of ``text``)."""
        return language(self.language, text)

    def line_limit(self, lang: Language) -> int:
        return self.max_line if self.max_line is not None else lang.max_line

    def cps_limit(self, lang: Language) -> float:
        return float(self.max_cps) if self.max_cps is not None else lang.max_cps

    @property
    def frame(self) -> float:
        """One frame, seconds."""
        return 1.0 / self.fps

    @property
    def min_gap(self) -> float:
        return self.min_gap_frames / self.fps

    @property
    def chain_below(self) -> float:
        return self.chain_frames / self.fps

    @property
    def extension(self) -> float:
        return self.extend_frames / self.fps
