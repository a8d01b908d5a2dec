"""Colour names and hex codes found in prompt text.

The procedural provider reads a prompt's colours from here so that a palette clause such as
"navy blue and #ff7f50, cream background" changes the pixels; the order of appearance matters to
callers because the renderer gives earlier colours more area.
"""

from __future__ import annotations

import re
from typing import Final

RGB = tuple[int, int, int]

COLOUR_WORDS: Final[dict[str, RGB]] = {
    # multiword names first in spirit; the matcher prefers the longest name anyway
    "navy blue": (0, 0, 128),
    "royal blue": (65, 105, 225),
    "sky blue": (135, 206, 235),
    "forest green": (34, 139, 34),
    "olive green": (107, 142, 35),
    "mint green": (152, 255, 152),
    "lime green": (50, 205, 50),
    "burnt orange": (204, 85, 0),
    "hot pink": (255, 105, 180),
    "dusty rose": (220, 174, 150),
    "off-white": (248, 246, 240),
    "off white": (248, 246, 240),
    "red": (220, 30, 40),
    "crimson": (220, 20, 60),
    "scarlet": (255, 36, 0),
    "maroon": (128, 0, 0),
    "burgundy": (128, 0, 32),
    "ruby": (224, 17, 95),
    "pink": (255, 170, 200),
    "magenta": (255, 0, 255),
    "coral": (255, 127, 80),
    "salmon": (250, 128, 114),
    "peach": (255, 203, 164),
    "orange": (255, 140, 0),
    "amber": (255, 191, 0),
    "rust": (183, 65, 14),
    "terracotta": (204, 78, 92),
    "yellow": (255, 220, 0),
    "mustard": (225, 173, 1),
    "gold": (212, 175, 55),
    "golden": (212, 175, 55),
    "green": (30, 150, 60),
    "emerald": (0, 155, 119),
    "olive": (128, 128, 0),
    "lime": (170, 255, 0),
    "mint": (152, 255, 152),
    "sage": (178, 172, 136),
    "teal": (0, 128, 128),
    "turquoise": (64, 224, 208),
    "cyan": (0, 220, 230),
    "blue": (30, 80, 220),
    "navy": (0, 0, 128),
    "indigo": (75, 0, 130),
    "purple": (128, 40, 160),
    "violet": (143, 0, 255),
    "lavender": (181, 160, 230),
    "lilac": (200, 162, 200),
    "brown": (120, 72, 36),
    "chocolate": (90, 50, 25),
    "tan": (210, 180, 140),
    "beige": (232, 220, 196),
    "sand": (214, 196, 158),
    "khaki": (195, 176, 145),
    "cream": (255, 250, 225),
    "ivory": (255, 255, 240),
    "white": (255, 255, 255),
    "silver": (192, 192, 192),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "charcoal": (54, 69, 79),
    "black": (12, 12, 12),
}

_HEX = r"#[0-9a-fA-F]{6}(?![0-9a-fA-F])"
_NAMES = "|".join(re.escape(name) for name in sorted(COLOUR_WORDS, key=len, reverse=True))
_PATTERN = re.compile(
    rf"\b(?:{_NAMES})\b\s*[(:]?\s*(?P<named>{_HEX})\)?|(?P<hex>{_HEX})|\b(?P<word>{_NAMES})\b",
    re.IGNORECASE,
)


def hex_to_rgb(code: str) -> RGB:
    """``#rrggbb`` to an RGB triple; raises ``ValueError`` on anything else."""
    if not re.fullmatch(_HEX, code):
        raise ValueError(f"{code!r} is not a #rrggbb colour")
    return (int(code[1:3], 16), int(code[3:5], 16), int(code[5:7], 16))


def colour_distance(a: RGB, b: RGB) -> float:
    """Euclidean distance in RGB: crude, but enough to say "these two are the same colour"."""
    return float(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5)


def extract_colours(text: str) -> list[tuple[RGB, str]]:
    """Every colour named in ``text`` as ``(rgb, label)``, in order of first appearance.

    Labels are the lower-cased hex code or colour name as written ("navy blue" wins over
    "navy" because the longest name matches). A colour word directly followed by a hex code
    ("Navy #1e2a5a", "coral (#ff6f59)") is one colour, the hex one, labelled by its code: that
    is how brand palettes are written, and the code is the brand's, the word only a gloss. A
    colour named twice is reported once, at its first mention, because position is what
    carries weight for the renderer.
    """
    found: list[tuple[RGB, str]] = []
    seen: set[RGB] = set()
    for match in _PATTERN.finditer(text):
        code = match.group("named") or match.group("hex")
        if code:
            label = code.lower()
            rgb = hex_to_rgb(label)
        else:
            label = match.group("word").lower()
            rgb = COLOUR_WORDS[label]
        if rgb not in seen:
            seen.add(rgb)
            found.append((rgb, label))
    return found
