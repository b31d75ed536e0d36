"""Where a subtitle line (or a cue) may end: the line-treatment rules, with per-language word lists.

The rule (Netflix Timed Text Style Guide, General Requirements, "Line
Treatment"): break after punctuation, before conjunctions and before
prepositions; never separate an article from its noun, a subject pronoun from
its verb, an auxiliary or a negation from its verb, a first name from a last
name.  So a line must not end with an article or determiner, a preposition, a
conjunction, a subject pronoun, an auxiliary or a negation.  Those are closed
word classes (Universal Dependencies' DET, ADP, CCONJ, SCONJ, PRON, AUX, PART):
``KEEP_WITH_NEXT`` lists them for English and the languages Whisper transcribes
best (Spanish, French, German, Italian, Portuguese; Radford et al. 2022,
"Robust Speech Recognition via Large-Scale Weak Supervision", Figure 3).
A noun from its adjective is not detected (it needs a part-of-speech tagger).
"""

from __future__ import annotations

import re
from typing import Dict, FrozenSet

__all__ = ["KEEP_WITH_NEXT", "ABBREVIATIONS", "keeps_next", "is_abbreviation", "bare"]


def _words(text: str) -> FrozenSet[str]:
    return frozenset(text.split())


#: Words a line (or a cue) must not end with, by language (lower case; apostrophe forms as Whisper writes them).
KEEP_WITH_NEXT: Dict[str, FrozenSet[str]] = {
    "en": _words(
        "a an the this that these those my your his her its our their some any every each no "  # determiners
        "of in on at to for with from by about into onto over under between among through during without within "
        "before after against upon toward towards across behind beyond beside near than like "  # prepositions
        "and or but nor so yet because although though if when while whether unless until since as where "
        "which who whom whose "  # conjunctions and relatives
        "i you he she it we they i'm you're he's she's it's we're they're i've you've we've they've i'll you'll "
        "he'll she'll we'll they'll i'd you'd he'd she'd we'd they'd "  # subject pronouns
        "am is are was were be been being have has had do does did will would shall should can could may might "
        "must not never don't doesn't didn't won't wouldn't can't couldn't shouldn't isn't aren't wasn't weren't "
        "haven't hasn't hadn't"),  # auxiliaries and negation
    "es": _words(
        "el la los las un una unos unas lo al del mi tu su mis tus sus nuestro nuestra este esta estos estas ese "
        "esa esos esas de a en con por para sin sobre entre hasta desde hacia según contra y e o u pero ni que si "
        "porque cuando como donde aunque yo tú él ella nosotros nosotras vosotros ellos ellas no he has ha hemos "
        "habéis han había es son era fue está están"),
    "fr": _words(
        "le la les l' un une des du au aux mon ma mes ton ta tes son sa ses notre votre nos vos leur leurs ce cet "
        "cette ces de d' à en dans sur sous avec pour par sans chez entre vers et ou mais ni que qu' si quand "
        "comme parce lorsque je j' tu il elle on nous vous ils elles ne n' ai as a avons avez ont suis es est "
        "sommes êtes sont"),
    "de": _words(
        "der die das den dem des ein eine einen einem einer eines mein meine dein deine sein seine ihr ihre unser "
        "unsere euer dieser diese dieses von zu zum zur mit bei nach aus für über unter auf an in im am vom durch "
        "gegen ohne um und oder aber denn dass weil wenn als ob ich du er sie es wir nicht kein keine keinen hat "
        "habe haben hatte ist bin bist sind war waren wird werden kann muss will soll"),
    "it": _words(
        "il lo la i gli le un uno una mio mia tuo tua suo sua nostro questo questa di a da in con su per tra fra "
        "del della dei degli delle al alla ai nel nella e o ma né che se perché quando come io tu lui lei noi voi "
        "loro non ho hai ha abbiamo avete hanno è sono era"),
    "pt": _words(
        "o a os as um uma uns umas meu minha seu sua nosso nossa este esta esse essa de do da dos das em no na "
        "nos nas por pelo pela para com sem sobre entre até e ou mas nem que se porque quando como eu tu ele ela "
        "nós eles elas não é são foi era tem têm há"),
}

#: Abbreviations whose full stop does not end a sentence, by language (lower case, without the stop).
ABBREVIATIONS: Dict[str, FrozenSet[str]] = {
    "en": _words("mr mrs ms dr prof st jr sr mt vs e.g i.e no vol fig approx dept gen col lt sgt capt rev"),
    "es": _words("sr sra srta dr dra ud uds lic ing"),
    "fr": _words("m mme mlle dr pr st ste"),
    "de": _words("hr fr dr prof st nr bzw z.b d.h usw"),
    "it": _words("sig sig.ra dott prof ing avv"),
    "pt": _words("sr sra dr dra prof"),
}

_EDGE = re.compile(r"^[\"'“”‘’«»(\[¿¡]+|[\"'“”‘’«»)\].,;:!?…]+$")


def bare(word: str) -> str:
    """``word`` lower case without surrounding quotes, brackets and punctuation."""
    return _EDGE.sub("", _EDGE.sub("", word.strip())).lower()


def keeps_next(word: str, language: str) -> bool:
    """``word`` (as it ends a line) must stay with the word after it in ``language``: it has no punctuation after
    it and is in ``KEEP_WITH_NEXT``."""
    text = word.strip()
    if not text or text[-1] in ".,;:!?…\"'”’»)]":
        return False
    return bare(text) in KEEP_WITH_NEXT.get(language, frozenset())


def is_abbreviation(word: str, language: str) -> bool:
    """``word`` ends in a full stop that abbreviates (``Mr.``, ``e.g.``) or marks an initial (``J.``)."""
    text = word.strip().rstrip("\"'”’»)]")
    if not text.endswith("."):
        return False
    core = text[:-1].lstrip("\"'“‘«([").lower()
    if len(core) == 1 and core.isalpha():
        return True  # an initial: "J. R. Smith"
    known = ABBREVIATIONS.get(language)
    if known is None:  # language unknown: any listed language's abbreviation
        return any(core in words for words in ABBREVIATIONS.values())
    return core in known
