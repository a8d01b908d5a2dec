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


#: Separators inside a word: "nu-de", "nu*de", "p_orn" (between two letters).
_INNER_SEPARATORS: Final = re.compile(r"(?<=[^\W\d_])[.\-_*·•|/\\~+'’`^=:]+(?=[^\W\d_])")
#: Three or more single letters or digits with the same separator between them:
#: "n u d e", "n.u.d.e", "n-u-d-e", "n * u * d * e".
_SPACED_LETTERS: Final = re.compile(
    r"(?<![^\W_])[^\W_](?P<sep>\s*[.\-_*·•|/\\~+'’`^=:,]\s*|\s+)[^\W_]"
    r"(?:(?P=sep)[^\W_])+(?![^\W_])"
)


def joined_views(normalised: str) -> list[tuple[str, list[int]]]:
    """``normalised`` with separators inside words taken out, and where each kept character is.

    "n.u.d.e" and "n u d e" (three or more single characters apart) become "nude"; "nu-de"
    and "nu*de" (separators between letters) become "nude". Each view comes with, for every
    character of it, its index in ``normalised``, so a match in it is reported as a span of
    the normalised text. These views are matched *in addition* to the normalised text:
    "t-shirt" joined is "tshirt", which no listed term matches. When a run of spaced letters
    starts with "a" or "i" ("a n u d e model") a second view keeps that word apart.
    Empty when there is nothing to join.
    """
    views = []
    for keep_article in (False, True):
        drop = bytearray(len(normalised))
        kept_article = False
        for match in _SPACED_LETTERS.finditer(normalised):
            first = match.start()
            skip_first = keep_article and normalised[first] in "ai" and match.group("sep").isspace()
            kept_article = kept_article or skip_first
            stop_keeping = normalised.index(match.group("sep"), first) + len(match.group("sep"))
            for index in range(first, match.end()):
                if skip_first and index < stop_keeping:
                    continue
                if not normalised[index].isalnum():
                    drop[index] = 1
        for match in _INNER_SEPARATORS.finditer(normalised):
            for index in range(match.start(), match.end()):
                drop[index] = 1
        if not any(drop) or (keep_article and not kept_article):
            continue
        kept = [index for index in range(len(normalised)) if not drop[index]]
        views.append(("".join(normalised[index] for index in kept), kept))
    return views
