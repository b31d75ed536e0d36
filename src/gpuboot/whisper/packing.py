"""The packing of ``whisper.multibatch``: recordings (``File``), their speech pieces (``Piece``) in 30 s windows
(``Window``: one recording's pieces, as faster-whisper's ``collect_chunks`` packs them), and a decoded window's
words put back on the recording's own timeline (``split``)."""

from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Tuple

from .audio import SAMPLE_RATE

__all__ = ["File", "Piece", "Window", "split"]


class File:
    """One recording in flight: its speech pieces and the segments of each window it is in."""

    def __init__(self, key: Any, duration: float, language: str, probability: float, all_probs: Any) -> None:
        self.key, self.duration = key, duration
        self.language, self.probability, self.all_probs = language, probability, all_probs
        self.pieces: List[Piece] = []
        self.done_pieces = 0  # pieces decoded, in order
        self.windows: List[Window] = []  # the windows holding its pieces, in order
        self.results: Dict[int, List[Any]] = {}  # window serial -> this file's segments there
        self.given = 0  # windows whose segments were handed out
        self.segments: List[Any] = []  # the segments handed out
        self.complete_input = False  # every piece is in a window
        self.speech = 0.0
        #: The pipeline's clock for this recording: packed speech decoded so far (the next window's offset, s) and
        #: the end of its last word (s; the word-timing fix-up after a pause).
        self.clock = [0.0, 0.0]

    @property
    def done(self) -> bool:
        return self.complete_input and len(self.results) == len(self.windows)

    def seconds_done(self) -> float:
        """Audio seconds done: up to the end of the last piece before the first one still waiting."""
        if self.done:
            return self.duration
        reached = 0.0
        for window in self.windows:
            if window.serial not in self.results:
                break
            reached = max((p.source_end for p in window.pieces if p.file is self), default=reached)
        return min(self.duration, reached)

    def newly_final(self) -> List[Any]:
        out: List[Any] = []
        while self.given < len(self.windows) and self.windows[self.given].serial in self.results:
            out.extend(self.results[self.windows[self.given].serial])
            self.given += 1
        for seg in out:
            self.segments.append(seg)
            seg.id = len(self.segments)
        return out


class Piece(NamedTuple):
    file: File
    at: float  # start in its window, s
    end: float  # end in its window, s
    source: float  # start in its file, s

    @property
    def source_end(self) -> float:
        return self.source + self.end - self.at


class Window:
    """Up to ``chunk_length`` seconds of one recording's packed speech."""

    def __init__(self, serial: int) -> None:
        self.serial = serial
        self.parts: List[Any] = []
        self.pieces: List[Piece] = []
        self.samples = 0
        self.audio: Any = None  # the packed samples, from closing to decoding
        self.features: Any = None
        self.offset = 0.0  # start on its recording's clock of packed speech, s (set when it is decoded)

    def add(self, file: File, samples: Any, start: int) -> None:
        at = self.samples / SAMPLE_RATE
        self.samples += len(samples)
        piece = Piece(file, at, self.samples / SAMPLE_RATE, start / SAMPLE_RATE)
        self.parts.append(samples)
        self.pieces.append(piece)
        file.pieces.append(piece)
        if not file.windows or file.windows[-1] is not self:
            file.windows.append(self)

    def piece_at(self, t: float) -> Piece:
        """The piece holding time ``t`` of the window (the nearest one past either end)."""
        for piece in self.pieces:
            if t < piece.end:
                return piece
        return self.pieces[-1]


def split(window: Window, output: List[Dict[str, Any]], opts: Any, tok: Any) -> Dict[File, List[Any]]:
    """One window's decoded segments as each file's segments: every word to the piece its midpoint falls in,
    moved onto that file's timeline and rounded to 10 ms as the pipeline's ``restore_speech_timestamps``
    does (never past the file's end); a file's consecutive words in a segment make one segment."""
    from faster_whisper.transcribe import Segment, Word

    out: Dict[File, List[Any]] = {}
    for seg in output:
        runs: List[Tuple[File, List[Any]]] = []
        for w in seg.get("words") or []:
            piece = window.piece_at((w["start"] + w["end"]) / 2 - window.offset)
            shift = piece.source - piece.at - window.offset
            top = piece.file.duration
            word = Word(start=min(round(max(w["start"] + shift, 0.0), 2), top),
                        end=min(round(max(w["end"] + shift, 0.0), 2), top), word=w["word"],
                        probability=w["probability"])
            if runs and runs[-1][0] is piece.file:
                runs[-1][1].append(word)
            else:
                runs.append((piece.file, [word]))
        for file, words in runs:
            text = "".join(w.word for w in words)
            out.setdefault(file, []).append(Segment(
                id=0, seek=int(words[0].start * 100), start=words[0].start, end=max(words[-1].end, words[0].start),
                text=text, tokens=[t for t in tok.encode(text)], avg_logprob=seg["avg_logprob"],
                compression_ratio=seg["compression_ratio"], no_speech_prob=seg["no_speech_prob"],
                words=words if opts.word_timestamps else None, temperature=opts.temperatures[0]))
    return out
