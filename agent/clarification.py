"""The brand's clarifying question (conflicts: ``ask``) and how a thread's reply is read
against it: preflight asks, the thread remembers the open question, and a reply that takes the
offer lets the next turn adapt instead of asking again.

The question offers two ways on: keep the brand palette with the brief's colours as small
accents, or change the brief. A reply that is the offer and nothing more ("yes", "keep the
Acme Coffee palette and use orange only as a small accent") is an :func:`accepts_offer`; any
other reply ("make it teal instead") is a revision of the brief like any follow-up, read by
``brandloop.agent.revision``.
"""

from __future__ import annotations

import re

__all__ = ["accepts_offer", "question"]

_PARTS = re.compile(r"\s*(?:[,;.!]|\band\b|\bthen\b)\s*", re.IGNORECASE)
_POLITE = re.compile(
    r"^(?:please|just|then|so|well|alright|all right)\s+|\s+(?:please|thanks|thank you)$",
    re.IGNORECASE,
)
#: the parts a reply taking the offer is made of: assent, keeping the palette, the brief's
#: colours as accents - each part must be one of them, or the reply is read as a revision
_OFFER = re.compile(
    r"(?:yes|yeah|yep|yup|ok|okay|sure|fine|please|please do|go ahead|go for it|do that|"
    r"do it|sounds good|that works|agreed|thanks|thank you|the first|the first one|"
    r"keep (?:\S+ ){0,4}?(?:palette|colou?rs)(?: dominant)?(?: as it is)?|"
    r"(?:use|keep|make|have|leave) (?:\S+ ){0,6}?(?:only )?as (?:an? )?"
    r"(?:small |little |subtle |minor )?accents?(?: only)?|"
    r"(?:\S+ ){0,3}?(?:as )?(?:an? )?(?:small |little |subtle )?accents? (?:are |is )?"
    r"(?:fine|ok|okay|good)|accents? only)",
    re.IGNORECASE,
)


def question(conflict: str, brand: str) -> str:
    """What preflight asks when the brand's policy is ``ask``; ``conflict`` says what clashes
    with the kit. The offer in it is what :func:`accepts_offer` recognises."""
    return (
        f"Before I spend anything: {conflict}. Should I keep the {brand} palette and use those "
        "only as small accents, or change the brief?"
    )


def accepts_offer(reply: str) -> bool:
    """Whether ``reply`` takes the question's offer (keep the palette, the brief's colours as
    accents) and says nothing else; a reply that also asks for a change is a revision."""
    parts = [p for p in _PARTS.split(reply.strip().lower()) if p.strip()]
    if not parts:
        return False
    for part in parts:
        text = part.strip(" \"'")
        for _ in range(2):
            text = _POLITE.sub("", text).strip()
        if not _OFFER.fullmatch(text):
            return False
    return True
