"""The brand's clarifying question (conflicts: ``ask``) and how a thread's reply is read
against it: preflight asks, the thread remembers the open question, and a reply that takes the
offer lets the next turn adapt instead of asking again.

The question offers a way on that fits what clashes: for colours, keep the brand palette with
the brief's colours as small accents, or change the brief; for a size none of the brand's
formats has, the nearest brand format instead, or the size as asked; for both, the palette and
the nearest format, or change the brief. A reply that is the offer and nothing more ("yes",
"keep the Acme Coffee palette and use orange only as a small accent", "use the nearest
format") is an :func:`accepts_offer`, and the asked request runs again with it (the nearest
format in place of the size: :func:`offered_format`); to a size's question, "keep 768x1024"
(:func:`keeps_asked_size`) runs it at the size asked. Any other reply ("make it teal instead")
is a revision of the brief like any follow-up, read by ``brandloop.agent.revision``; a reply
asking for no change ("what formats do you have?": ``brandloop.agent.revision.asks_nothing``)
is no turn at all, and the question stays open.
"""

from __future__ import annotations

import re

from brandloop.agent.conflicts import Conflicts, find_conflicts
from brandloop.agent.revision import plain
from brandloop.domain import BrandKit

__all__ = ["accepts_offer", "keeps_asked_size", "offered_format", "question"]

_PARTS = re.compile(r"\s*(?:[,;.!?]|\band\b|\bthen\b)\s*", re.IGNORECASE)
_POLITE = re.compile(
    r"^(?:please|just|then|so|well|alright|all right)\s+|\s+(?:please|thanks|thank you)$",
    re.IGNORECASE,
)
#: the parts a reply taking the offer is made of: assent, keeping the palette, the brief's
#: colours as accents - each part must be one of them, or the reply is read as a revision
_OFFER = re.compile(
    r"(?:yes|yeah|yep|yup|ok|okay|sure|fine|please|please do|go ahead|go for it|do that|"
    r"do it|sounds good|that works|agreed|thanks|thank you|the first|the first one|"
    r"(?:use )?(?:the |its )?nearest(?:(?: \S+)? (?:format|size))?(?: instead)?|"
    r"keep (?:\S+ ){0,4}?(?:palette|colou?rs)(?: dominant)?(?: as it is)?|"
    r"(?:use|keep|make|have|leave) (?:\S+ ){0,6}?(?:only )?as (?:an? )?"
    r"(?:small |little |subtle |minor )?accents?(?: only)?|"
    r"(?:\S+ ){0,3}?(?:as )?(?:an? )?(?:small |little |subtle )?accents? (?:are |is )?"
    r"(?:fine|ok|okay|good)|accents? only)",
    re.IGNORECASE,
)


#: a reply to a size's question keeping the size asked ("keep 768x1024", "keep the size")
_KEEP_SIZE = re.compile(
    r"(?:no,?\s+)?keep\s+(?:it|the\s+(?:size|format)|\d{2,4}\s*x\s*\d{2,4})"
    r"(?:\s+as\s+(?:it\s+is|asked))?(?:,?\s+please)?[.!]?",
    re.IGNORECASE,
)


def question(conflicts: Conflicts, brand: BrandKit, *, size: str) -> str:
    """What preflight asks when the brand's policy is ``ask``, offering what fits the clash:
    a size's question once offered the palette (outside tester). ``size``: the one asked.
    The offer in it is what :func:`accepts_offer` recognises."""
    asked = f"Before I spend anything: {conflicts.describe(brand)}."
    colours = bool(conflicts.off_palette or conflicts.forbidden)
    nearest = conflicts.nearest_format if conflicts.format else None
    if nearest is None:
        return (
            f"{asked} Should I keep the {brand.name} palette and use those only as small "
            "accents, or change the brief?"
        )
    if not colours:
        return f"{asked} Should I use the nearest {brand.name} format, {nearest}, instead, or keep {size}?"
    return (
        f"{asked} Should I keep the {brand.name} palette, with those colours only as small "
        f"accents, and use its nearest format, {nearest}, or change the brief?"
    )


def offered_format(brief: str, brand: BrandKit, *, width: int, height: int) -> str | None:
    """The brand format a reply taking the offer runs at: the nearest one, when the asked
    size is none of the brand's; None when the size was not what clashed."""
    conflicts = find_conflicts(brief, brand, width=width, height=height)
    return conflicts.nearest_format if conflicts.format else None


def keeps_asked_size(reply: str) -> bool:
    """Whether ``reply`` keeps the size a size's question asked about, and says nothing else."""
    return _KEEP_SIZE.fullmatch(plain(reply).strip()) is not None


def accepts_offer(reply: str) -> bool:
    """Whether ``reply`` takes the question's offer (keep the palette, the brief's colours as
    accents) and says nothing else; a reply that also asks for a change is a revision."""
    # read as the revision rules read it: "YES 👍" is "yes" (outside tester: a revision)
    parts = [p for p in _PARTS.split(plain(reply).strip().lower()) if p.strip()]
    if not parts:
        return False
    for part in parts:
        text = part.strip(" \"'")
        for _ in range(2):
            text = _POLITE.sub("", text).strip()
        if not _OFFER.fullmatch(text):
            return False
    return True
