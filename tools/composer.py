"""The rule-based prompt composer: a template version plus the brand's clauses make a prompt.

Rendering goes through the core template sandbox (:mod:`brandloop.templates.sandbox`), which
also decides what a template may contain.

The composer knows two palette emphases: ``normal`` (the palette clause where the template puts
it) and ``strong`` (a strict palette clause first, and colours the brief names that are not
the brand's moved to the negative prompt) - the agent's fix for a palette miss.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from brandloop.domain import BrandKit, PaletteColour, Shift, TemplateVersion
from brandloop.templates.sandbox import render
from brandloop.tools.providers.colours import colour_mentions, extract_colours
from brandloop.tools.scoring.colour import nearest_delta_e

#: The composer's version: bump when the composer's output changes (the prompt or negative
#: prompt it makes from the same template, kit and request). It is part of a request's repeat
#: key (``agent/replay.py``), so a run composed by an earlier version is never replayed with
#: the prompt that version made.
COMPOSER_VERSION = 2  # 2: a colour taken out takes its lead-in words along

PaletteEmphasis = Literal["normal", "strong"]
#: A named colour this far (ΔE2000) from every brand colour is outside the palette.
OFF_PALETTE_DELTA_E = 20.0


#: words a revision's shift adds to the prompt, for backends that read them
SHIFT_MODIFIERS: dict[str, str] = {
    "warmer": "warm light, warm tones",
    "cooler": "cool light, cool tones",
    "brighter": "bright, airy, high-key lighting",
    "darker": "low-key, moody lighting",
}


def _lightness(colour: PaletteColour) -> float:
    r, g, b = colour.rgb
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _warmth(colour: PaletteColour) -> float:
    r, _, b = colour.rgb
    return float(r - b)


def ordered_palette(brand: BrandKit, shifts: Sequence[Shift] = ()) -> list[PaletteColour]:
    """The brand's colours in the order the prompt names them (earlier means more emphasis):
    the primary first, unless a revision shifts the emphasis to the warmest, coolest, lightest
    or darkest brand colours. The palette itself never changes."""
    colours = sorted(brand.palette, key=lambda c: c.role != "primary")
    for shift in shifts:
        if shift == "warmer":
            colours.sort(key=_warmth, reverse=True)
        elif shift == "cooler":
            colours.sort(key=_warmth)
        elif shift == "brighter":
            colours.sort(key=_lightness, reverse=True)
        elif shift == "darker":
            colours.sort(key=_lightness)
    return colours


def palette_clause(brand: BrandKit, emphasis: PaletteEmphasis, shifts: Sequence[Shift] = ()) -> str:
    colours = ", ".join(
        f"{c.name} {c.hex}" if c.name else c.hex for c in ordered_palette(brand, shifts)
    )
    if emphasis == "strong":
        return f"strict palette: only the brand colours {colours}"
    return f"in the brand colours {colours}"


def brand_colour_names(brand: BrandKit) -> set[str]:
    """The names the brand gives its own colours ("navy", "forest green"), lower-cased."""
    return {c.name.lower() for c in brand.palette if c.name}


def off_brand_colours(
    text: str, brand: BrandKit, tolerance: float = OFF_PALETTE_DELTA_E
) -> list[str]:
    """Colour words or codes in ``text`` farther than ``tolerance`` (ΔE2000, as the scorer
    measures) from every brand colour. A colour the brand names as its own is never one of
    them, however far the common meaning of the word is from the brand's code."""
    own = brand_colour_names(brand)
    palette = [c.hex for c in brand.palette]
    found: list[str] = []
    for rgb, name in extract_colours(text):
        if name in own or name in found:
            continue
        if nearest_delta_e(rgb, palette) > tolerance:
            found.append(name)
    return found


def compose(
    template: TemplateVersion,
    *,
    brand: BrandKit,
    brief: str,
    modifiers: Sequence[str] = (),
    style_notes: Sequence[str] = (),
    emphasis: PaletteEmphasis = "normal",
    avoid: Sequence[str] = (),
    shifts: Sequence[Shift] = (),
    accents: Sequence[str] = (),
    forbidden: Sequence[str] = (),
) -> tuple[str, str]:
    """Return ``(prompt, negative_prompt)`` for one candidate.

    ``avoid`` (a revision's removals, a brief's forbidden colours) goes to the negative prompt;
    ``shifts`` reorder the palette clause and add their lighting words. ``accents`` (colour
    words of the brief, the ``adapt`` conflict policy) put the brand palette first, so it
    dominates, and name them as accents. ``forbidden`` (colours of the brief the brand forbids,
    the ``adapt`` conflict policy) are taken out of the brief's words, never asked for, and go
    to the negative prompt; the brand palette goes first in their place.
    """
    moved = off_brand_colours(brief, brand) if emphasis == "strong" else []
    # never the thing the prompt asks for in every image: a thread's removal of "cup" stored
    # before such a follow-up was refused would avoid Acme Coffee's "coffee cup" in one call
    avoid = [a for a in avoid if not _names_required(a, brand.required_terms)]
    avoid = [*avoid, *(f for f in forbidden if f not in avoid)]
    all_modifiers = [*modifiers, *(SHIFT_MODIFIERS[s] for s in shifts)]
    variables = {
        "brief": without_colours(brief, forbidden).strip().rstrip("."),
        "brand": brand.name,
        "tone": ", ".join(brand.tone) or "on-brand",
        "required": ", ".join(brand.required_terms),
        "palette_clause": palette_clause(brand, emphasis, shifts),
        "style_notes": "; ".join(style_notes),
        "modifiers": ", ".join(all_modifiers),
        "brand_negative": brand.negative_prompt,
        "negative_extra": ", ".join([*moved, *(a for a in avoid if a not in moved)]),
    }
    prompt = render(template.body, variables)
    negative = render(template.negative_body, variables).strip(", ")
    extra = [a for a in avoid if a.lower() not in negative.lower()]
    if extra:  # a template that leaves out {{ negative_extra }} still avoids them
        negative = ", ".join(filter(None, [negative, *extra]))
    if emphasis == "strong":
        prompt = f"{palette_clause(brand, 'strong', shifts)}. {prompt}"
    elif accents or forbidden:
        prompt = f"{accent_clause(brand, accents)}. {prompt}"
    return prompt, negative


def _names_required(term: str, required: Sequence[str]) -> bool:
    """Whether ``term`` names a required term or is named by one, as whole words in either
    direction ("cup" and "coffee cup")."""
    words = term.lower().split()
    for need in required:
        need_words = need.lower().split()
        for short, long in ((words, need_words), (need_words, words)):
            size = len(short)
            if size and any(long[i : i + size] == short for i in range(len(long) - size + 1)):
                return True
    return False


def leads_with_palette(prompt: str) -> bool:
    """Does the prompt put the brand palette first (strong emphasis or adapted accents)?"""
    return prompt.startswith(("strict palette:", "mostly the brand colours"))


def accent_clause(brand: BrandKit, accents: Sequence[str]) -> str:
    """The brand palette first (the earlier a colour, the more of the image it gets), then
    the brief's own colours as accents (none: the palette alone)."""
    colours = ", ".join(
        f"{c.name} {c.hex}" if c.name else c.hex
        for c in sorted(brand.palette, key=lambda c: c.role != "primary")
    )
    if not accents:
        return f"mostly the brand colours {colours}"
    return f"mostly the brand colours {colours}, with {', '.join(accents)} only as small accents"


#: what joins two colours in a list ("fuchsia and teal", "teal, fuchsia"): taken out with one
_JOIN = r"\s*(?:,\s*(?:(?:and|or|&)\s+)?|\s+(?:and|or|&)\s+)"
#: words that only lead into what follows them: left before a colour that is taken out and
#: ends its phrase ("a cup in fuchsia, on a table"), they go with it
_LEAD_INS = frozenset(
    {"a", "an", "the", "and", "or", "&", "in", "on", "of", "with", "against", "over",
     "under", "beside", "into", "onto", "at", "from", "by", "plus", "all"}
)  # fmt: skip
_NEXT_WORD = re.compile(r"\s*([A-Za-z&]+)")


def _ends_phrase(rest: str) -> bool:
    """Does a colour followed by ``rest`` end its phrase (the text's end, punctuation, or a
    word such as "on" or "and"), rather than name what follows ("fuchsia tablecloth")?"""
    word = _NEXT_WORD.match(rest)
    return word is None or word.group(1).lower() in _LEAD_INS


def _without_lead_ins(head: str) -> str:
    """``head`` without the lead-in words ("in", "a", "and") it ends with."""
    while True:
        kept = head.rstrip()
        words = kept.rsplit(maxsplit=1)
        if not words or words[-1].lower() not in _LEAD_INS:
            return head
        head = kept[: len(kept) - len(words[-1])]


def _article(head: str, rest: str) -> str:
    """``head`` with its closing "a"/"an" fitted to the word that now follows it ("a fuchsia
    apron" without fuchsia is "an apron")."""
    article = re.search(r"(?:^|(?<=\s))(an?|An?)\s*$", head)
    word = _NEXT_WORD.match(rest)
    if article is None or word is None:
        return head
    wanted = "an" if word.group(1)[0].lower() in "aeiou" else "a"
    written = article.group(1)
    fitted = wanted.capitalize() if written[0].isupper() else wanted
    return head[: article.start(1)] + fitted + head[article.end(1) :]


def without_colours(text: str, colours: Sequence[str]) -> str:
    """``text`` with every mention of the colours ``colours`` name (labels as
    :func:`~brandloop.tools.providers.colours.extract_colours` gives them) taken out: "a cup
    on a fuchsia tablecloth" without fuchsia is "a cup on a tablecloth"; in a list of colours
    the word joining it to its neighbour goes with it ("teal and fuchsia" is "teal", "teal,
    fuchsia and cream" is "teal and cream"); "a"/"an" is fitted to the word now after it; a colour
    that ends its phrase takes the words that only led into it ("in", "a", "and") along, so
    "a cup in fuchsia, on a table" is "a cup, on a table" and "a cup and a fuchsia" is "a
    cup"; doubled spaces and commas left behind are tidied."""
    unwanted = {rgb for label in colours for rgb, _ in extract_colours(label)}
    if not unwanted:
        return text
    mentions = colour_mentions(text)
    starts = {start for _, _, (start, _) in mentions}
    ends = {end for _, _, (_, end) in mentions}
    for rgb, _, (start, end) in reversed(mentions):
        if rgb not in unwanted:
            continue
        after = re.match(_JOIN, text[end:])
        before = re.search(_JOIN + r"$", text[:start])
        if before and start - len(before.group()) in ends:
            start -= len(before.group())
        elif after and end + after.end() in starts:
            end += after.end()
        elif _ends_phrase(text[end:]):
            start = len(_without_lead_ins(text[:start]))
        text = _article(text[:start], text[end:]) + " " + text[end:]
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r"([,;])(?:\s*[,;])+", r"\1", text)
    text = re.sub(r"[,;]+([.!?:])", r"\1", text)
    return text.strip(" ,;")
