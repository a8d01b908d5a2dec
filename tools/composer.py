"""The rule-based prompt composer: a template version plus the brand's clauses make a prompt.

Rendering goes through the core template sandbox (:mod:`brandloop.templates.sandbox`), which
also decides what a template may contain.

The composer knows two palette emphases: ``normal`` (the palette clause where the template puts
it) and ``strong`` (a strict palette clause first, and colours the brief names that are not
the brand's moved to the negative prompt) - the agent's fix for a palette miss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from brandloop.domain import BrandKit, PaletteColour, Shift, TemplateVersion
from brandloop.templates.sandbox import render
from brandloop.tools.providers.colours import extract_colours
from brandloop.tools.scoring.colour import nearest_delta_e

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
) -> tuple[str, str]:
    """Return ``(prompt, negative_prompt)`` for one candidate.

    ``avoid`` (a revision's removals, a brief's forbidden colours) goes to the negative prompt;
    ``shifts`` reorder the palette clause and add their lighting words. ``accents`` (colour
    words of the brief, the ``adapt`` conflict policy) put the brand palette first, so it
    dominates, and name them as accents.
    """
    moved = off_brand_colours(brief, brand) if emphasis == "strong" else []
    all_modifiers = [*modifiers, *(SHIFT_MODIFIERS[s] for s in shifts)]
    variables = {
        "brief": brief.strip().rstrip("."),
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
    elif accents:
        prompt = f"{accent_clause(brand, accents)}. {prompt}"
    return prompt, negative


def leads_with_palette(prompt: str) -> bool:
    """Does the prompt put the brand palette first (strong emphasis or adapted accents)?"""
    return prompt.startswith(("strict palette:", "mostly the brand colours"))


def accent_clause(brand: BrandKit, accents: Sequence[str]) -> str:
    """The brand palette first (the earlier a colour, the more of the image it gets), then
    the brief's own colours as accents."""
    colours = ", ".join(
        f"{c.name} {c.hex}" if c.name else c.hex
        for c in sorted(brand.palette, key=lambda c: c.role != "primary")
    )
    return f"mostly the brand colours {colours}, with {', '.join(accents)} only as small accents"
