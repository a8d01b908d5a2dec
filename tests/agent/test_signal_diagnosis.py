"""The new signals map to targeted replans: contrast and colourfulness get their modifiers,
a near-duplicate gets new seeds with a variant, and each is said once."""

from __future__ import annotations

import pytest

from brandloop.agent.diagnosis import COLOUR_MODIFIER, CONTRAST_MODIFIER, diagnose
from brandloop.domain import Attempt, Candidate, Scores, Signal

CAND = Candidate(
    id="a1", template="t@1", prompt="p", model="procedural/studio", seed=1, width=64, height=64
)


def rejected(*failing: str) -> Attempt:
    names = ("palette", "sharpness", "exposure", "contrast", "colourfulness", "format", "duplicate")
    signals = {
        n: Signal(
            name=n, value=0.1 if n in failing else 0.9, raw=0.0, passed=n not in failing,
            threshold=0.5, explanation=n,
        )
        for n in names
    }  # fmt: skip
    return Attempt(id="a1", candidate=CAND, outcome="rejected", scores=Scores(signals=signals))


def replan(*failing: str, modifiers: list[str] | None = None):
    return diagnose(
        [rejected(*failing)],
        emphasis="strong",
        modifiers=modifiers or [],
        model_index=1,
        ladder_size=2,
    )


@pytest.mark.parametrize(
    ("signal", "modifier"), [("contrast", CONTRAST_MODIFIER), ("colourfulness", COLOUR_MODIFIER)]
)
def test_contrast_and_colourfulness_add_their_modifier_once(signal, modifier):
    plan = replan(signal)
    assert modifier in plan.modifiers
    assert [d.action for d in plan.decisions] == [f"fix_{signal}"]
    assert plan.decisions[0].signals == {signal: 0.1}
    again = replan(signal, modifiers=[modifier])
    assert again.modifiers.count(modifier) == 1
    assert [d.action for d in again.decisions] == ["new_seeds"]


def test_a_near_duplicate_gets_new_seeds_and_a_variant():
    plan = replan("duplicate")
    assert [d.action for d in plan.decisions] == ["new_seeds_variant"]
    assert plan.model_index == 1 and plan.emphasis == "strong"


def test_format_misses_fall_back_to_new_seeds():
    assert [d.action for d in replan("format").decisions] == ["new_seeds"]
