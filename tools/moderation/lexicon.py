"""The lexical layer's data: terms per category with their inflections, look-alike words and
their benign senses, and the minors line, read from ``policies/blocklist.yaml`` and compiled
once into regular expressions (see :mod:`brandloop.tools.moderation.lexical` for matching).

An entry is a word or phrase. Its last word also matches its plural; a word marked ``*`` is a
verb and matches its inflections ("undress*": undresses, undressed, undressing, undresser;
"sexualize*": also the -ise spellings); a word written ``a|b|c`` matches any of them
("took|taken off her|his clothes"). Verbs are marked one by one because blind suffixing
turns slurs into ordinary words.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from brandloop.errors import BadInputError
from brandloop.once import once
from brandloop.tools.moderation.categories import BRAND_FORBIDDEN, SEXUAL_MINORS
from brandloop.tools.moderation.normalize import fold_leetspeak, normalize_for_matching

#: Round 11: the vowel signs and other marks of Devanagari and Thai are letters of their
#: word ("नंगी", "เปลือย"), though Python's ``\w`` does not count them: without this an
#: entry would be cut at each sign and "नंगी" would also match "नाग" (a snake).
_MARKS: Final = "\u0900-\u0963\u0966-\u097f\u0e01-\u0e4e"
_WORD: Final = re.compile(rf"(?:[^\W_]|[{_MARKS}])+")
_VOWELS: Final = frozenset("aeiou")
#: Round 11: scripts written without spaces between words (Chinese, Japanese kana, Thai): an
#: entry's edge in one of them matches inside a run ("一个裸体女人"), where a word boundary
#: never falls. Korean puts spaces between words but writes its particles onto them
#: ("알몸으로"): an entry ending in Hangul matches before more Hangul, and still starts a word
#: ("성기" is not found in "완성기"). Other scripts keep their word boundaries.
_UNSPACED: Final = re.compile("[\u0e01-\u0e4e\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SUFFIXED: Final = re.compile(f"{_UNSPACED.pattern[:-1]}\uac00-\ud7af]")
#: Round 11: Greek capitals fold by their shape ("Ν" to n, "ν" to v; see ``normalize``), so a
#: Greek entry is also compiled as it is folded in capitals and with a capital first letter
#: ("ΓΥΜΝΗ", "Γυμνή" as well as "γυμνή").
_GREEK: Final = re.compile("[\u0370-\u03ff\u1f00-\u1fff]")


# --------------------------------------------------------------------------- morphology


def _spellings(form: str) -> set[str]:
    """British and American -ise/-ize spellings of one form ("sexualised", "sexualized")."""
    out = {form}
    for ize, ise in (("iz", "is"), ("yz", "ys")):
        for suffix in ("e", "es", "ed", "ing", "ation", "ations", "er", "ers"):
            if form.endswith(ize + suffix):
                out.add(form[: -len(ize + suffix)] + ise + suffix)
            if form.endswith(ise + suffix):
                out.add(form[: -len(ise + suffix)] + ize + suffix)
    return out


def plural_forms(word: str) -> set[str]:
    """``word`` and its plural spellings: -s, -es, and -ies for a consonant + y."""
    forms = {word, word + "s", word + "es"}
    if len(word) > 2 and word.endswith("y") and word[-2] not in _VOWELS:
        forms.add(word[:-1] + "ies")
    return forms


def verb_forms(word: str) -> set[str]:
    """``word`` as a verb: third person, past, participle and the -er noun.

    Regular English rules: "e" dropped before -ing ("seduce" → "seducing"), consonant + y
    becomes -ied/-ies ("bury" → "buried"), a short consonant-vowel-consonant word doubles its
    last letter ("stab" → "stabbed", "stabbing", "stabber"), -ise and -ize both spelt.
    """
    forms = {word}
    if word.endswith("e"):
        stem = word[:-1]
        forms |= {word + "s", word + "d", stem + "ing", word + "r", word + "rs"}
    elif len(word) > 2 and word.endswith("y") and word[-2] not in _VOWELS:
        stem = word[:-1]
        forms |= {stem + "ies", stem + "ied", word + "ing", stem + "ier", stem + "iers"}
    else:
        forms |= {word + "es" if word.endswith(("s", "x", "z", "ch", "sh")) else word + "s"}
        short = (
            len(word) <= 5
            and len(word) >= 3
            and word[-1] not in _VOWELS | {"w", "x", "y"}
            and word[-2] in _VOWELS
            and word[-3] not in _VOWELS
        )
        stem = word + word[-1] if short else word
        forms |= {stem + "ed", stem + "ing", stem + "er", stem + "ers"}
    return {spelling for form in forms for spelling in _spellings(form)}


# --------------------------------------------------------------------------- compiled terms


@dataclass(frozen=True)
class Term:
    """One entry compiled for each matching pass: plain, leet (1 → i) and leet (1 → l).

    ``needles`` is a prefix every match must contain in that pass: a substring test on it
    skips the regex for the (nearly all) terms that cannot match. ``digits``: the entry
    itself holds a digit ("u14", "m16", "17s"), so a leet-pass match must hold one too;
    otherwise the folded entry is a plain word ("17s" folds to "its", "m16" to "mi6").
    """

    term: str
    category: str
    #: the regex source of each pass, compiled on first use (round 11: the lexicon holds
    #: ~1,350 terms; compiling every pattern at load took 2.5 s, while a brief's needles
    #: reach only a handful of them)
    sources: tuple[str, str, str]
    needles: tuple[str, str, str]
    digits: bool = False

    @property
    def patterns(self) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
        return (_regex(self.sources[0]), _regex(self.sources[1]), _regex(self.sources[2]))

    def pattern(self, index: int) -> re.Pattern[str]:
        """The compiled pattern of one pass (0 plain, 1 and 2 leet)."""
        return _regex(self.sources[index])


#: bounded: brands' forbidden terms are compiled too, and a service runs for weeks
@functools.lru_cache(maxsize=16384)
def _regex(source: str) -> re.Pattern[str]:
    return re.compile(source)


def _normal_forms(raw: str) -> list[str]:
    """``raw`` normalised; a Greek word also as its capitals and its capitalised form fold."""
    normal = normalize_for_matching(raw)
    if not _GREEK.search(raw):
        return [normal]
    # Greek capitals are written without accents ("ΓΥΜΝΗ" for "γυμνή")
    bare = "".join(ch for ch in unicodedata.normalize("NFD", raw) if not unicodedata.combining(ch))
    variants = (bare.upper(), raw[:1].upper() + raw[1:])
    return list(dict.fromkeys([normal, *(normalize_for_matching(v) for v in variants)]))


def _word_forms(entry: str, *, plural: bool) -> list[set[str]] | None:
    """The forms each word of ``entry`` may take; ``None`` when nothing matchable is left."""
    words = entry.split()
    groups: list[set[str]] = []
    for index, raw in enumerate(words):
        if "|" in raw or _GREEK.search(raw):
            # alternatives for one word: "take|took|taken off her|his clothes"
            options = {
                "".join(_WORD.findall(normal))
                for option in raw.split("|")
                for normal in _normal_forms(option)
            }
            options.discard("")
            if options:
                groups.append(options)
            continue
        verb = raw.endswith("*")
        normal = normalize_for_matching(raw.rstrip("*"))
        parts = _WORD.findall(normal)
        if not parts:
            continue
        # a hyphenated word is several parts: only its last part inflects
        head, last = parts[:-1], parts[-1]
        for part in head:
            groups.append({part})
        if verb:
            groups.append(verb_forms(last))
        elif plural and index == len(words) - 1:
            groups.append(plural_forms(last))
        else:
            groups.append({last})
    return groups or None


def _common_prefix(words: set[str]) -> str:
    first, last = min(words), max(words)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


def _pattern(groups: Sequence[set[str]]) -> tuple[str, str]:
    alternations = [
        "(?:" + "|".join(re.escape(f) for f in sorted(group, key=len, reverse=True)) + ")"
        for group in groups
    ]
    body = r"[\W_]*".join(alternations)
    # a word character before or after is no boundary; nor is a mark of Devanagari or Thai
    left = "" if any(_UNSPACED.match(f) for f in groups[0]) else rf"(?<![^\W_])(?<![{_MARKS}])"
    last = groups[-1]
    right = "" if any(_SUFFIXED.match(f[-1:]) for f in last) else rf"(?![^\W_]|[{_MARKS}])"
    # every match holds a form of each word: the longest prefix shared by one word's forms is
    # the needle (round 11: not only the first word's, often "" when it has alternatives)
    needle = max((_common_prefix(group) for group in groups), key=len)
    return rf"{left}{body}{right}", needle


def compile_term(entry: str, category: str, *, plural: bool = True) -> Term | None:
    """Word-bounded patterns for ``entry``; ``None`` when nothing matchable is left of it."""
    groups = _word_forms(entry, plural=plural)
    if groups is None:
        return None
    compiled = []
    for fold in (
        lambda s: s,
        fold_leetspeak,
        lambda s: fold_leetspeak(s, alternate=True),
    ):
        compiled.append(_pattern([{fold(f) for f in group} for group in groups]))
    return Term(
        term=entry.replace("*", ""),
        category=category,
        sources=(compiled[0][0], compiled[1][0], compiled[2][0]),
        needles=(compiled[0][1], compiled[1][1], compiled[2][1]),
        digits=any(ch.isdigit() for group in groups for form in group for ch in form),
    )


def compile_terms(
    entries: Iterable[str], category: str, *, plural: bool = True
) -> tuple[Term, ...]:
    compiled = (compile_term(entry, category, plural=plural) for entry in entries)
    return tuple(term for term in compiled if term is not None)


@functools.lru_cache(maxsize=256)
def brand_terms(terms: tuple[str, ...]) -> tuple[Term, ...]:
    """A brand's forbidden terms, compiled once per distinct list."""
    return compile_terms([t for t in terms if t.strip()], BRAND_FORBIDDEN)


# --------------------------------------------------------------------------- the file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _SenseFile(_Strict):
    after: list[str] = Field(default_factory=list)
    before: list[str] = Field(default_factory=list)
    before_any: list[str] = Field(default_factory=list)
    near: list[str] = Field(default_factory=list)
    #: words that take the sense away anywhere in the sentence ("lovers" with a cocktail name)
    not_near: list[str] = Field(default_factory=list)
    #: round 10: a number may stand between the look-alike and a word after it (shade codes:
    #: "Nude 20, Espresso 40"); never for the minors line, which reads the default senses
    numbers: bool = False
    #: session 16: the ``after`` and ``before_any`` words must touch the look-alike, with
    #: nothing but spaces or quotes between ("pelle nuda", not "nuda, pelle" or "pelle-nuda"),
    #: and its ``not_near`` words are read in the whole text, not only the sentence
    adjacent: bool = False


class _AmbiguousWord(_Strict):
    category: str | None
    plural: bool = False
    senses: dict[str, _SenseFile] = Field(min_length=1)


class _AmbiguousFile(_Strict):
    bridge: list[str] = Field(default_factory=list)
    #: session 14: beside a minor, the classifier's sexual score (look-alike word left in)
    #: at or above which a look-alike's benign sense does not clear the minors line
    minors_guard_threshold: float = Field(default=0.75, gt=0.0, le=1.0, strict=True)
    #: session 14: the same score at or above which a sexual look-alike's benign sense that
    #: reads past a comma or a number does not hold ("Emma Watson nude, lipstick swatch")
    weak_sense_guard_threshold: float = Field(default=0.95, gt=0.0, le=1.0, strict=True)
    words: dict[str, _AmbiguousWord] = Field(default_factory=dict)


class _MinorsFile(_Strict):
    window_chars: int = Field(default=100, ge=0, le=1000)
    terms: list[str] = Field(default_factory=list)
    minor_terms: list[str] = Field(default_factory=list)
    not_a_minor: list[str] = Field(default_factory=list)
    suggestive_terms: list[str] = Field(default_factory=list)
    suggestive_clothing: list[str] = Field(default_factory=list)
    child_cues: list[str] = Field(default_factory=list)
    aged_things: list[str] = Field(default_factory=list)
    # version-1 files name them so
    sexualising_terms: list[str] = Field(default_factory=list)


class _LexiconFile(_Strict):
    version: int = 2
    allow: list[str] = Field(default_factory=list)
    support: list[str] = Field(default_factory=list)
    categories: dict[str, list[str]]
    ambiguous: _AmbiguousFile = Field(default_factory=_AmbiguousFile)
    minors: _MinorsFile = Field(default_factory=_MinorsFile)


@dataclass(frozen=True)
class Sense:
    """A benign sense of a look-alike word: "nude:colour" before "lipstick".

    ``before`` words give the sense only when nothing but bridge words follows the look-alike
    in its clause ("available in nude"); ``before_any`` words give it whatever follows
    ("a glue gun for crafts"); ``near`` words (round 10) give it anywhere in the same sentence
    ("Cocktail menu: Sex on the Beach, Zombie"). With ``numbers`` a number may stand between
    the look-alike and an ``after`` word ("Nude 20, Espresso 40"), except for the minors line.
    A ``not_near`` word anywhere in the sentence takes the sense away, whatever else applies
    ("sex on the beach, two lovers at sunset, cocktail glasses in the sand"). An ``adjacent``
    sense (session 16) reads only the word right after or right before, with nothing but
    spaces or quotes between ("Tarta desnuda", not "desnuda, tarta en la mano"), and its
    ``not_near`` words anywhere in the text take it away.
    """

    name: str
    after: frozenset[str]
    before: frozenset[str]
    before_any: frozenset[str] = frozenset()
    near: frozenset[str] = frozenset()
    numbers: bool = False
    not_near: frozenset[str] = frozenset()
    adjacent: bool = False


@dataclass(frozen=True)
class Ambiguous:
    """A look-alike word, blocked in ``category`` unless one of its senses applies.

    With no category it never blocks: its senses only decide what the semantic layer reads
    ("glue gun" is read as "glue", "ice-cold coke" as "ice-cold").
    """

    term: Term
    senses: tuple[Sense, ...]
    blocks: bool = True


@dataclass(frozen=True)
class Lexicon:
    """Everything the lexical layer matches, compiled."""

    terms: tuple[Term, ...]
    allow: tuple[Term, ...]
    ambiguous: tuple[Ambiguous, ...]
    bridge: frozenset[str]
    minor_content: tuple[Term, ...]
    minor_terms: tuple[Term, ...]
    not_a_minor: tuple[Term, ...]
    suggestive_terms: tuple[Term, ...]
    aged_things: frozenset[str]
    minors_window: int
    #: Things that mark a child without naming one ("pigtails and a lunchbox"): with sexual
    #: content they are ``sexual/minors``; alone, or with a merely suggestive word, nothing.
    child_cues: tuple[Term, ...] = ()
    #: The suggestive terms that say intent ("sultry", "seductive pose"), not the clothing ones
    #: ("lingerie", "thong"): the semantic layer's support for a sexual score below its
    #: "alone" threshold. ``suggestive_terms`` holds both, for the minors line. Since round 10
    #: also the file's ``support`` phrases ("the towel drops", "nothing covering her"): support
    #: for the sexual head only, never paired with a minor by the lexical line (their ordinary
    #: senses are too common for that: "the price drops on kids' towels").
    support_terms: tuple[Term, ...] = ()
    #: Round 9: the words of the listed terms, look-alikes and suggestive terms by length,
    #: blocking categories first, so a word with letters masked ("s*x", "p**n") is read as
    #: the listed word it can be (see ``lexical.unmask_words``).
    vocabulary: dict[int, tuple[str, ...]] = field(default_factory=dict, hash=False, compare=False)
    #: session 14: beside a minor, a sexual look-alike's benign senses clear the minors line
    #: only below this classifier sexual score, read with the word left in
    minors_guard_threshold: float = 0.75
    #: session 14: a sexual look-alike's benign sense that reads past a comma or a number
    #: holds only below this classifier sexual score, read with the word left in
    weak_sense_guard_threshold: float = 0.95

    @property
    def sense_names(self) -> frozenset[str]:
        return frozenset(sense.name for word in self.ambiguous for sense in word.senses)


def _words(items: Iterable[str]) -> frozenset[str]:
    return frozenset(normalize_for_matching(item) for item in items)


def load_lexicon(path: Path | None = None) -> Lexicon:
    """Read and compile a lexicon YAML file (the packaged ``policies/blocklist.yaml`` if None).

    Raises :class:`BadInputError` naming the file when it is unreadable or malformed.
    """
    from brandloop.tools.moderation.policy import load_policy_file  # policy reads senses here

    source = str(path) if path is not None else "policies/blocklist.yaml"
    data = load_policy_file(_LexiconFile, path, packaged="blocklist.yaml", what="blocklist")
    ambiguous = []
    for word, spec in data.ambiguous.words.items():
        term = compile_term(word, spec.category or "none", plural=spec.plural)
        if term is None:
            raise BadInputError(f"blocklist {source}: look-alike {word!r} has no letters")
        senses = tuple(
            Sense(
                name=f"{word}:{name}",
                after=_words(s.after),
                before=_words(s.before),
                before_any=_words(s.before_any),
                near=_words(s.near),
                numbers=s.numbers,
                not_near=_words(s.not_near),
                adjacent=s.adjacent,
            )
            for name, s in spec.senses.items()
        )
        ambiguous.append(Ambiguous(term=term, senses=senses, blocks=spec.category is not None))
    minors = data.minors
    vocabulary = _vocabulary(
        [
            *(e for entries in data.categories.values() for e in entries),
            *data.ambiguous.words,
            *minors.terms,
            *minors.suggestive_terms,
            *minors.sexualising_terms,
            *minors.suggestive_clothing,
        ]
    )
    intent = compile_terms([*minors.suggestive_terms, *minors.sexualising_terms], "suggestive")
    return Lexicon(
        terms=tuple(
            term
            for category, entries in data.categories.items()
            for term in compile_terms(
                entries, SEXUAL_MINORS if category in {"minors", SEXUAL_MINORS} else category
            )
        ),
        allow=compile_terms(data.allow, "allow", plural=False),
        ambiguous=tuple(ambiguous),
        bridge=_words(data.ambiguous.bridge),
        minor_content=compile_terms(minors.terms, SEXUAL_MINORS),
        minor_terms=compile_terms(minors.minor_terms, SEXUAL_MINORS),
        not_a_minor=compile_terms(minors.not_a_minor, "not_a_minor", plural=False),
        suggestive_terms=intent + compile_terms(minors.suggestive_clothing, "suggestive"),
        aged_things=_words(minors.aged_things),
        minors_window=minors.window_chars,
        child_cues=compile_terms(minors.child_cues, SEXUAL_MINORS),
        support_terms=intent + compile_terms(data.support, "support"),
        vocabulary=vocabulary,
        minors_guard_threshold=data.ambiguous.minors_guard_threshold,
        weak_sense_guard_threshold=data.ambiguous.weak_sense_guard_threshold,
    )


def _vocabulary(entries: Iterable[str]) -> dict[int, tuple[str, ...]]:
    """Every form of every word of ``entries`` (letters only, 3+ long), by length: the
    one-word entries first, then the words of phrases, each in the order of the entries."""
    seen: dict[str, None] = {}
    entries = list(entries)
    for single in (True, False):
        for entry in entries:
            if (len(entry.split()) == 1) != single:
                continue
            for group in _word_forms(entry, plural=True) or []:
                for form in sorted(group):
                    if len(form) >= 3 and form.isalpha():
                        seen.setdefault(form)
    by_length: dict[int, list[str]] = {}
    for form in seen:
        by_length.setdefault(len(form), []).append(form)
    return {length: tuple(forms) for length, forms in by_length.items()}


@once
def default_lexicon() -> Lexicon:
    """The packaged lexicon, compiled once per process."""
    return load_lexicon()
