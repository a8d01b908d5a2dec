"""Fold text to a canonical form before blocklist matching, so disguised words still match.

Used only for *matching*: the brief itself is never rewritten. Folding is lossy on purpose
(Cyrillic "р" and Latin "p" become the same letter), which is why it must not leak into prompts.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

#: Zero-width characters and bidirectional controls: invisible, and used to split or reorder
#: a word so it no longer matches (U+200B..U+200F, U+2060, U+FEFF, U+202A..U+202E,
#: U+2066..U+2069), plus the soft hyphen and the Mongolian vowel separator, invisible too.
_INVISIBLE: Final = re.compile("[\u00ad\u180e\u200b-\u200f\u2060\ufeff\u202a-\u202e\u2066-\u2069]")

#: Cyrillic, Greek and other letters that render like Latin ones. Applied before case folding
#: so that capitals map by their own shape (Greek "Ν" looks like N, its lower case "ν" like v).
_HOMOGLYPHS: Final = str.maketrans(
    {
        # Cyrillic capitals
        "А": "A", "В": "B", "Е": "E", "Ѕ": "S", "І": "I", "Ј": "J", "К": "K", "М": "M",
        "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ү": "Y",
        "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W",
        # Cyrillic small letters
        "а": "a", "в": "b", "е": "e", "ѕ": "s", "і": "i", "ј": "j", "к": "k", "м": "m",
        "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ү": "y",
        "ԁ": "d", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "ь": "b", "ё": "e", "ї": "i",
        "г": "r", "п": "n", "ш": "w",
        # Greek capitals
        "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
        "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
        # Greek small letters
        "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
        "υ": "u", "χ": "x", "ϲ": "c", "ϳ": "j",
        # Armenian and Latin look-alikes NFKC leaves alone
        "օ": "o", "ս": "u", "ց": "g", "հ": "h", "ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g",
        "ɩ": "i", "ʋ": "u",
    }
)  # fmt: skip

#: Digits and symbols standing in for letters. Only for a second matching pass: folding "1"
#: to "i" everywhere would turn prices and dates into words.
_LEET: Final = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
#: The other common reading: "1" and "|" for l, "!" for i, "+" for t ("ki11", "k!ll").
_LEET_ALTERNATE: Final = str.maketrans(
    {
        "0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s",
        "|": "l", "!": "i", "+": "t",
    }
)  # fmt: skip


_RLO: Final = "\u202e"
_RLO_END: Final = re.compile("[\u202c\n]")


def displayed_order(text: str) -> str:
    """``text`` with each right-to-left override run reversed, i.e. roughly as it is *shown*.

    "\u202eedun" displays as "nude": matching the logical order alone would miss what a
    reviewer (or anything that renders the text) sees. A run ends at U+202C or a line break.
    """
    if _RLO not in text:
        return text
    out: list[str] = []
    rest = text
    while _RLO in rest:
        before, _, after = rest.partition(_RLO)
        out.append(before)
        end = _RLO_END.search(after)
        stop = end.start() if end else len(after)
        out.append(after[:stop][::-1])
        rest = after[stop:]
    out.append(rest)
    return "".join(out)


def normalize_for_matching(text: str, *, leet: bool = False) -> str:
    """Canonical form of ``text`` for blocklist matching.

    NFKC (full-width and stylised letters become plain ones), invisible and bidi characters
    removed, homoglyphs folded to Latin, case folded, accents dropped ("kíll" → "kill").
    With ``leet=True`` common digit/symbol substitutions are folded as well; the result has
    the same length as the ``leet=False`` form, character for character, so a match found in
    one can be located in the other.
    """
    folded = unicodedata.normalize("NFKC", text)
    folded = _INVISIBLE.sub("", folded)
    # Translate before case folding (capitals by their own shape), and again after it for
    # capitals outside the table whose lower case is in it.
    folded = folded.translate(_HOMOGLYPHS).casefold().translate(_HOMOGLYPHS)
    decomposed = unicodedata.normalize("NFD", folded)
    folded = unicodedata.normalize(
        "NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    )
    return fold_leetspeak(folded) if leet else folded


def fold_leetspeak(text: str, *, alternate: bool = False) -> str:
    """Fold leetspeak digits and symbols to letters, one character for one character.

    ``alternate=True`` reads "1" and "|" as l and "!" as i, for a third pass that catches
    "ki11" as well as "k1ll".
    """
    return text.translate(_LEET_ALTERNATE if alternate else _LEET)
