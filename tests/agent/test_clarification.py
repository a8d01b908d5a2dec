"""The brand's clarifying question fits what clashes, and a reply is read against its offer:
a size none of the brand's formats has was asked about with the palette's offer (outside
tester)."""

from __future__ import annotations

import pytest

from brandloop.agent.clarification import accepts_offer, keeps_asked_size, question
from brandloop.agent.conflicts import find_conflicts
from brandloop.policies.brandkit import load_brand_kit
from tests.agent.helpers import ROOT

ACME = load_brand_kit(ROOT / "examples/brands/acme-coffee.yaml")


@pytest.mark.parametrize(
    ("brief", "size", "offer"),
    [
        (
            "a cup on an orange table",
            (1024, 1024),
            "Should I keep the Acme Coffee palette and use those only as small accents, or "
            "change the brief?",
        ),
        (
            "a cup on a table",
            (768, 1024),
            "Should I use the nearest Acme Coffee format, 1024x1024, instead, or keep 768x1024?",
        ),
        (
            "a cup on a table",
            (2000, 1000),
            "Should I use the nearest Acme Coffee format, 1200x628, instead, or keep 2000x1000?",
        ),
        (
            "a cup on an orange table",
            (768, 1024),
            "Should I keep the Acme Coffee palette, with those colours only as small accents, "
            "and use its nearest format, 1024x1024, or change the brief?",
        ),
    ],
)
def test_the_question_offers_what_fits_the_clash(
    brief: str, size: tuple[int, int], offer: str
) -> None:
    width, height = size
    conflicts = find_conflicts(brief, ACME, width=width, height=height)
    asked = question(conflicts, ACME, size=f"{width}x{height}")
    assert asked == f"Before I spend anything: {conflicts.describe(ACME)}. {offer}"


@pytest.mark.parametrize(
    "reply",
    [
        "yes", "use the nearest format", "the nearest brand format, please", "nearest",
        # an emoji, a question mark or an invisible character around an assent (outside
        # tester: each was read as a revision, and the same question asked again)
        "YES 👍", "yes?", "ok 👌", "\u200byes",
    ],
)  # fmt: skip
def test_a_reply_taking_the_nearest_format_takes_the_offer(reply: str) -> None:
    assert accepts_offer(reply)


@pytest.mark.parametrize("reply", ["the nearest cafe", "yes, and add steam", "keep 768x1024"])
def test_a_reply_saying_more_is_no_offer_taken(reply: str) -> None:
    assert not accepts_offer(reply)


@pytest.mark.parametrize(
    ("reply", "keeps"),
    [
        ("keep 768x1024", True),
        ("Keep the size as asked.", True),
        ("no, keep it", True),
        ("keep 768x1024 and add steam", False),
        ("keep 768x1024 👍", True),
        ("yes", False),
    ],
)
def test_keeping_the_size_asked(reply: str, keeps: bool) -> None:
    assert keeps_asked_size(reply) is keeps
