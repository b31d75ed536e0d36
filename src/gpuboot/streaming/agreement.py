"""LocalAgreement, as pure functions over word lists.

Macháček, Dabre and Bojar (2023), "Turning Whisper into Real-Time Transcription System": each step
re-decodes the audio buffer; a word is confirmed when two consecutive hypotheses agree on it
(LocalAgreement-2: the longest common prefix of the new words of both).  A hypothesis re-decodes
words already confirmed inside the buffer, so those are dropped first (``unseen``): by time (a word
ending before the last confirmed word's end is old) and by text (the confirmed tail repeated at the
hypothesis's head, up to ``MAX_NGRAM`` words).  Words compare case- and punctuation-blind (``norm``).
"""

from __future__ import annotations

import unicodedata
from typing import Any, List, Sequence

__all__ = ["norm", "agreed", "unseen", "MAX_NGRAM", "TIME_SLACK"]

#: Longest run of already-confirmed words looked for at a hypothesis's head (whisper_streaming uses 5).
MAX_NGRAM = 5
#: Seconds a re-decoded word may end before the last confirmed word's end and still count as new
#: (word timings from cross-attention move by a frame or two between steps).
TIME_SLACK = 0.1


def norm(word: str) -> str:
    """``word`` as agreement compares it: case-folded, without punctuation or spaces (``" Friday."`` ->
    ``"friday"``); a word of punctuation only stays as it is."""
    kept = "".join(ch for ch in word if not unicodedata.category(ch).startswith(("P", "Z", "S")))
    return kept.casefold() if kept else word.strip()


def agreed(previous: Sequence[Any], current: Sequence[Any]) -> int:
    """How many leading words ``current`` shares with ``previous`` (each has a ``word`` attribute): the words
    LocalAgreement-2 confirms -- never ``current``'s last word, whose punctuation (and often its identity)
    Whisper settles only once it hears what follows ("dog" then "dog.")."""
    n = 0
    for a, b in zip(previous, current[:-1]):
        if norm(a.word) != norm(b.word):
            break
        n += 1
    return n


def unseen(hypothesis: Sequence[Any], confirmed: Sequence[Any]) -> List[Any]:
    """The words of ``hypothesis`` after the ``confirmed`` ones (both on one timeline, with ``start``, ``end``
    and ``word``): those ending before the last confirmed end (less ``TIME_SLACK``) dropped, then the
    longest run of confirmed words repeated at the head (up to ``MAX_NGRAM``) dropped."""
    if not confirmed:
        return list(hypothesis)
    last = confirmed[-1].end
    fresh = [w for w in hypothesis if w.end > last - TIME_SLACK]
    if fresh and fresh[0].start - last < 1.0:
        tail = [norm(w.word) for w in confirmed[-MAX_NGRAM:]]
        for n in range(min(len(tail), len(fresh)), 0, -1):
            if tail[-n:] == [norm(w.word) for w in fresh[:n]]:
                return fresh[n:]
    return fresh
