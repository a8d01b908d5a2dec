"""Revisions of a brief: a follow-up such as "warmer, and drop the mug" edits the brief.

Today's brief is edited, never appended to: a removal takes the thing out of the brief's text
and puts it in the request's ``avoid`` list (the negative prompt), as does each item of a list
("drop the croissant, the napkin and the spoon"); "warmer"/"cooler" shift which
brand colours the prompt names first, "brighter"/"darker" move the exposure target (and both add
their lighting words); an addition ("add a croissant") and any other instruction that describes
something to show become a clause of the brief ("replace the bench with a chair" puts the chair
where the bench stood). A part with no word outside :data:`_FILLER` ("ok", "perfect", "undo",
"bring back") asks for nothing, and a removal of such words ("drop the", "remove it") removes
nothing. A request's frame is taken off before it is read ("can it be warmer?" is
"warmer", "is it possible to remove the bench?" a removal); a question back ("what formats do
you have?") is no edit and never a clause, and a follow-up of nothing else asks for nothing
(:func:`asks_nothing`). The rules below need no model; a configured LLM writer may propose
the edit instead (:meth:`brandloop.agent.writer.PromptWriter.revise`), and whatever it proposes
is held to the same shape and checks. The edited brief is a brief like any other: intake
moderates it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from brandloop.agent.writer import PromptWriter
from brandloop.domain import MAX_BRIEF_CHARS, Shift, is_blank

__all__ = [
    "BriefEdit",
    "BriefState",
    "apply_rules",
    "asks_nothing",
    "has_words",
    "plain",
    "required_removals",
    "revise",
    "strip_term",
]

PaletteShift = Literal["warmer", "cooler"]
ExposureShift = Literal["brighter", "darker"]

_SHIFT_WORDS: dict[str, Shift] = {
    "warmer": "warmer", "warm": "warmer", "warm it up": "warmer",
    "cooler": "cooler", "colder": "cooler", "cool": "cooler", "cool it down": "cooler",
    "brighter": "brighter", "lighter": "brighter", "bright": "brighter",
    "darker": "darker", "moodier": "darker", "dark": "darker",
}  # fmt: skip
_OPPOSITE: dict[Shift, Shift] = {
    "warmer": "cooler", "cooler": "warmer", "brighter": "darker", "darker": "brighter",
}  # fmt: skip
#: what a request is wrapped in, taken off (again and again) before it is read: "can it be
#: warmer?" is "warmer", "is it possible to remove the bench?" "remove the bench", "I'd like it
#: brighter" "brighter" (each was pasted into the brief, with no shift or removal: outside tester)
_SUBJECT = (
    r"(?:it|they|them|everything|the\s+(?:image|images|picture|pictures|photo|photos|shot|"
    r"shots|scene|result|results))"
)
#: what "it" is asked to be or have ("can it be", "it should have")
_BECOME = r"(?:be|look|feel|get|become|have|show|include)"
_WISH = r"(?:i(?:'|’)d|i\s+would|i)\s+(?:like|love|want|prefer|need)"
_FRAME = re.compile(
    r"^(?:please|kindly|now|also|then|just|and|but|ok|okay|yes|yeah|yep|sure|great|perfect|"
    r"awesome|thanks|thank\s+you|maybe|perhaps|possibly|actually|hmm*|um+|uh+|oh|hey|"
    r"any\s+chance(?:\s+(?:that|of))?|"
    r"(?:it|that)(?:(?:'|’)s|\s+is)(?=\s+(?:a\s+(?:bit|little)\s+|way\s+|much\s+)?too\b)|"
    rf"try(?:\s+(?:making|to\s+make))?(?:\s+{_SUBJECT})?|"
    r"(?:you|we)\s+(?:could|can|should|might)(?:\s+try(?:\s+to)?)?|"
    r"(?:can|could|would|will)\s+(?:you|we|i)(?:\s+please)?|"
    r"(?:is|would)\s+it\s+(?:be\s+)?possible\s+(?:for\s+you\s+)?to|"
    r"is\s+there\s+(?:a|any)\s+way\s+(?:for\s+you\s+)?to|do\s+you\s+think\s+you\s+could|"
    rf"{_WISH}\s+{_SUBJECT}(?:\s+to)?(?:\s+(?:be|look|feel))?|{_WISH}(?:\s+(?:you\s+)?to)?|"
    r"let(?:'|’)s|let\s+us|how\s+about|what\s+about|"
    rf"(?:can|could|would|will|might|may)\s+{_SUBJECT}\s+{_BECOME}|"
    rf"{_SUBJECT}\s+(?:should|could|would|must|might|needs?\s+to|has\s+to|have\s+to|"
    rf"ought\s+to)\s+{_BECOME})(?:\s+|$)",
    re.IGNORECASE,
)
_POLITE_END = re.compile(
    r"\s+(?:please|thanks|thank you|for me|if possible|if you can|instead)$", re.IGNORECASE
)
#: a part that, its frame taken off, still asks something: a question back to the system
#: ("what formats do you have?", "is the bench too big?"), which asks for no change and is
#: never a clause of the brief (outside tester: it was pasted in and carried on)
_QUESTION = re.compile(
    r"(?:what|which|how|why|when|where|who|whom|whose|is|are|was|were|am|does|did|can|could|"
    r"would|will|should|shall|may|might|must|isn(?:'|’)t|aren(?:'|’)t|doesn(?:'|’)t|"
    r"didn(?:'|’)t|won(?:'|’)t|can(?:'|’)t|couldn(?:'|’)t|wouldn(?:'|’)t|shouldn(?:'|’)t|"
    r"(?:do|have)\s+(?:you|we|i|they))\b",
    re.IGNORECASE,
)
#: a part with a letter or digit: one without ("?!?...", "*") asks for nothing
_WORDY = re.compile(r"[^\W_]")
#: a part that is courtesy alone ("warmer, thanks"): no clause of the brief
_COURTESY = re.compile(
    r"please|thanks|thank\s+you(?:\s+(?:so|very)\s+much)?|cheers|thx", re.IGNORECASE
)
_MAKE = re.compile(
    r"^(?:make\s+(?:it|them|the image|the images|everything)\s+)?(?:a\s+(?:bit|little)\s+|"
    r"slightly\s+|much\s+|more\s+|a\s+lot\s+)*",
    re.IGNORECASE,
)
#: a removal, or a dislike read as one ("I don't like the bench", "not sure about the bench")
_REMOVE = re.compile(
    r"^(?:drop|remove|lose|delete|take\s+out|get\s+rid\s+of|cut|skip|without|less|"
    r"no(?:\s+more)?|"
    r"(?:i\s+)?(?:don't|do\s+not|didn't|did\s+not)\s+(?:really\s+)?(?:like|want|need|love)|"
    r"i\s+(?:really\s+)?(?:dislike|hate)|"
    r"(?:i(?:'m|\s+am)\s+)?not\s+(?:so\s+|too\s+|really\s+)?(?:sure|convinced|keen|"
    r"a\s+fan|happy|crazy)\s+(?:about|on|of|with)|not)\s+"
    r"(?:the\s+|a\s+|an\s+|any\s+|all\s+)?(?P<term>.+)$",
    re.IGNORECASE,
)
#: a replacement: the old thing removed (to ``avoid``), the new one put where it was
_REPLACE = (
    re.compile(
        r"^(?:replace|swap(?:\s+out)?|switch(?:\s+out)?|exchange)\s+(?P<old>.+?)\s+"
        r"(?:with|for|by)\s+(?P<new>.+)$",
        re.IGNORECASE,
    ),
    re.compile(
        r"^(?:(?:use|have|show|put|add|make\s+it)\s+)?(?P<new>.+?)\s+instead\s+of\s+(?P<old>.+)$",
        re.IGNORECASE,
    ),
)
#: a part approving of what is there ("the bench is fine", "the colours look great")
_APPROVAL = re.compile(
    r".+\s+(?:is|are|looks?|seems?|feels?)\s+(?:(?:really|very|so|just|quite)\s+)?"
    r"(?:fine|good|great|perfect|ok|okay|nice|lovely|right|better)",
    re.IGNORECASE,
)
#: a shift asked as the opposite's negation ("not so dark": brighter; "too warm": cooler)
_NEGATED = re.compile(
    r"^(?:(?:not|less|no\s+longer)(?:\s+(?:so|as|that|too|quite|very|this))?|"
    r"(?:way\s+|much\s+)?too)\s+(?P<word>[a-z]+)$",
    re.IGNORECASE,
)
#: what ends a removed thing without being part of it ("drop the bench too")
_TERM_TAIL = re.compile(
    r"(?:\s+(?:too|also|as\s+well|again|entirely|completely|altogether|now|instead|"
    r"for\s+now|please))+$",
    re.IGNORECASE,
)
#: words that describe nothing to show: articles, pronouns, prepositions, quantifiers,
#: acknowledgements, hedges, undo wording and the verbs an instruction is made of. A part
#: becomes a clause, and a term a removal, only with a word outside these (outside tester:
#: "drop the" avoided "the", "ok" and "undo" were pasted into the brief, each a paid run)
_FILLER_GROUPS = (
    # determiners and pronouns
    "a an the this that these those some any all each every both either neither no none "
    "another other others such what which whatever whichever i me my mine myself you your "
    "yours yourself we us our ours it its itself they them their theirs he him his she her "
    "hers one ones thing things stuff something anything everything nothing someone anyone "
    "everyone",
    # prepositions and conjunctions
    "on in at by with without of to from into onto off over under above below near beside "
    "besides behind between among about around through across along against for up down out "
    "back away toward towards via per and or but nor so then than also too as if not never",
    # auxiliaries, modals and their contractions
    "is are was were be been being am do does did done have has had can could would will "
    "shall should may might must don't doesn't didn't isn't aren't wasn't weren't it's that's "
    "let's i'm i'd i'll i've we're we'd we'll you're you'd can't couldn't won't wouldn't "
    "shouldn't there's here's what's how's",
    # quantifiers and degree words
    "more most less least much many few lot lots bit little very really quite just only even "
    "still again already rather pretty enough same whole kind sort",
    # acknowledgements, courtesy and hedges
    "ok okay k kk yes yeah yep yup ya sure fine good great nice perfect awesome amazing "
    "excellent brilliant fantastic wonderful lovely beautiful gorgeous cool neat love like "
    "liked loved thanks thank thx ty cheers please pls plz lol lmao rofl haha hah hehe hmm hm "
    "hmmm um umm uh oh ah wow hey hi hello sorry alright alrighty got understood sounds looks "
    "seems exactly indeed totally agreed agree fair true well done super maybe perhaps "
    "possibly actually probably think idea chance possible now here there how why when where "
    "who whom whose",
    # undo wording, and the verbs and nouns an instruction is made of
    "undo redo revert reverse restore previous last before earlier original prior old way "
    "version versions change changes edit edits undone step go going went bring put take keep "
    "get make made try let see want need give use add drop remove delete lose cut skip include "
    "show better worse different instead image images picture pictures photo photos pic pics "
    "shot shots result results option options job work",
)
_FILLER = frozenset(word for group in _FILLER_GROUPS for word in group.split())
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_ADD = re.compile(
    r"^(?:add|include|put\s+in|show|with|bring\s+back|put\s+back|keep)\s+(?P<thing>.+)$",
    re.IGNORECASE,
)
#: what parts an instruction; a new line, like a full stop, "?" or "!", ends one ("add steam
#: <new line> drop the croissant" is two, not one clause "steam drop the croissant"); so does a
#: dash between spaces ("not quite - can you make it brighter?")
_SPLIT = re.compile(r"\s*([,;.!?\n]|\s[-–—]+\s|\band\b|\bthen\b)\s*", re.IGNORECASE)
#: what joins the items of one list ("drop the croissant, the napkin, and the spoon"): an item
#: after these alone, with no instruction of its own, is one more thing the list's verb names;
#: a full stop, semicolon or new line ends the list
_LIST_JOINS = frozenset({",", "and", "then"})
#: words an instruction of its own starts with, so it never reads as one more listed item
_VERB = re.compile(
    r"^(?:make|add|include|put|show|with|bring|keep|use|change|turn|set|give|let|have|try|"
    r"go|move|place|swap|replace|zoom|crop|center|centre|shift|tone|increase|decrease|"
    r"drop|remove|lose|delete|take|get|cut|skip|without|no|less|more)\b",
    re.IGNORECASE,
)
_ARTICLE = re.compile(r"^(?:the|a|an|any|all)\s+", re.IGNORECASE)
_LEADING = re.compile(r"^(?:on|in|at|by|with|beside|next to|under|over|and|of)\s+", re.IGNORECASE)
_TRAILING = re.compile(r"\s+(?:on|in|at|by|with|beside|next to|and|of)$", re.IGNORECASE)


class BriefState(BaseModel):
    """Where a thread stands: its current brief and what earlier revisions settled."""

    model_config = ConfigDict(extra="forbid")

    brief: str
    avoid: list[str] = Field(default_factory=list)
    shifts: list[Shift] = Field(default_factory=list)


#: the most terms a thread's negative prompt carries: the oldest go first
MAX_AVOID = 20


class BriefEdit(BaseModel):
    """One revision, as the thread shows it: the brief before and after, and what changed."""

    model_config = ConfigDict(extra="forbid")

    instruction: str
    before: str
    after: str
    removed: list[str] = Field(default_factory=list, description="went to the negative prompt")
    added: list[str] = Field(default_factory=list, description="clauses added to the brief")
    questions: list[str] = Field(
        default_factory=list,
        description="parts read as questions asking for no change: left out of the brief",
    )
    ignored: list[str] = Field(
        default_factory=list,
        description="parts that name nothing to show (acknowledgements, filler, undo "
        "wording: 'ok', 'perfect', 'go back to the previous one'): left out of the brief",
    )
    shifts: list[Shift] = Field(default_factory=list, description="asked for by this revision")
    avoid: list[str] = Field(
        default_factory=list,
        description=f"every avoided term, cumulative (the {MAX_AVOID} most recent)",
    )
    all_shifts: list[Shift] = Field(default_factory=list, description="cumulative, net")
    by: Literal["rules", "writer"] = "rules"

    def state(self) -> BriefState:
        return BriefState(brief=self.after, avoid=self.avoid, shifts=self.all_shifts)


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,.;])", r"\1", text)
    text = re.sub(r"([,;])(?:\s*[,;])+", r"\1", text)
    text = text.strip(" ,;")
    for _ in range(3):
        text = _LEADING.sub("", text).strip(" ,;")
        text = _TRAILING.sub("", text).strip(" ,;")
    return text


#: words that join a noun phrase to the rest of a brief: never taken out as a removed thing's
#: modifier, and left dangling by a removal ("a dog with a ball on the grass" without the ball)
_JOINING = (
    r"on|in|at|by|with|under|over|of|and|or|to|from|into|onto|near|beside|behind|for|"
    r"against|across|along|above|below"
)
_GAP = "\x00"
_DANGLING = re.compile(
    rf"\b(?:{_JOINING})\s*{_GAP}(?=\s*(?:$|[,.;:!?]|(?:{_JOINING})\b))", re.IGNORECASE
)
_CONJ = r"\b(?:and|or)\b"
#: what a removed thing takes with it, in this order (``_GAP`` marks where it was):
_WITH_REMOVED: tuple[tuple[re.Pattern[str], str], ...] = (
    # a thing that opened a clause after a comma takes the rest of that clause, its own
    # modifiers ("…, a croissant beside it"), up to the next comma, full stop or and/or
    (
        re.compile(
            rf"([,;]\s*{_GAP})\s+(?!{_CONJ})[^,;.{_GAP}]*?(?=\s*(?:$|[,;.]|{_CONJ}))",
            re.IGNORECASE,
        ),
        r"\1",
    ),
    # a conjunct between two and/or takes one of them ("A and X and B": "A and B")
    (re.compile(rf"({_CONJ})\s+{_GAP}\s*,?\s*{_CONJ}", re.IGNORECASE), r"\1"),
    # a listed item before the last one's and/or takes its comma ("A, X and B": "A and B")
    (re.compile(rf",\s*{_GAP}\s*,?\s*({_CONJ})", re.IGNORECASE), r" \1"),
    # the last conjunct takes the and/or before it ("A, and X", "A and X": "A")
    (re.compile(rf"(?:,\s*)?{_CONJ}\s+{_GAP}", re.IGNORECASE), _GAP),
    # a first conjunct takes the and/or after it ("with X and B": "with B")
    (re.compile(rf"{_GAP}\s*,?\s*{_CONJ}", re.IGNORECASE), _GAP),
)


#: plurals of these are not their singular with an "s" taken off ("news" is no "new")
#: endings of words that end in "s" and are not plurals of a word without it
_NOT_PLURAL = ("ss", "us", "is", "news", "series", "species")


def _number_forms(word: str) -> str:
    """A pattern for ``word`` in the singular or the plural, escaped: "croissants" also
    finds "croissant", "berries" "berry", "glasses" "glass", and "berry" "berries" (a
    removal of "the croissants" left "a croissant" in the brief while saying it was removed)."""
    forms = {word}
    lower = word.lower()
    if lower.endswith("ies") and len(word) > 4:
        forms.add(word[:-3] + "y")
    elif lower.endswith(("sses", "xes", "zes", "ches", "shes")):
        forms.add(word[:-2])
    elif lower.endswith("s") and not lower.endswith(_NOT_PLURAL) and len(word) > 3:
        forms.add(word[:-1])
    if lower.endswith("y") and len(word) > 2 and lower[-2] not in "aeiou":
        forms.add(word[:-1] + "ies")
    alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return rf"(?:{alternatives})(?:e?s)?"


def _core(term: str) -> str:
    """A pattern for ``term``'s words, its last in the singular or the plural, escaped."""
    plain = term.split()
    words = [re.escape(w) for w in plain[:-1]]  # a pattern is built of escaped pieces only
    return r"\s+".join([*words, _number_forms(plain[-1])])


#: what may follow a thing without being the noun it modifies: it stands after its noun ("a
#: cat asleep under it", "a croissant beside it") or starts what the clause says of it
_AFTER_NOUN = re.compile(
    rf"(?:{_JOINING}|asleep|awake|alone|nearby|aside|apart|together|here|there|it|them|"
    r"its|their|this|that|these|those|which|who|whose|where|while|as|like|than|is|are|was|"
    r"were|sits|stands|lies|rests|sleeps|waits|looks|glows|shines|steams|left|right|up|down|"
    r"out|off|away|again|too|also|only|still|now|then|\w{3,}(?:ing|ed)|\w+ly)",
    re.IGNORECASE,
)


def _modifies(following: str | None) -> bool:
    """Whether a removed thing followed by the word ``following`` is a modifier of it ("a
    berry tart"): then the thing alone goes, and the noun keeps its article and words."""
    return following is not None and _AFTER_NOUN.fullmatch(following) is None


def _removed(match: re.Match[str]) -> str:
    """What a match of a removed thing leaves: the gap, or, for a modifier of the noun after
    it, the words before it ("a berry tart" without berries: "a tart"; "an apple tart": "a
    tart", the article fitted to the noun)."""
    if not _modifies(match.group("next")):
        return _GAP
    lead = match.group("lead")
    article = re.search(r"\b(an?)\s+$", lead, re.IGNORECASE)
    if article is not None and not match.group("mods"):
        fitted = "an" if match.group("next")[0].lower() in "aeiou" else "a"
        if article.group(1)[0].isupper():
            fitted = fitted.capitalize()
        lead = f"{lead[: article.start(1)]}{fitted} "
    return lead


def strip_term(brief: str, term: str) -> tuple[str, bool]:
    """``brief`` without ``term`` (with its article, up to two words before it that are not
    prepositions or conjunctions, and a plural s); a one-word term also takes the words made
    from it ("snow": "snowy", "snow-capped"). A removed conjunct takes its connector ("with a
    croissant and a napkin" without the croissant is "with a napkin"; "a bagel, a croissant and
    a muffin", "a bagel and a muffin"), a thing that opened a clause after a comma takes the
    rest of that clause ("a cup on a counter, a croissant beside it": "a cup on a counter"),
    and a preposition the removal leaves with nothing to join goes too ("a dog with a ball on
    the grass" without the ball is "a dog on the grass"). A thing that modifies the noun after
    it goes alone, the noun keeping its article ("a latte with a berry tart" without berries
    is "a latte with a tart"; it was "a latte with tart"). Returns whether anything was taken
    out."""
    plain = term.split()
    if not plain:
        return brief, False
    modifier = rf"(?:\b(?!(?:{_JOINING})\b)[\w'-]+\s+)"
    pattern = re.compile(
        rf"(?P<lead>(?:\b(?:a|an|the|some|two|three|four|\d+)\s+)?(?P<mods>{modifier}{{0,2}}?))"
        rf"\b{_core(term)}\b(?!-)(?=(?:\s+(?P<next>[\w'-]+))?)",
        re.IGNORECASE,
    )
    edited, count = pattern.subn(_removed, brief)
    if not count and len(plain) == 1:  # "snowy", "snowier", "snow-capped"
        word, last = re.escape(plain[0]), re.escape(plain[0][-1])  # "snow" + "n"? (escaped)
        derived = rf"\b{word}(?:{last}?(?:y|ier|iest)\b|(?:e?s)?-[\w-]+)"
        edited, count = re.subn(derived, _GAP, brief, flags=re.IGNORECASE)
    if not count:
        return brief, False
    for pattern, replacement in _WITH_REMOVED:
        edited = pattern.sub(replacement, edited)
    edited = _DANGLING.sub(_GAP, edited)
    return _tidy(edited.replace(_GAP, " ")), True


def _same_thing(one: str, other: str) -> bool:
    """Whether either term names the other, in either number and without its article ("the
    napkin" and "napkins"; "mug" and "the coffee mug"): what brings an avoided thing back."""
    one, other = _ARTICLE.sub("", one), _ARTICLE.sub("", other)
    if not one.split() or not other.split():
        return False
    return any(
        re.search(rf"\b{_core(a)}\b", b, re.IGNORECASE) is not None
        for a, b in ((one, other), (other, one))
    )


def required_removals(removed: list[str], required: list[str]) -> list[tuple[str, str]]:
    """Each removed term that names (or is named by) a term the brand requires in every image,
    with that term ("cup" and "coffee cup"): taking it out would ask the model for the thing
    and tell it to avoid it in one call (outside tester: the prompt said "featuring coffee cup"
    and its negative prompt "cup")."""
    return [(term, need) for term in removed for need in required if _same_thing(term, need)]


#: what a term or clause does not begin or end with: anything but a letter or digit ("the
#: croissant?", "(the napkin)"); a "?" left on a term never matched the brief's word
_ENDS = re.compile(r"^[\W_]+|[\W_]+$")


def _clean_term(text: str) -> str:
    return _ENDS.sub("", re.sub(r"\s+", " ", text)).lower()[:80]


#: characters that show nothing, taken out before a follow-up is read ("\u200bwarmer" is
#: "warmer"): format characters (a zero-width space reads as a space), but the zero-width
#: non-joiner that spells words of some scripts
_ZERO_WIDTH_SPACE = "\u200b"
_KEPT_FORMAT = frozenset({"\u200c"})


def plain(instruction: str) -> str:
    """``instruction`` as the rules read it: invisible characters taken out (a zero-width
    space is a space) and pictographs, emoji and their modifiers read as spaces ("a bit
    warmer 🙏" is "a bit warmer"; outside tester: the emoji kept the shift from being read
    and went into the brief)."""
    out = []
    for char in instruction:
        kind = unicodedata.category(char)
        if char == _ZERO_WIDTH_SPACE:
            out.append(" ")
        elif kind == "Cf" and char not in _KEPT_FORMAT:
            continue
        elif (kind in ("So", "Sk") and ord(char) >= 0x2190) or "\ufe00" <= char <= "\ufe0f":
            out.append(" ")  # arrows, symbols, dingbats, emoji, skin tones; variation selectors
        elif kind == "Me":  # an enclosing keycap
            continue
        else:
            out.append(char)
    return "".join(out)


def _parts(instruction: str) -> list[tuple[str, bool]]:
    """The instruction's parts, each with whether it continues a list (it follows a comma or
    an "and" with nothing but joins since the part before it)."""
    pieces = _SPLIT.split(instruction.strip())
    parts: list[tuple[str, bool]] = []
    joined = True  # only joins since the last part (a ", and" is one join, the Oxford comma)
    for index, piece in enumerate(pieces):
        if index % 2:  # a separator
            joined = joined and piece.lower() in _LIST_JOINS
        elif piece.strip():
            parts.append((piece, bool(parts) and joined))
            joined = True
    return parts


def _unframed(part: str) -> str:
    """``part`` without the words a request is wrapped in ("can it be", "please", "thanks")."""
    text = part.strip()
    while True:
        shorter = _POLITE_END.sub("", _FRAME.sub("", text)).strip()
        if shorter == text:
            return text
        text = shorter


def _names_something(text: str) -> bool:
    """Whether ``text`` has a word that describes something to show: one of two letters or
    more that is not a number and not in :data:`_FILLER` ("the", "it", "ok", "undo" are not)."""
    words = _WORD.findall(text.lower().replace("’", "'"))
    return any(len(w) > 1 and not w.isdigit() and w not in _FILLER for w in words)


def _shift_of(plain: str) -> Shift | None:
    """The shift ``plain`` (its "make it a bit" taken off) asks for: "warmer"; "not so dark",
    "less warm" and "too dark" ask for the opposite of the word they name."""
    if plain in _SHIFT_WORDS:
        return _SHIFT_WORDS[plain]
    negated = _NEGATED.fullmatch(plain)
    if negated is not None and negated.group("word").lower() in _SHIFT_WORDS:
        return _OPPOSITE[_SHIFT_WORDS[negated.group("word").lower()]]
    return None


def _term(text: str) -> str:
    """A removed thing as a term ("the bench too!" is "bench"); empty when it names nothing
    to show ("it", "the", "on", "more": never a removal, outside tester)."""
    term = _clean_term(_TERM_TAIL.sub("", _ENDS.sub("", text)))
    return term if _names_something(term) else ""


def _clause(text: str) -> str:
    """An added thing as a clause ("make it more minimal": "more minimal"); empty when it
    describes nothing to show ("bring back", "the other way", "perfect")."""
    clause = re.sub(r"^make\s+(?:it|them|the\s+images?)\s+", "", text.strip(), flags=re.I)
    clause = clause.strip(" .,;:!?")  # "add steam?" adds steam, not "steam?"
    return clause if _names_something(clause) else ""


class _Step(NamedTuple):
    """One edit a part asks for: a shift (``what`` the shift), a removal (``what`` the
    term), an addition (``what`` the clause) or a replacement (``what`` the old term,
    ``new`` the clause put where it was)."""

    kind: Literal["shift", "remove", "add", "replace"]
    what: str
    new: str = ""


def _step(part: str, *, continues_removal: bool) -> tuple[_Step | None, bool]:
    """What ``part`` (unframed) asks for, None when nothing; and whether it is worded as a
    removal (a bare item after it is one more removed thing)."""
    plain = _MAKE.sub("", part).strip().lower()
    shift = _shift_of(plain)
    if shift is not None:
        return _Step("shift", shift), False
    for pattern in _REPLACE:
        replacing = pattern.match(part)
        if replacing is not None:
            old = _term(_ARTICLE.sub("", replacing.group("old")))
            new = _clause(replacing.group("new"))
            if old and new:
                return _Step("replace", old, new), False
            if new:  # "replace it with a chair": the old thing is not named, the new one is
                return _Step("add", new), False
    if _APPROVAL.fullmatch(part):  # "the bench is fine": no change asked
        return None, False
    removal = _REMOVE.match(part)
    removed_text = removal.group("term") if removal else None
    if removed_text is None and continues_removal and not _VERB.match(part):
        removed_text = _ARTICLE.sub("", part)  # "drop the croissant and the napkin"
    if removed_text is not None:
        term = _term(removed_text)
        return (_Step("remove", term) if term else None), True
    addition = _ADD.match(part)
    clause = _clause(addition.group("thing") if addition else part)
    return (_Step("add", clause) if clause else None), False


def _read(instruction: str) -> tuple[list[_Step], list[str], list[str]]:
    """The edits the instruction asks for; the parts that are questions asking for no change,
    as written; and the parts that ask for nothing the rules read (acknowledgements, filler,
    undo wording: "ok", "perfect", "go back to the previous one"), as written. A part with no
    letter or digit, or with courtesy alone ("thanks"), is none of these."""
    steps: list[_Step] = []
    questions: list[str] = []
    ignored: list[str] = []
    removing = False  # the part before was a removal: a bare item after it is removed too
    for raw, listed in _parts(plain(instruction)):
        written = re.sub(r"\s+", " ", raw).strip(" .,;:!?")
        part = _unframed(raw.replace("’", "'"))
        if not _WORDY.search(part) or _COURTESY.fullmatch(part):
            continue
        if _QUESTION.match(part):
            questions.append(written)
            continue
        step, removing = _step(part, continues_removal=removing and listed)
        if step is None:
            ignored.append(written)
        else:
            steps.append(step)
    return steps, questions, ignored


def has_words(instruction: str) -> bool:
    """Whether ``instruction`` holds a letter or digit ("?!?..." holds none)."""
    return _WORDY.search(instruction) is not None


def asks_nothing(instruction: str) -> bool:
    """Whether ``instruction`` asks for no change to the brief: the rules read no edit in it,
    only questions ("what formats do you have?"), acknowledgements and filler ("ok",
    "perfect, thank you", "drop the"), undo wording ("undo", "bring back" naming nothing) or
    no words at all ("?!?..."). Such a follow-up is not a turn: the API answers it with a
    422, nothing stored."""
    return not _read(instruction)[0]


def _replace(brief: str, old: str, new: str) -> str:
    """``brief`` with ``old`` (and its article) replaced by ``new`` where it stands, or, when
    the brief does not name it, with ``new`` as a clause of its own."""
    found = re.compile(rf"\b(?:(?:a|an|the|some)\s+)?{_core(old)}\b(?!-)", re.IGNORECASE)
    if found.search(brief) is None:
        return f"{brief.rstrip(' .,;')}, {new}"
    return re.sub(r"\s+", " ", found.sub(lambda _: new, brief)).strip()


def _names_already(brief: str, clause: str) -> bool:
    """Whether ``brief`` already holds ``clause``, as written or without its article and in
    either number ("keep the bench" in "a latte on a bench")."""
    if clause.lower() in brief.lower():
        return True
    thing = _ARTICLE.sub("", _clean_term(clause))
    return bool(thing.split()) and re.search(rf"\b{_core(thing)}\b", brief, re.I) is not None


def apply_rules(state: BriefState, instruction: str) -> BriefEdit:
    """Edit ``state``'s brief by ``instruction`` with the rules alone (no model)."""
    brief = state.brief
    avoid = list(state.avoid)
    shifts: list[Shift] = list(state.shifts)
    removed: list[str] = []
    added: list[str] = []
    asked: list[Shift] = []
    steps, questions, ignored = _read(instruction)
    for step in steps:
        if step.kind == "shift":
            shift = _SHIFT_WORDS[step.what]
            asked.append(shift)
            shifts = [s for s in shifts if s not in (shift, _OPPOSITE[shift])] + [shift]
            continue
        if step.kind in ("remove", "replace"):
            term = step.what
            if step.kind == "remove":
                brief, _ = strip_term(brief, term)
            if term not in avoid:
                avoid.append(term)
            removed.append(term)
            if step.kind == "remove":
                continue
        clause = step.new or step.what
        term = _clean_term(clause)
        # "bring back the mug"; "the napkin" brings back "napkins" (it stayed avoided)
        avoid = [a for a in avoid if not _same_thing(a, term)]
        if step.kind == "replace":
            brief = _replace(brief, step.what, clause)
            added.append(clause)
        elif not _names_already(brief, clause):
            brief = f"{brief.rstrip(' .,;')}, {clause}"
            added.append(clause)
    if is_blank(brief):
        brief = state.brief if not removed else "an on-brand scene"
    return BriefEdit(
        instruction=instruction,
        before=state.brief,
        after=brief,  # never cut: a brief past the limit is refused where it is posted
        removed=removed,
        added=added,
        questions=questions,
        ignored=ignored,
        shifts=asked,
        avoid=avoid[-MAX_AVOID:],
        all_shifts=shifts[-2:],
    )


async def revise(
    state: BriefState, instruction: str, writer: PromptWriter | None = None
) -> BriefEdit:
    """Edit the brief by ``instruction``: with the writer's proposal when one is configured
    and usable, else with the rules. A writer's removals are taken out of its brief even if it
    left them in (a removal naming nothing to show, "it" or "the", is dropped), and its brief
    must fit the limit and change something, or the rules' edit is used."""
    ruled = apply_rules(state, instruction)
    if writer is None:
        return ruled
    proposal = await writer.revise(brief=state.brief, instruction=instruction)
    if proposal is None:
        return ruled
    brief = proposal.brief.strip()
    removed = [t for t in (_term(r) for r in proposal.removed) if t]  # never "it" or "the"
    for term in removed:
        brief, _ = strip_term(brief, term)
    if not brief or len(brief) > MAX_BRIEF_CHARS:
        return ruled
    avoid = list(state.avoid)
    for term in removed:
        if term not in avoid:
            avoid.append(term)
    shifts: list[Shift] = list(state.shifts)
    asked: list[Shift] = [s for s in (proposal.palette, proposal.exposure) if s is not None]
    added = [a.strip() for a in proposal.added if a.strip()][:20]
    if brief == state.brief and not (removed or asked or added):
        return ruled  # a proposal of no change is none: "ok" is not a paid run either way
    for shift in asked:
        shifts = [s for s in shifts if s not in (shift, _OPPOSITE[shift])] + [shift]
    return BriefEdit(
        instruction=instruction,
        before=state.brief,
        after=brief,
        removed=removed,
        added=added,
        shifts=asked,
        avoid=avoid[-MAX_AVOID:],
        all_shifts=shifts[-2:],
        by="writer",
    )
