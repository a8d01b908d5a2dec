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

from brandloop.domain import BrandKit, TemplateVersion
from brandloop.templates.sandbox import render
from brandloop.tools.providers.colours import extract_colours

PaletteEmphasis = Literal["normal", "strong"]


def palette_clause(brand: BrandKit, emphasis: PaletteEmphasis) -> str:
    colours = ", ".join(
        f"{c.name} {c.hex}" if c.name else c.hex
        for c in sorted(brand.palette, key=lambda c: c.role != "primary")
    )
    if emphasis == "strong":
        return f"strict palette: only the brand colours {colours}"
    return f"in the brand colours {colours}"


def off_brand_colours(text: str, brand: BrandKit, tolerance: float = 60.0) -> list[str]:
    """Colour words or codes in ``text`` that are far from every brand colour (RGB distance)."""
    found: list[str] = []
    for rgb, name in extract_colours(text):
        nearest = min(
            sum((a - b) ** 2 for a, b in zip(rgb, c.rgb, strict=True)) ** 0.5 for c in brand.palette
        )
        if nearest > tolerance and name not in found:
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
) -> tuple[str, str]:
    """Return ``(prompt, negative_prompt)`` for one candidate."""
    moved = off_brand_colours(brief, brand) if emphasis == "strong" else []
    variables = {
        "brief": brief.strip().rstrip("."),
        "brand": brand.name,
        "tone": ", ".join(brand.tone) or "on-brand",
        "required": ", ".join(brand.required_terms),
        "palette_clause": palette_clause(brand, emphasis),
        "style_notes": "; ".join(style_notes),
        "modifiers": ", ".join(modifiers),
        "brand_negative": brand.negative_prompt,
        "negative_extra": ", ".join(moved),
    }
    prompt = render(template.body, variables)
    negative = render(template.negative_body, variables).strip(", ")
    if emphasis == "strong":
        prompt = f"{palette_clause(brand, 'strong')}. {prompt}"
    return prompt, negative
