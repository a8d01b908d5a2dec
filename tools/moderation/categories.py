"""The moderation categories every layer reports in (lexical, semantic, hosted, image).

Content categories are what an image must not show; ``sexual/minors`` is the absolute line
(no policy, threshold or role can allow it). The others say why a text was not checked
(``empty``, ``length``) or name a check that is not about content (``profanity``).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

ContentCategory = Literal[
    "sexual",
    "sexual/minors",
    "violence",
    "hate",
    "self_harm",
    "weapons",
    "drugs",
    "brand_forbidden",
]

SEXUAL: Final = "sexual"
SEXUAL_MINORS: Final = "sexual/minors"
VIOLENCE: Final = "violence"
HATE: Final = "hate"
SELF_HARM: Final = "self_harm"
WEAPONS: Final = "weapons"
DRUGS: Final = "drugs"
BRAND_FORBIDDEN: Final = "brand_forbidden"
PROFANITY: Final = "profanity"
EMPTY: Final = "empty"
LENGTH: Final = "length"

CONTENT_CATEGORIES: Final[tuple[str, ...]] = get_args(ContentCategory)
#: What the semantic classifier scores: every content category but the brand's own terms.
SEMANTIC_CATEGORIES: Final[tuple[str, ...]] = tuple(
    c for c in CONTENT_CATEGORIES if c != BRAND_FORBIDDEN
)
