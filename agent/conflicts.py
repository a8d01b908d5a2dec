"""Pre-flight conflict check: what in a brief the brand kit cannot honour, found before spending.

Pure functions over the brief, the brand kit and the requested size, so each rule is easy to
test. Forbidden *terms* are intake's job (text moderation refuses them); here:

- colours the brief names that are far (ΔE2000) from every brand colour, and are not named
  like one of them ("navy" for a brand whose navy is #1e3a8a is the brand's own colour);
- colours the brief names that are (near) one of the brand's forbidden colours;
- a format (aspect ratio) none of the brand's formats has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import log

from brandloop.domain import BrandKit, parse_size
from brandloop.tools.composer import OFF_PALETTE_DELTA_E, brand_colour_names
from brandloop.tools.providers.colours import RGB, extract_colours
from brandloop.tools.scoring.colour import nearest_delta_e

#: A named colour this close to a forbidden brand colour is that colour.
FORBIDDEN_DELTA_E = 12.0
#: Aspect ratios within this relative difference are the same format.
ASPECT_TOLERANCE = 0.03


@dataclass(frozen=True)
class NamedColour:
    label: str
    hex: str
    delta_e: float  # to the nearest brand colour


@dataclass
class Conflicts:
    off_palette: list[NamedColour] = field(default_factory=list)
    forbidden: list[NamedColour] = field(default_factory=list)
    format: str | None = None
    #: the brand's format whose aspect ratio is nearest the one asked, when ``format`` is set
    nearest_format: str | None = None

    def __bool__(self) -> bool:
        return bool(self.off_palette or self.forbidden or self.format)

    def describe(self, brand: BrandKit) -> str:
        parts = []
        if self.off_palette:
            named = ", ".join(f"{c.label} (ΔE {c.delta_e:.0f})" for c in self.off_palette)
            parts.append(f"the brief names colours outside the {brand.name} palette: {named}")
        if self.forbidden:
            named = ", ".join(c.label for c in self.forbidden)
            parts.append(f"it names colours {brand.name} forbids: {named}")
        if self.format:
            parts.append(self.format)
        return "; ".join(parts)


def _hex(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def find_conflicts(brief: str, brand: BrandKit, *, width: int, height: int) -> Conflicts:
    """What the brief asks for that the brand kit does not allow."""
    found = Conflicts()
    own_names = brand_colour_names(brand)
    palette = [c.hex for c in brand.palette]
    for rgb, label in extract_colours(brief):
        if (
            brand.forbidden_colours
            and nearest_delta_e(rgb, brand.forbidden_colours) <= FORBIDDEN_DELTA_E
        ):
            found.forbidden.append(NamedColour(label, _hex(rgb), nearest_delta_e(rgb, palette)))
            continue
        if label in own_names:
            continue
        distance = nearest_delta_e(rgb, palette)
        if distance > OFF_PALETTE_DELTA_E:
            found.off_palette.append(NamedColour(label, _hex(rgb), distance))
    if brand.default_formats:
        ratios = [w / h for w, h in (parse_size(f) for f in brand.default_formats)]
        wanted = width / height
        if all(abs(wanted / r - 1) > ASPECT_TOLERANCE for r in ratios):
            found.format = (
                f"{width}x{height} is not one of {brand.name}'s formats "
                f"({', '.join(brand.default_formats)})"
            )
            nearest = min(
                zip(ratios, brand.default_formats, strict=True),
                key=lambda r: abs(log(wanted / r[0])),
            )
            found.nearest_format = nearest[1]
    return found
