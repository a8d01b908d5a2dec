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

#: The CSS Color Module 4 / X11 named colours (public, https://www.w3.org/TR/css-color-4/#named-colors)
#: that the hand-picked words above lack, written as words ("dark slate grey"); each is also
#: matched run together as CSS writes it ("darkslategrey"). Left out: the names that are first a
#: thing in an English brief (snow, linen, wheat, tomato, plum, orchid, thistle, bisque,
#: moccasin, honeydew, seashell, cornsilk, peru), so "a tomato on linen" names no colour; the
#: hand-picked words keep their own values where CSS has the same name.
CSS_COLOUR_WORDS: Final[dict[str, RGB]] = {
    "alice blue": (240, 248, 255),
    "antique white": (250, 235, 215),
    "aqua": (0, 255, 255),
    "aquamarine": (127, 255, 212),
    "azure": (240, 255, 255),
    "blanched almond": (255, 235, 205),
    "blue violet": (138, 43, 226),
    "burlywood": (222, 184, 135),
    "cadet blue": (95, 158, 160),
    "chartreuse": (127, 255, 0),
    "cornflower blue": (100, 149, 237),
    "dark blue": (0, 0, 139),
    "dark cyan": (0, 139, 139),
    "dark goldenrod": (184, 134, 11),
    "dark gray": (169, 169, 169),
    "dark green": (0, 100, 0),
    "dark grey": (169, 169, 169),
    "dark khaki": (189, 183, 107),
    "dark magenta": (139, 0, 139),
    "dark olive green": (85, 107, 47),
    "dark orange": (255, 140, 0),
    "dark orchid": (153, 50, 204),
    "dark red": (139, 0, 0),
    "dark salmon": (233, 150, 122),
    "dark sea green": (143, 188, 143),
    "dark slate blue": (72, 61, 139),
    "dark slate gray": (47, 79, 79),
    "dark slate grey": (47, 79, 79),
    "dark turquoise": (0, 206, 209),
    "dark violet": (148, 0, 211),
    "deep pink": (255, 20, 147),
    "deep sky blue": (0, 191, 255),
    "dim gray": (105, 105, 105),
    "dim grey": (105, 105, 105),
    "dodger blue": (30, 144, 255),
    "firebrick": (178, 34, 34),
    "floral white": (255, 250, 240),
    "fuchsia": (255, 0, 255),
    "gainsboro": (220, 220, 220),
    "ghost white": (248, 248, 255),
    "goldenrod": (218, 165, 32),
    "green yellow": (173, 255, 47),
    "indian red": (205, 92, 92),
    "lavender blush": (255, 240, 245),
    "lawn green": (124, 252, 0),
    "lemon chiffon": (255, 250, 205),
    "light blue": (173, 216, 230),
    "light coral": (240, 128, 128),
    "light cyan": (224, 255, 255),
    "light goldenrod yellow": (250, 250, 210),
    "light gray": (211, 211, 211),
    "light green": (144, 238, 144),
    "light grey": (211, 211, 211),
    "light pink": (255, 182, 193),
    "light salmon": (255, 160, 122),
    "light sea green": (32, 178, 170),
    "light sky blue": (135, 206, 250),
    "light slate gray": (119, 136, 153),
    "light slate grey": (119, 136, 153),
    "light steel blue": (176, 196, 222),
    "light yellow": (255, 255, 224),
    "medium aquamarine": (102, 205, 170),
    "medium blue": (0, 0, 205),
    "medium orchid": (186, 85, 211),
    "medium purple": (147, 112, 219),
    "medium sea green": (60, 179, 113),
    "medium slate blue": (123, 104, 238),
    "medium spring green": (0, 250, 154),
    "medium turquoise": (72, 209, 204),
    "medium violet red": (199, 21, 133),
    "midnight blue": (25, 25, 112),
    "mint cream": (245, 255, 250),
    "misty rose": (255, 228, 225),
    "navajo white": (255, 222, 173),
    "old lace": (253, 245, 230),
    "olive drab": (107, 142, 35),
    "orange red": (255, 69, 0),
    "pale goldenrod": (238, 232, 170),
    "pale green": (152, 251, 152),
    "pale turquoise": (175, 238, 238),
    "pale violet red": (219, 112, 147),
    "papaya whip": (255, 239, 213),
    "peach puff": (255, 218, 185),
    "powder blue": (176, 224, 230),
    "rebecca purple": (102, 51, 153),
    "rosy brown": (188, 143, 143),
    "saddle brown": (139, 69, 19),
    "sandy brown": (244, 164, 96),
    "sea green": (46, 139, 87),
    "sienna": (160, 82, 45),
    "slate blue": (106, 90, 205),
    "slate gray": (112, 128, 144),
    "slate grey": (112, 128, 144),
    "spring green": (0, 255, 127),
    "steel blue": (70, 130, 180),
    "white smoke": (245, 245, 245),
    "yellow green": (154, 205, 50),
}

#: Common paint and fashion names CSS lacks (values from the usual references); spices and
#: foods are left out for the reason above.
_MORE_WORDS: Final[dict[str, RGB]] = {
    "mauve": (224, 176, 255),
    "taupe": (72, 60, 50),
    "ochre": (204, 119, 34),
    "cobalt": (0, 71, 171),
    "cobalt blue": (0, 71, 171),
    "cerulean": (0, 123, 167),
    "periwinkle": (204, 204, 255),
    "vermilion": (227, 66, 52),
    "ultramarine": (18, 10, 143),
    "aubergine": (97, 64, 81),
    "mahogany": (192, 64, 0),
    "ecru": (194, 178, 128),
    "jade": (0, 168, 107),
}

COLOUR_WORDS.update(
    {
        name: rgb
        for name, rgb in {**CSS_COLOUR_WORDS, **_MORE_WORDS}.items()
        if name not in COLOUR_WORDS
    }
)
COLOUR_WORDS.update(
    {
        name.replace(" ", ""): rgb
        for name, rgb in list(COLOUR_WORDS.items())
        if " " in name and name.replace(" ", "") not in COLOUR_WORDS
    }
)

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


def colour_mentions(text: str) -> list[tuple[RGB, str, tuple[int, int]]]:
    """Every mention of a colour in ``text`` as ``(rgb, label, (start, end))``, each one, in
    order: what :func:`extract_colours` reads, with where it is written (a word glossing a
    hex code, "Navy #1e2a5a", is one mention)."""
    found: list[tuple[RGB, str, tuple[int, int]]] = []
    for match in _PATTERN.finditer(text):
        code = match.group("named") or match.group("hex")
        if code:
            label = code.lower()
            rgb = hex_to_rgb(label)
        else:
            label = match.group("word").lower()
            rgb = COLOUR_WORDS[label]
        found.append((rgb, label, match.span()))
    return found


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
    for rgb, label, _ in colour_mentions(text):
        if rgb not in seen:
            seen.add(rgb)
            found.append((rgb, label))
    return found
