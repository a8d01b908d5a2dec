"""The lexical layer and the minors line: listed terms found in every view of the normalised
text, look-alike words judged by their sense, and minor references paired with suggestive
terms.

Every text is matched in several *views*: the normalised text (see
:mod:`brandloop.tools.moderation.normalize`), the same with leetspeak folded two ways, and all
three again with separators inside words taken out ("n.u.d.e"), plus all of that for the text
as a right-to-left override displays it. Each hit is reported as a span of its base text (the
normalised text, or the normalised displayed text), never of the raw input.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Final, Literal

from brandloop.errors import present
from brandloop.tools.moderation.categories import SEXUAL, SEXUAL_MINORS
from brandloop.tools.moderation.lexicon import Ambiguous, Lexicon, Sense, Term
from brandloop.tools.moderation.normalize import (
    displayed_order,
    fold_leetspeak,
    joined_views,
    normalize_for_matching,
)
from brandloop.tools.moderation.pii import redact

Base = Literal["normalised", "displayed"]
HitLayer = Literal["lexical", "minors", "brand"]

#: A listed term right after one of these is being ruled out, not asked for: "no gore".
#: Only the word directly before counts, so "no problem, nudity is fine" is still blocked.
#: "not" is left out on purpose: "why not <term>" asks for it.
_NEGATION: Final = re.compile(
    r"\b(?:no|without|avoid|avoiding|exclude|excluding|free\s+of)[\s\-]+$"
)
_NEGATION_LOOKBACK: Final = 16
_WORD: Final = re.compile(r"[^\W_]+")
_LETTER: Final = re.compile(r"[^\W\d_]")
_DIGIT: Final = re.compile(r"[0-9]")
_CLAUSE_END: Final = re.compile(r"[,.;:!?()\[\]\n]")
_SENTENCE_END: Final = re.compile(r"[.!?;\n]")
#: what ends the words a look-alike's sense may read after it, for the minors line
_LIST_BREAK: Final = re.compile(r"[,.;!?()\[\]\n]")
_SENSE_WINDOW: Final = 6

_AGE_WORDS: Final = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    "fifteen|sixteen|seventeen"
)
_AGE_NUMBER: Final = rf"(?:1[0-7o]|0?[0-9]|{_AGE_WORDS})"
#: An age under 18: "12-year-old", "twelve year old", "9 yrs old", "12yo", "aged 9", "ages 3-8",
#: "looks about 14", "just turned 13", "her 14th birthday".
_AGE: Final = re.compile(
    rf"(?<![^\W_]){_AGE_NUMBER}[\s\-]*(?:years?|yrs?|yr)[\s\-]*(?:olds?|of\s+age|young)(?![^\W_])"
    # round 8: "aged eleven", "not yet 16", "not even 13", "canonically 12", "under the age of 16"
    rf"|(?<![^\W_])aged?[\s\-:]+(?:{_AGE_WORDS})(?![^\W_])"
    r"(?![\s\-]*(?:months?|years?|weeks?|days?)\b)"
    rf"|(?<![^\W_])(?:not\s+yet|not\s+even|canonically|canon\s+age(?:\s+is)?|officially)\s+"
    rf"(?:only\s+)?{_AGE_NUMBER}(?![0-9])(?![^\W_])"
    r"(?!\s*(?:minutes?|hours?|days?|weeks?|months?|years?(?!\s*old)|percent|%|times|stars?"
    r"|people|items|euros?|dollars?|pounds?)\b)"
    rf"|(?<![^\W_])(?:under|below)\s+the\s+age\s+of\s+(?:1[0-8]|[0-9]|{_AGE_WORDS}|eighteen)"
    r"(?![0-9])(?![^\W_])"
    rf"|(?<![^\W_]){_AGE_NUMBER}[\s\-]*(?:yo|y/o|y\.o\.?)(?![^\W_])"
    r"|(?<![^\W_])aged?s?[\s\-:]+(?:1[0-7]|[0-9])(?![0-9])(?![\s\-]*(?:months?|years?|weeks?|days?)\b)"
    # "looks about 14", "could pass for 15", "just turned 13", "her 14th birthday"
    # round 9: "look" is a verb only after a word that makes it one ("make her look 12", "to
    # look 14"): "look 7 of the lookbook" is a numbered outfit
    rf"|(?<![^\W_])(?:looks|looking|(?:to|should|would|could|might|must|can|will|her|him|them"
    rf"|me|you|they|we|i|who|that|does|do|did|doesn't|didn't|may)\s+look"
    rf"|look(?=\s+(?:about|around|like|maybe|barely)\s)|pass(?:es)?\s+for"
    rf"|(?:just|only|barely|recently|she|he|who)"
    rf"\s+turned)\s+(?:about\s+|around\s+|like\s+|maybe\s+|only\s+|barely\s+)?{_AGE_NUMBER}"
    r"(?![0-9])(?![^\W_])(?!\s*(?:minutes?|hours?|days?|weeks?|months?|years?|percent|times)\b)"
    r"|(?<![^\W_])(?:her|his|their)\s+(?:1[0-7]|[4-9])th\s+birthday"
    # round 8: "her twelfth birthday", "a 13th birthday party", "13th-birthday girl"
    r"|(?<![^\W_])(?:her|his|their)\s+(?:first|second|third|fourth|fifth|sixth|seventh|eighth"
    r"|ninth|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth)"
    r"\s+birthday"
    r"|(?<![^\W_])(?:1st|2nd|3rd|[4-9]th|1[0-7]th|first|second|third|fourth|fifth|sixth|seventh"
    r"|eighth|ninth|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth)"
    r"[\s\-]+birthday[\s\-]+(?:girl|boy|kid|child|princess|party)"
)
#: A person word with an age under 18 after a connector or between commas or brackets:
#: "a girl, maybe eleven", "a boy of 12", "son (9)", "a girl, 11, ..." (not "girls 2 for 1").
_PERSON = (
    r"(?<![^\W_])(?:girl|boy|daughter|son|niece|nephew|pupil|student|kid|child|sister|brother"
    r"|sis|bro|cousin|grandchild|granddaughter|grandson|stepdaughter|stepson"
    # round 8: a model, a character or a teen said to be a given age
    r"|model|character|teen|tween|lad|lass|toddler|gymnast|cheerleader|dancer|influencer|freshman"
    r"|girlfriend|boyfriend|actress|actor|athlete|swimmer|skater|player)s?"
)
#: What may follow a number that is not an age: "she's 12 weeks pregnant", "he is 6 foot".
_NOT_AN_AGE: Final = (
    r"(?!\s*(?:minutes?|hours?|days?|weeks?|months?|years?(?!\s*old)|percent|%|times|inch|inches"
    r"|cm|mm|m\b|kg|lbs?|pounds?|stone|feet|foot|ft|km|miles?|points?|euros?|dollars?|quid"
    r"|of\b|out\s+of|/|x\b|th\b|st\b|nd\b|rd\b))"
)
_PERSON_AGE: Final = re.compile(
    rf"{_PERSON}[\s,]+(?:maybe|about|around|roughly|just|only|aged?|of|age)[\s,]+{_AGE_NUMBER}"
    r"(?![0-9])(?![^\W_])"
    rf"|{_PERSON}\s*[,(]\s*(?:maybe|about|around|aged?\s+)?{_AGE_NUMBER}\s*(?:[,)]|$)"
    # round 7: "my sister is 13", "a girl who's twelve", "her son turned 9"
    rf"|{_PERSON}\s+(?:is|was|who\s+is|who\s+was|who['\u2019]s|turns|turned|turning|just\s+turned)"
    rf"\s+(?:only\s+|just\s+|barely\s+|about\s+|maybe\s+|now\s+)?{_AGE_NUMBER}"
    rf"(?![0-9])(?![^\W_]){_NOT_AN_AGE}"
    # "she's 13", "he is only 12" (not "she is one of ...")
    r"|(?<![^\W_])(?:she|he)(?:['\u2019]s|\s+is|\s+was)\s+"
    r"(?:only\s+|just\s+|barely\s+|now\s+|almost\s+|nearly\s+|about\s+|around\s+|not\s+even\s+)?"
    rf"(?!one\b){_AGE_NUMBER}(?![0-9])(?![^\W_]){_NOT_AN_AGE}"
)
#: Round 8: ages in Spanish, Italian, French, German, Portuguese and Dutch (ASCII after
#: folding), in digits or words, after a person word or pronoun ("nina de 10 anos", "ragazza
#: di 13 anni", "elle a 12 ans", "ella tiene doce anos"), or with the word for "old"
#: ("13 Jahre alt", "12-jarige"). "garantie de 10 ans" names no person.
_FOREIGN_AGE_WORDS: Final = (
    "uno|una|dos|tres|cuatro|cinco|seis|siete|ocho|nueve|diez|once|doce|trece|catorce|quince|"
    "dieciseis|diecisiete|due|tre|quattro|cinque|sei|sette|otto|nove|dieci|undici|dodici|"
    "tredici|quattordici|quindici|sedici|diciassette|un|une|deux|trois|quatre|cinq|six|sept|"
    "huit|neuf|dix|onze|douze|treize|quatorze|seize|dix-sept|ein|eins|zwei|drei|vier|funf|"
    "sechs|sieben|acht|neun|zehn|elf|zwolf|dreizehn|vierzehn|funfzehn|sechzehn|siebzehn|um|"
    "dois|quatro|sete|oito|dez|doze|treze|dezesseis|dezasseis|dezessete|dezassete|een|twee|"
    "drie|vijf|zes|zeven|negen|tien|twaalf|dertien|veertien|vijftien|zestien|zeventien"
)
_FOREIGN_NUMBER: Final = rf"(?:1[0-7]|0?[0-9]|{_FOREIGN_AGE_WORDS})"
_FOREIGN_YEARS: Final = r"(?:anos|anios|ans|anni|jahre|jahren|jaar)"
#: Words that make "N years" a duration or a brand's age, not a person's: "modele depuis
#: 10 ans", "10 anni di esperienza".
_NOT_A_PERSONS_AGE: Final = (
    r"(?!\s+(?:de(?!\s+edad)|di(?!\s+eta)|d'|van|von|fa|plus|despues|dopo|spater|later"
    r"|garantie|garantia|garanzia|garantie|experience|experiencia|esperienza|erfahrung|ervaring"
    r"|geleden|atras)\b)"
)
_NOT_A_DURATION: Final = (
    r"(?!(?:depuis|desde|hace|seit|sinds|pendant|durante|per|por|para|plus|mas|piu|uber|meer"
    r"|mehr|fa|dal|dai|dalle|from|for|since|over|than|en|in|im|within|tous|toutes|ogni|cada"
    r"|alle|elke)\b)"
)
_FOREIGN_PERSON: Final = (
    r"(?:nina|ninas|nino|ninos|nena|nene|chica|chicas|chico|chicos|muchacha|muchacho|hija|hijo"
    r"|hermana|hermano|hermanita|hermanito|prima|primo|sobrina|sobrino|ragazza|ragazze|ragazzo"
    r"|ragazzi|ragazzina|ragazzino|bambina|bambino|bimba|bimbo|figlia|figlio|sorella|sorellina"
    r"|fratello|fratellino|cugina|cugino|nipote|fille|filles|fillette|garcon|gamine|gamin|enfant"
    r"|fils|soeur|frere|cousine|cousin|niece|neveu|madchen|junge|jungen|kind|tochter|sohn"
    r"|schwester|bruder|nichte|neffe|meisje|jongen|dochter|zoon|zusje|broertje|menina|menino"
    r"|garota|garoto|filha|filho|irma|irmao|crianca|modelo|modella|modele"
    r"|elle|il|ella|lei|lui|sie|er|zij|hij|ela|ele)"
)
_FOREIGN_AGE: Final = re.compile(
    rf"(?<![^\W_]){_FOREIGN_PERSON}(?:\s+{_NOT_A_DURATION}[^\W\d_]+){{0,2}}?[\s,(]+"
    r"(?:(?:de|di|da|van|von|mit|a|tiene|tenia|cumple|cumplio|ha|hat|ist|heeft|is|tem|fez|con"
    r"|avec|com|met|agee|agee de|age de|di eta)\s+)?"
    rf"{_FOREIGN_NUMBER}[\s\-]*{_FOREIGN_YEARS}(?![^\W_]){_NOT_A_PERSONS_AGE}"
    rf"|(?<![^\W_])(?:tiene|cumple|cumplio|compie|tem|fez|heeft)\s+{_FOREIGN_NUMBER}\s+"
    rf"(?:anos|anni|jaar)(?![^\W_]){_NOT_A_PERSONS_AGE}"
    rf"|(?<![^\W_]){_FOREIGN_NUMBER}[\s\-]*(?:jahre\s+alt|jaar\s+oud|anos\s+de\s+edad"
    r"|anni\s+d'?eta|ans\s+d'?age|jahrige|jahrigen|jahriger|jahriges|jarige|jarigen)(?![^\W_])"
)
#: Round 8: children's clothes sizes ("size 4T", "2T-5T", "size 10-12 years", "7-8 yrs",
#: "12-18 months") and ages said in months or weeks ("a 6 month old").
_KIDS_SIZE: Final = re.compile(
    r"(?<![^\W_])(?:size|sizes|talla|taille|grosse|maat|taglia)[\s:]+(?:[1-6]t|(?:1[0-6]|[2-9])"
    r"(?:\s*[\-/]\s*(?:1[0-6]|[2-9]))?\s*(?:y|yrs?|years?|ans|anos|anni|jahre))(?![^\W_])"
    r"|(?<![^\W_])[1-6]t(?:\s*[\-/]\s*[1-6]t)?[\s\-]+(?:size|sizes|girl|girls|boy|boys|kid|kids"
    r"|model|models|toddler|toddlers|outfit|outfits|dress|dresses)(?![^\W_])"
    r"|(?<![^\W_])[1-6]t\s*[\-/]\s*[1-6]t(?![^\W_])"
    # girls' sizes 4-6X, 7X
    r"|(?<![^\W_])(?:size|sizes)[\s:]+(?:[4-7]x|4\s*[\-/]\s*6x)(?![^\W_])"
    r"|(?<![^\W_])(?:1[0-6]|[2-9])\s*[\-/]\s*(?:1[0-6]|[2-9])\s*(?:y|yrs?|years?)(?![^\W_])"
    r"(?!\s*(?:warranty|guarantee|of|experience|in\s+business))"
    r"|(?<![^\W_])(?:size|sizes|fits|for)\s+(?:[0-9]|1[0-9]|2[0-4])\s*[\-/]\s*(?:[0-9]|1[0-9]|2[0-4])"
    r"\s*(?:months?|mths?|m)(?![^\W_])"
    r"|(?<![^\W_])(?:[0-9]|1[0-9]|2[0-4]|one|two|three|four|five|six|seven|eight|nine|ten|eleven"
    r"|twelve)[\s\-]*(?:months?|weeks?)[\s\-]*olds?(?![^\W_])"
)

#: A person's birth year: "a girl born in 2014", "she was born in 2015" is a minor while the
#: year is less than 18 years ago ("our brand was born in 2021" names no person).
_BORN: Final = re.compile(
    rf"(?:{_PERSON}|(?<![^\W_])(?:she|he|who))\s+(?:(?:was|is|were)\s+)?born\s+(?:in\s+)?"
    r"((?:19|20)[0-9]{2})(?![0-9])"
)


#: Round 9: a word with letters masked by asterisks or hashes between letters ("s*x",
#: "p**n", "n#ked"); "5* hotel", "*new*" and "#tag" are no such word.
_MASKED_WORD: Final = re.compile(r"(?<![^\W_*#])[^\W\d_]+(?:[*#]{1,3}[^\W\d_]+)+(?![^\W_*#])")
_MASKS: Final = frozenset("*#")
_MASK_RUN: Final = re.compile(r"[*#]+")
_MASK_PARTS: Final = re.compile(r"[*#]+|[^*#]+")
_MASK_READINGS: Final = 6


def unmask_words(normalised: str, lexicon: Lexicon) -> list[str]:
    """``normalised`` with each masked word replaced by a listed word it can be read as
    ("s*x tape" → "sex tape", "p**n" → "porn", "n**ked" → "naked"): one text per reading
    when a masked word fits several listed words ("p***y"), at most ``_MASK_READINGS``, the
    first the likeliest. Each has the length of ``normalised`` (a shorter word is padded with
    spaces), so a match in it is a span of ``normalised``. A masked word no listed word fits is
    left as it is ("M*A*S*H", "st*pid"). Empty when there is nothing to unmask.
    """
    if "*" not in normalised and "#" not in normalised:
        return []
    readings: list[tuple[int, int, list[str]]] = []
    for match in _MASKED_WORD.finditer(normalised):
        word = match.group()
        runs = _MASK_RUN.findall(word)
        masks = sum(len(run) for run in runs)
        if masks > 3 or len(word) - masks < 2:
            continue
        # a run of masks stands for one letter or up to as many as it has ("n**ked")
        pattern = re.compile(
            "".join(
                rf"[^\W\d_]{{1,{len(part)}}}" if part[0] in _MASKS else re.escape(part)
                for part in _MASK_PARTS.findall(word)
            )
        )
        shortest = len(word) - masks + len(runs)
        found = [
            candidate.ljust(len(word))
            for length in range(len(word), shortest - 1, -1)
            for candidate in lexicon.vocabulary.get(length, ())
            if pattern.fullmatch(candidate)
        ][:_MASK_READINGS]
        if found:
            readings.append((match.start(), match.end(), found))
    texts = []
    for index in range(max((len(found) for _, _, found in readings), default=0)):
        text = normalised
        for start, end, found in readings:
            text = text[:start] + found[min(index, len(found) - 1)] + text[end:]
        texts.append(text)
    return texts


@dataclass(frozen=True)
class Hit:
    """One thing the lexical layer found; ``start``/``end`` index the ``base`` text."""

    layer: HitLayer
    category: str
    start: int
    end: int
    rule: str
    base: Base = "normalised"


@dataclass(frozen=True)
class _View:
    """One way of reading a base text. ``to_base`` maps view positions to base positions
    (``None``: the same); ``context`` is the unfolded text of the same geometry, for negation,
    senses and the rule that a leet match must contain a real letter."""

    text: str
    pass_index: int
    context: str
    to_base: tuple[int, ...] | None
    raw: str = ""
    raw_context: str = ""

    def unmasked(self) -> _View:
        """The view before allow-listed phrases were masked (for a brand's own terms)."""
        return _View(self.raw, self.pass_index, self.raw_context, self.to_base)

    def base_span(self, start: int, end: int) -> tuple[int, int]:
        if self.to_base is None:
            return start, end
        return self.to_base[start], self.to_base[end - 1] + 1 if end > start else self.to_base[
            start
        ]


@dataclass
class Reading:
    """A base text and its views, with allow-listed phrases masked."""

    base: Base
    text: str
    views: list[_View]
    sentence_ends: list[int] = field(default_factory=list)
    #: ``text`` with masked words read as listed words ("s*x" → "sex"; ``unmask_words``), the
    #: same length: what the semantic layer reads
    unmasked: str | None = None

    def sentence(self, position: int) -> int:
        return bisect.bisect_right(self.sentence_ends, position)


def _mask(text: str, terms: Sequence[Term], pass_index: int) -> str:
    for term in terms:
        if term.needles[pass_index] in text:
            text = term.pattern(pass_index).sub(lambda m: " " * len(m.group()), text)
    return text


def normalised_text(text: str) -> str:
    """What every layer reads and every span indexes: ``text`` with personal data replaced by
    ``[redacted <kind>]`` markers, then normalised. So an explanation quoting a span of it
    never quotes an e-mail address or a phone number."""
    return normalize_for_matching(redact(text).text)


def _readings(text: str, lexicon: Lexicon) -> list[Reading]:
    """The normalised text (and, under a right-to-left override, the displayed one)."""
    bases: list[tuple[Base, str]] = [("normalised", normalised_text(text))]
    shown = displayed_order(text)
    if shown != text:
        bases.append(("displayed", normalised_text(shown)))
    readings = []
    for base, normal in bases:
        views: list[_View] = []
        geometries: list[tuple[str, tuple[int, ...] | None]] = [(normal, None)]
        for joined, mapping in joined_views(normal):
            geometries.append((joined, tuple(mapping)))
        # round 9: masked letters ("s*x tape"), read as the listed word they can be
        shown_unmasked = unmask_words(normal, lexicon)
        geometries += [(text, None) for text in shown_unmasked]
        for geometry, to_base in geometries:
            context = _mask(geometry, lexicon.allow, 0)
            views.append(_View(context, 0, context, to_base, geometry, geometry))
            for index, folded in (
                (1, fold_leetspeak(geometry)),
                (2, fold_leetspeak(geometry, alternate=True)),
            ):
                if folded != geometry:
                    masked = _mask(folded, lexicon.allow, index)
                    views.append(_View(masked, index, context, to_base, folded, geometry))
        ends = [m.start() for m in _SENTENCE_END.finditer(normal)]
        readings.append(
            Reading(
                base=base,
                text=normal,
                views=views,
                sentence_ends=ends,
                unmasked=shown_unmasked[0] if shown_unmasked else None,
            )
        )
    return readings


def _matches(term: Term, view: _View, *, negation: bool = True) -> Iterator[tuple[int, int]]:
    """View spans where ``term`` occurs, unless ruled out by a negation right before it.

    A leet-pass match must contain a letter in the unfolded text, so numbers alone
    ("5318008", prices, dates) can never spell a listed word; and a digit when the term has
    one, so a plain word is never read as a folded number ("its" as "17s", "MI6" as "m16").
    """
    index = view.pass_index
    if term.needles[index] not in view.text:
        return
    for match in term.pattern(index).finditer(view.text):
        start, end = match.span()
        if index and not _LETTER.search(view.context, start, end):
            continue
        if index and term.digits and not _DIGIT.search(view.context, start, end):
            continue
        # search(text, pos, endpos) lets \b see the character before pos, unlike a slice.
        if negation and _NEGATION.search(view.context, max(0, start - _NEGATION_LOOKBACK), start):
            continue
        yield start, end


def _find(
    terms: Sequence[Term], reading: Reading, layer: HitLayer, *, negation: bool = True
) -> list[Hit]:
    hits: list[Hit] = []
    seen: set[tuple[str, int]] = set()
    for term in terms:
        for view in reading.views:
            for start, end in _matches(term, view, negation=negation):
                base_start, base_end = view.base_span(start, end)
                if (term.term, base_start) in seen:
                    continue
                seen.add((term.term, base_start))
                hits.append(
                    Hit(layer, term.category, base_start, base_end, term.term, reading.base)
                )
    return hits


# --------------------------------------------------------------------------- senses


def _touching(gap: str) -> bool:
    """Whether two words separated by ``gap`` touch: spaces and quotes only (not a hyphen:
    "haut-nackt" was a red-team way in)."""
    return len(gap) <= 4 and all(c.isspace() or c in "'\"‘’“”„«»" for c in gap)


def _sense_applies(
    sense: Sense,
    bridge: frozenset[str],
    context: str,
    start: int,
    end: int,
    *,
    numbers: bool = True,
    clause_only: bool = False,
) -> bool:
    """Whether the words around ``context[start:end]`` give the look-alike a benign sense.

    After it: within a few words, a sense word, with only bridge words (colours, finishes,
    "and") before it - "nude matte lipstick", "nude, blush and berry shades"; for a sense
    that allows it, numbers bridge too ("Nude 20, Espresso 40": shade codes) unless
    ``numbers`` is off (the minors line). Before it: a sense word right before, and nothing
    that is not a bridge word after it in its clause - "available in nude", "shade: nude,
    sand". Near it (round 10): a sense word anywhere in its sentence. A ``not_near`` word
    anywhere in the sentence rules the sense out first.
    """
    ends = [m.start() for m in _SENTENCE_END.finditer(context)]
    first = max((e + 1 for e in ends if e < start), default=0)
    last = min((e for e in ends if e >= end), default=len(context))
    sentence = [m.group() for m in _WORD.finditer(context, first, last)]
    # an adjacent sense (session 16) reads its not_near words in the whole text: "Ella es mi
    # vecina Marta; Marta piel desnuda" names the person in the sentence before
    ruled_out = _WORD.findall(context) if sense.adjacent else sentence
    if sense.not_near and any(word in sense.not_near for word in ruled_out):
        return False
    clause_end = _CLAUSE_END.search(context, end)
    limit = clause_end.start() if clause_end else len(context)
    # the minors line (``clause_only``, round 12c) reads the words after only up to the next
    # comma or stop (a colon still introduces: "sex: boy"): "nude, lipstick in hand" beside a
    # child is not a lipstick's colour
    stop = _LIST_BREAK.search(context, end) if clause_only else None
    words_after = [
        m.group() for m in _WORD.finditer(context, end, stop.start() if stop else len(context))
    ][:_SENSE_WINDOW]
    if sense.adjacent:
        following = _WORD.search(context, end)
        words_after = (
            [following.group()] if following and _touching(context[end : following.start()]) else []
        )
    for word in words_after:
        if word in sense.after:
            return True
        if word not in bridge and not (
            numbers and sense.numbers and word.isdigit() and len(word) <= 3
        ):
            break
    if sense.near and any(word in sense.near for word in sentence):
        return True
    if not (sense.before or sense.before_any):
        return False
    before_matches = list(_WORD.finditer(context, max(0, start - 24), start))
    before = [m.group() for m in before_matches]
    if before and before[-1] in sense.before_any:
        return not sense.adjacent or _touching(context[before_matches[-1].end() : start])
    if not before or before[-1] not in sense.before:
        return False
    if sense.adjacent and not _touching(context[before_matches[-1].end() : start]):
        return False
    next_word = _WORD.search(context, end)
    return next_word is None or next_word.start() >= limit or next_word.group() in bridge


@dataclass(frozen=True)
class LookAlike:
    """One occurrence of a look-alike word: the sense that made it benign, if any."""

    word: Ambiguous
    start: int
    end: int
    sense: str | None
    default_sense: str | None
    base: Base


def _look_alikes(lexicon: Lexicon, reading: Reading, senses: Mapping[str, bool]) -> list[LookAlike]:
    found: list[LookAlike] = []
    seen: set[tuple[str, int]] = set()
    for word in lexicon.ambiguous:
        for view in reading.views:
            for start, end in _matches(word.term, view):
                base_start, base_end = view.base_span(start, end)
                if (word.term.term, base_start) in seen:
                    continue
                seen.add((word.term.term, base_start))
                applying = [
                    sense.name
                    for sense in word.senses
                    if _sense_applies(sense, lexicon.bridge, view.context, start, end)
                ]
                allowed = [name for name in applying if senses.get(name, True)]
                # the minors line reads the senses without numbers as bridges ("nude 12 ...")
                strict = [
                    sense.name
                    for sense in word.senses
                    if _sense_applies(
                        sense,
                        lexicon.bridge,
                        view.context,
                        start,
                        end,
                        numbers=False,
                        clause_only=True,
                    )
                ]
                found.append(
                    LookAlike(
                        word=word,
                        start=base_start,
                        end=base_end,
                        sense=allowed[0] if allowed else None,
                        default_sense=strict[0] if strict else None,
                        base=reading.base,
                    )
                )
    return found


# --------------------------------------------------------------------------- minors


def _ages(lexicon: Lexicon, reading: Reading) -> list[Hit]:
    """Ages under 18 said in numbers or words (in English and, since round 8, in six other
    languages), children's clothes sizes, and birth years under 18 years ago. Leet views are
    read too ("n1ne y3ar 0ld"), keeping only what holds a digit the plain view did not read
    as a letter."""
    hits = []
    for view in reading.views:
        text = view.text if view.pass_index else view.context
        matches = [
            *_AGE.finditer(text),
            *_PERSON_AGE.finditer(text),
            *_FOREIGN_AGE.finditer(text),
            *_KIDS_SIZE.finditer(text),
        ]
        for match in matches:
            if view.pass_index and not _DIGIT.search(view.context, *match.span()):
                continue
            following = [m.group() for m in _WORD.finditer(text, match.end())][:2]
            if any(word in lexicon.aged_things for word in following):
                continue
            start, end = view.base_span(*match.span())
            hits.append(Hit("minors", SEXUAL_MINORS, start, end, "age under 18", reading.base))
        if view.pass_index:
            continue
        this_year = datetime.now(UTC).year
        for match in _BORN.finditer(view.context):
            if this_year - 18 < int(match.group(1)) <= this_year:
                start, end = view.base_span(*match.span())
                hits.append(
                    Hit(
                        "minors", SEXUAL_MINORS, start, end, "born under 18 years ago", reading.base
                    )
                )
    return hits


def _masked(lexicon: Lexicon, reading: Reading) -> Reading:
    """``reading`` with the phrases in which a minor word names no person masked."""
    return Reading(
        base=reading.base,
        text=reading.text,
        views=[
            _View(
                _mask(v.text, lexicon.not_a_minor, v.pass_index),
                v.pass_index,
                _mask(v.context, lexicon.not_a_minor, 0),
                v.to_base,
            )
            for v in reading.views
        ],
        sentence_ends=reading.sentence_ends,
    )


def _minor_references(lexicon: Lexicon, reading: Reading) -> list[Hit]:
    masked = _masked(lexicon, reading)
    return _find(lexicon.minor_terms, masked, "minors", negation=False) + _ages(lexicon, masked)


def _child_cues(lexicon: Lexicon, reading: Reading) -> list[Hit]:
    return _find(lexicon.child_cues, _masked(lexicon, reading), "minors", negation=False)


def _paired(
    reading: Reading, window: int, people: Sequence[Hit], terms: Sequence[Hit]
) -> Hit | None:
    """The first term in the same sentence as one of ``people``, or within ``window``."""
    for person in people:
        for term in terms:
            near = abs(term.start - person.start) <= window
            if near or reading.sentence(term.start) == reading.sentence(person.start):
                start, end = min(person.start, term.start), max(person.end, term.end)
                rule = f"'{term.rule}' with '{person.rule}'"
                return Hit("minors", SEXUAL_MINORS, start, end, rule, reading.base)
    return None


def _minors_line(
    lexicon: Lexicon, reading: Reading, sexual: Sequence[Hit], look_alikes: Sequence[LookAlike]
) -> list[Hit]:
    """A suggestive or sexual term in the same sentence as a minor reference, or near it; a
    sexual term (not a merely suggestive one) the same way with a child cue."""
    direct = _find(lexicon.minor_content, reading, "minors")
    sexual = [
        *sexual,
        *(
            Hit("minors", SEXUAL, la.start, la.end, la.word.term.term, la.base)
            for la in look_alikes
            if la.default_sense is None and la.word.blocks and la.word.term.category == SEXUAL
        ),
    ]
    window = lexicon.minors_window
    minors = _minor_references(lexicon, reading)
    if minors:
        # round 11b: a suggestive word that is a look-alike in one of its default benign
        # senses is not suggestive there ("från sex år": from six years; "child's sex: boy")
        benign = [
            (la.start, la.end)
            for la in look_alikes
            if la.default_sense is not None and la.base == reading.base
        ]
        suggestive = [
            *(
                hit
                for hit in _find(lexicon.suggestive_terms, reading, "minors")
                if not any(start <= hit.start and hit.end <= end for start, end in benign)
            ),
            *sexual,
        ]
        hit = _paired(reading, window, minors, suggestive)
        if hit is not None:
            return [*direct, hit]
    if sexual and lexicon.child_cues:
        hit = _paired(reading, window, _child_cues(lexicon, reading), sexual)
        if hit is not None:
            return [*direct, hit]
    return direct


# --------------------------------------------------------------------------- the layer


@dataclass(frozen=True)
class LexicalResult:
    """What the lexical layer found, and the normalised text with benign look-alikes,
    allow-listed phrases and negated terms removed: what the semantic layer reads, so "nude
    lipstick", "suicide prevention" and "no nudity" are never judged by one word."""

    hits: list[Hit]
    normalised: str
    resolved: str
    resolved_to_normalised: tuple[int, ...]
    look_alikes: list[LookAlike]
    minor_references: list[Hit]
    displayed: str | None = None
    #: child cues ("pigtails", "lunchbox"): with sexual content they count as a minor
    child_cues: list[Hit] = field(default_factory=list)
    #: suggestive terms that say intent ("sultry", "a seductive pose"; not the clothing ones,
    #: "lingerie"), not ruled out by a negation: not blocked on their own; the semantic layer's
    #: support for a sexual score below its "alone" threshold
    suggestive: list[Hit] = field(default_factory=list)
    #: round 10: the normalised text without the look-alike words a benign sense made benign
    #: (nothing else taken out): what the profanity model reads, so "a Labrador bitch with
    #: her litter" is not read as an insult
    without_senses: str | None = None
    #: session 14: the minors guard's check, where a minor is referenced beside a sexual
    #: look-alike in a benign sense (else None)
    minors_guard: GuardCheck | None = None
    #: session 14: the guard's check of sexual look-alikes whose benign sense reads past a
    #: comma or a number ("Emma Watson nude, lipstick swatch"), else None
    weak_sense_guard: GuardCheck | None = None


#: The guards' reader: the semantic classifier's sexual score for a text.
GuardScorer = Callable[[str], float]


@dataclass(frozen=True)
class GuardCheck:
    """A guard's reading: the classifier's best sexual score on the words around the sexual
    look-alikes it checked, the words left in; the threshold; and those look-alikes' senses,
    which held (for the minors guard: cleared the minors line) only below the threshold."""

    score: float
    threshold: float
    senses: tuple[str, ...]

    @property
    def held(self) -> bool:
        return self.score < self.threshold


def scan(
    text: str,
    lexicon: Lexicon,
    *,
    senses: Mapping[str, bool] | None = None,
    brand: Sequence[Term] = (),
    guard: GuardScorer | None = None,
) -> LexicalResult:
    """Find listed terms, look-alikes outside their senses, brand terms and the minors line.

    ``senses`` turns named senses on or off for this brand ("nude:colour": False); the
    minors line ignores it and uses every sense as the lexicon defines it. With ``guard``
    (the semantic classifier's sexual score; session 14), where the text references a minor
    a sexual look-alike's benign sense clears the minors line only if the words around it,
    read with the word left in, score below the lexicon's ``minors_guard_threshold``; and
    anywhere, a benign sense found only past a comma or a number holds only below its
    ``weak_sense_guard_threshold``. Both only ever refuse more.
    """
    senses = senses or {}
    hits: list[Hit] = []
    first: Reading | None = None
    first_look_alikes: list[LookAlike] = []
    readings = _readings(text, lexicon)
    per_reading = [(reading, _look_alikes(lexicon, reading, senses)) for reading in readings]
    minor_references = _minor_references(lexicon, readings[0])
    child_cues = _child_cues(lexicon, readings[0])
    weak_check = minors_check = None
    if guard is not None:
        weak_check = _guard_check(
            per_reading[0], guard, _weak_sexual, lexicon, lexicon.weak_sense_guard_threshold
        )
        if weak_check is not None and not weak_check.held:
            per_reading = [
                (reading, [replace(la, sense=None) if _weak_sexual(la) else la for la in las])
                for reading, las in per_reading
            ]
    if guard is not None and (minor_references or child_cues):
        minors_check = _guard_check(
            per_reading[0], guard, _benign_sexual, lexicon, lexicon.minors_guard_threshold
        )
        if minors_check is not None and not minors_check.held:
            per_reading = [
                (
                    reading,
                    [replace(la, default_sense=None) if _benign_sexual(la) else la for la in las],
                )
                for reading, las in per_reading
            ]
    for reading, look_alikes in per_reading:
        found = _find(lexicon.terms, reading, "lexical")
        # the minors line reads every listed sexual term, even inside a look-alike in a
        # benign sense ("a Slippery Nipple for a teen party"), and look-alikes by their
        # default senses
        sexual = [h for h in found if h.category == SEXUAL]
        # round 11c: otherwise a listed term inside a look-alike in a benign sense is that
        # look-alike's word ("orgasm" in a "Screaming Orgasm" on a cocktail menu)
        found = _outside(found, look_alikes)
        found += [
            Hit("lexical", la.word.term.category, la.start, la.end, la.word.term.term, la.base)
            for la in look_alikes
            if la.sense is None and la.word.blocks
        ]
        hits += found
        hits += _minors_line(lexicon, reading, sexual, look_alikes)
        if brand:
            unmasked = Reading(reading.base, reading.text, [v.unmasked() for v in reading.views])
            hits += _find(brand, unmasked, "brand", negation=False)
        if first is None:
            first, first_look_alikes = reading, look_alikes
    first = present(first, "the text's first reading")
    resolved, mapping = _resolve(
        first.unmasked or first.text, first_look_alikes, _ruled_out(lexicon, first.views[0])
    )
    return LexicalResult(
        hits=hits,
        normalised=first.text,
        resolved=resolved,
        resolved_to_normalised=mapping,
        look_alikes=first_look_alikes,
        minor_references=minor_references,
        displayed=readings[1].text if len(readings) > 1 else None,
        child_cues=child_cues,
        suggestive=_find(lexicon.support_terms, first, "minors"),
        without_senses=_resolve(first.text, first_look_alikes, ())[0],
        minors_guard=minors_check,
        weak_sense_guard=weak_check,
    )


def _benign_sexual(la: LookAlike) -> bool:
    """A sexual look-alike word that the minors line reads in a benign sense."""
    return la.default_sense is not None and la.word.blocks and la.word.term.category == SEXUAL


#: the minors guard reads this many characters either side of a look-alike, in its sentence
_GUARD_WINDOW: Final = 80


def _weak_sexual(la: LookAlike) -> bool:
    """A sexual look-alike word in a benign sense that the minors line's stricter reading
    does not give it: the sense word is past a comma or a number ("Emma Watson nude,
    lipstick swatch on the side"; "nude, berry, coral"; "Nude 20, Espresso 40")."""
    return (
        la.sense is not None
        and la.default_sense is None
        and la.word.blocks
        and la.word.term.category == SEXUAL
    )


def _guard_check(
    first: tuple[Reading, list[LookAlike]],
    guard: GuardScorer,
    which: Callable[[LookAlike], bool],
    lexicon: Lexicon,
    threshold: float,
) -> GuardCheck | None:
    """The classifier's best sexual score on the text, and on each sentence around a
    look-alike ``which`` picks (at most ``_GUARD_WINDOW`` characters either side, so a long
    brief cannot dilute it), all read with those words left in."""
    reading, look_alikes = first
    picked = [la for la in look_alikes if which(la) and la.base == reading.base]
    if not picked:
        return None
    source = reading.unmasked or reading.text
    kept, mapping = _resolve(
        source,
        [la for la in look_alikes if not which(la)],
        _ruled_out(lexicon, reading.views[0]),
    )
    ends = [m.start() for m in _SENTENCE_END.finditer(source)]
    texts = [kept]
    for la in picked:
        start = max([la.start - _GUARD_WINDOW, 0, *(e + 1 for e in ends if e < la.start)])
        end = min([la.end + _GUARD_WINDOW, len(source), *(e + 1 for e in ends if e >= la.end)])
        lo, hi = bisect.bisect_left(mapping, start), bisect.bisect_left(mapping, end)
        texts.append(kept[lo:hi])
    names = tuple(sorted({name for la in picked for name in (la.sense, la.default_sense) if name}))
    score = max(guard(text) for text in dict.fromkeys(texts) if text.strip())
    return GuardCheck(score, threshold, names)


def _outside(hits: list[Hit], look_alikes: Sequence[LookAlike]) -> list[Hit]:
    """``hits`` but those inside a look-alike occurrence in a benign sense (this brand's)."""
    benign = [(la.base, la.start, la.end) for la in look_alikes if la.sense is not None]
    if not benign:
        return hits
    return [
        h
        for h in hits
        if not any(
            base == h.base and start <= h.start and h.end <= end for base, start, end in benign
        )
    ]


def _ruled_out(lexicon: Lexicon, view: _View) -> list[tuple[int, int]]:
    """Spans the semantic layer should not read: allow-listed phrases ("suicide prevention")
    and listed terms ruled out by a negation, with the negation ("no nudity")."""
    spans = [span for term in lexicon.allow for span in _raw_matches(term, view.raw)]
    for term in (*lexicon.terms, *lexicon.suggestive_terms, *(a.term for a in lexicon.ambiguous)):
        for start, end in _raw_matches(term, view.context):
            negation = _NEGATION.search(view.context, max(0, start - _NEGATION_LOOKBACK), start)
            if negation is not None:
                spans.append((negation.start(), end))
    return spans


def _raw_matches(term: Term, text: str) -> Iterator[tuple[int, int]]:
    if term.needles[0] in text:
        for match in term.pattern(0).finditer(text):
            yield match.span()


def _resolve(
    normalised: str, look_alikes: Sequence[LookAlike], ruled_out: Sequence[tuple[int, int]]
) -> tuple[str, tuple[int, ...]]:
    """``normalised`` without the look-alike words a sense made benign and the ruled-out
    spans, and where each kept character came from."""
    drop = bytearray(len(normalised))
    for la in look_alikes:
        if la.sense is not None and la.base == "normalised":
            for index in range(la.start, la.end):
                drop[index] = 1
    for start, end in ruled_out:
        for index in range(start, end):
            drop[index] = 1
    if not any(drop):
        return normalised, tuple(range(len(normalised)))
    kept = tuple(i for i in range(len(normalised)) if not drop[i])
    return "".join(normalised[i] for i in kept), kept
