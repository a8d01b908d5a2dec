"""Text moderation for briefs and prompts: a blocklist floor run before any money is spent.

intake calls :func:`moderate_text` on the brief (and the plan node on rendered prompts); a
verdict that is not ``allowed`` ends the run with the reasons. Matching is on normalised text
(see :mod:`brandloop.tools.moderation.normalize`) and word boundaries, so disguised words are caught
while "skill", "Essex" or "shooting star" are not.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from brandloop.domain import MAX_BRIEF_CHARS, ModerationVerdict
from brandloop.tools.moderation.normalize import (
    displayed_order,
    fold_leetspeak,
    normalize_for_matching,
)
from brandloop.tools.moderation.policy import load_policy_file

EMPTY: Final = "empty"
LENGTH: Final = "length"
BRAND_FORBIDDEN: Final = "brand_forbidden"
MINORS: Final = "minors"
PROFANITY: Final = "profanity"
DEFAULT_PROFANITY_THRESHOLD: Final = 0.95

#: Texts → probability each is offensive (the seam for the profanity model).
ProfanityScorer = Callable[[list[str]], list[float]]

#: A blocklisted term right after one of these is being ruled out, not asked for: "no gore".
#: Only the word directly before counts, so "no problem, nudity is fine" is still blocked.
#: "not" is left out on purpose: "why not <term>" asks for it.
_NEGATION: Final = re.compile(
    r"\b(?:no|without|avoid|avoiding|exclude|excluding|free\s+of)[\s\-]+$"
)
_NEGATION_LOOKBACK: Final = 16


# --------------------------------------------------------------------------- the blocklist


class _MinorsRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window_chars: int = Field(default=60, ge=0, le=1000)
    minor_terms: list[str] = Field(default_factory=list)
    sexualising_terms: list[str] = Field(default_factory=list)


class _BlocklistFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    allow: list[str] = Field(default_factory=list)
    categories: dict[str, list[str]]
    minors: _MinorsRule = Field(default_factory=_MinorsRule)


@dataclass(frozen=True)
class _Term:
    """One term compiled for each matching pass: plain, leet (1 → i) and leet (1 → l).

    ``needles`` is the first word of each pass's form: a substring test on it skips the regex
    for the (nearly all) terms that cannot match, which keeps a 4000-character brief cheap.
    """

    term: str
    category: str
    patterns: tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]
    needles: tuple[str, str, str]


@dataclass(frozen=True)
class Blocklist:
    """Compiled blocklist: terms by category, benign phrases to mask, the minors rule."""

    terms: tuple[_Term, ...]
    allow: tuple[_Term, ...]
    minor_terms: tuple[_Term, ...]
    sexualising_terms: tuple[_Term, ...]
    minors_window: int


def _compile(term: str, category: str) -> _Term | None:
    """Word-bounded patterns for ``term``; ``None`` when nothing matchable is left of it."""
    normal = normalize_for_matching(term)
    patterns = []
    needles = []
    for text in (normal, fold_leetspeak(normal), fold_leetspeak(normal, alternate=True)):
        words = re.findall(r"[^\W_]+", text)
        if not words:
            return None
        body = r"[\W_]*".join(re.escape(word) for word in words)
        patterns.append(re.compile(rf"(?<![^\W_]){body}(?:e?s)?(?![^\W_])"))
        needles.append(words[0])
    return _Term(
        term=term,
        category=category,
        patterns=(patterns[0], patterns[1], patterns[2]),
        needles=(needles[0], needles[1], needles[2]),
    )


def _compile_all(terms: Sequence[str], category: str) -> tuple[_Term, ...]:
    compiled = (_compile(term, category) for term in terms)
    return tuple(term for term in compiled if term is not None)


def load_blocklist(path: Path | None = None) -> Blocklist:
    """Read and compile a blocklist YAML file (the packaged ``policies/blocklist.yaml`` if None).

    Raises :class:`BadInputError` naming the file when it is unreadable or malformed.
    """
    data = load_policy_file(_BlocklistFile, path, packaged="blocklist.yaml", what="blocklist")
    return Blocklist(
        terms=tuple(
            term
            for category, terms in data.categories.items()
            for term in _compile_all(terms, category)
        ),
        allow=_compile_all(data.allow, "allow"),
        minor_terms=_compile_all(data.minors.minor_terms, MINORS),
        sexualising_terms=_compile_all(data.minors.sexualising_terms, MINORS),
        minors_window=data.minors.window_chars,
    )


@functools.cache
def default_blocklist() -> Blocklist:
    """The packaged blocklist, compiled once per process."""
    return load_blocklist()


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class _Views:
    """The text as each pass sees it; leet views are character-aligned with ``plain``."""

    plain: str
    leet: str
    leet_alternate: str

    @classmethod
    def of(cls, normalised: str) -> _Views:
        return cls(
            normalised,
            fold_leetspeak(normalised),
            fold_leetspeak(normalised, alternate=True),
        )

    def masked(self, allow: Sequence[_Term]) -> _Views:
        """Blank out allowed phrases ("gore-tex") in every view, keeping positions."""
        views = [self.plain, self.leet, self.leet_alternate]
        for term in allow:
            for index, pattern in enumerate(term.patterns):
                if term.needles[index] in views[index]:
                    views[index] = pattern.sub(lambda m: " " * len(m.group()), views[index])
        return _Views(views[0], views[1], views[2])


def _spans(term: _Term, views: _Views) -> Iterator[tuple[int, int]]:
    """Where ``term`` occurs, in any pass, unless ruled out by a negation right before it.

    A leet-pass match must contain a letter in the plain text, so numbers alone ("5318008",
    prices, dates) can never spell a blocked word.
    """
    texts = (views.plain, views.leet, views.leet_alternate)
    for index, (pattern, text) in enumerate(zip(term.patterns, texts, strict=True)):
        if term.needles[index] not in text:
            continue
        for match in pattern.finditer(text):
            start, end = match.span()
            if index and not re.search(r"[^\W\d_]", views.plain[start:end]):
                continue
            # search(text, pos, endpos) lets \b see the character before pos, unlike a slice.
            if _NEGATION.search(views.plain, max(0, start - _NEGATION_LOOKBACK), start):
                continue
            yield start, end


def _occurs(term: _Term, views: Sequence[_Views]) -> bool:
    return any(next(_spans(term, view), None) is not None for view in views)


def _starts(terms: Sequence[_Term], views: _Views) -> dict[str, list[int]]:
    """Term → start offsets of its matches in any pass (the passes are position-aligned)."""
    found: dict[str, list[int]] = {}
    for term in terms:
        starts = [start for start, _ in _spans(term, views)]
        if starts:
            found[term.term] = starts
    return found


def moderate_text(
    text: str,
    *,
    forbidden_terms: Sequence[str] = (),
    source: str = "brief",
    max_chars: int = MAX_BRIEF_CHARS,
    blocklist: Blocklist | None = None,
    profanity_threshold: float | None = DEFAULT_PROFANITY_THRESHOLD,
    profanity_model: ProfanityScorer | None = None,
) -> ModerationVerdict:
    """Check ``text`` against the blocklist, the brand's forbidden terms and a profanity model.

    Not allowed when the text is empty (category ``empty``), longer than ``max_chars``
    (``length``; the text is not scanned), contains a blocklisted term (its category, e.g.
    ``violence``), sexualising words near words for children (``minors``) or one of the
    brand's ``forbidden_terms`` (``brand_forbidden``), or when the shipped profanity model
    (alt-profanity-check, see ``PROVENANCE.md``; or ``profanity_model``) gives the normalised
    text a probability of at least ``profanity_threshold`` (``profanity``; ``None`` turns the
    model off). Reasons name the category and the listed term, never the surrounding text;
    ``scores`` holds 1.0 per blocklist category found and the model's probability.
    """
    if len(text) > max_chars:
        return _verdict(
            source, [(LENGTH, f"text is {len(text)} characters; the limit is {max_chars}")]
        )
    normalised = normalize_for_matching(text)
    if not normalised.strip():
        return _verdict(source, [(EMPTY, "text is empty")])

    lists = blocklist or default_blocklist()
    views = [_Views.of(normalised)]
    shown = displayed_order(text)
    if shown != text:
        views.append(_Views.of(normalize_for_matching(shown)))
    masked = [v.masked(lists.allow) for v in views]

    findings: list[tuple[str, str]] = []
    for term in lists.terms:
        if _occurs(term, masked):
            findings.append((term.category, f"matched blocked term '{term.term}'"))
    findings.extend(_minors_findings(lists, masked))
    brand_terms = _compile_all([t for t in forbidden_terms if t.strip()], BRAND_FORBIDDEN)
    for term in brand_terms:
        if _occurs(term, views):
            findings.append((BRAND_FORBIDDEN, f"uses the brand's forbidden term '{term.term}'"))
    probability: float | None = None
    if profanity_threshold is not None:
        scorer = profanity_model or _shipped_profanity
        probability = max(scorer([text for view in views for text in (view.plain, view.leet)]))
        if probability >= profanity_threshold:
            findings.append(
                (
                    PROFANITY,
                    f"offensive language (model probability {probability:.2f} ≥ "
                    f"{profanity_threshold:.2f})",
                )
            )
    verdict = _verdict(source, findings)
    if probability is not None:
        verdict.scores[PROFANITY] = round(probability, 4)
    return verdict


def _shipped_profanity(texts: list[str]) -> list[float]:
    from brandloop.tools.moderation.models import profanity_model

    return profanity_model().probabilities(texts)


def _minors_findings(lists: Blocklist, views: Sequence[_Views]) -> list[tuple[str, str]]:
    """A sexualising word within ``minors_window`` characters of a word for a child."""
    for view in views:
        minors = _starts(lists.minor_terms, view)
        if not minors:
            continue
        sexual = _starts(lists.sexualising_terms, view)
        for minor_term, minor_starts in minors.items():
            for sexual_term, sexual_starts in sexual.items():
                if any(
                    abs(m - s) <= lists.minors_window for m in minor_starts for s in sexual_starts
                ):
                    return [(MINORS, f"sexualising term '{sexual_term}' near '{minor_term}'")]
    return []


def _verdict(source: str, findings: Sequence[tuple[str, str]]) -> ModerationVerdict:
    categories = list(dict.fromkeys(category for category, _ in findings))
    reasons = list(dict.fromkeys(f"{category}: {reason}" for category, reason in findings))
    return ModerationVerdict(
        allowed=not findings,
        source=source,
        categories=categories,
        reasons=reasons,
        scores=dict.fromkeys(categories, 1.0),
    )
