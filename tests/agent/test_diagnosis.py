"""Each replanning rule: which failed signal leads to which targeted change."""

from __future__ import annotations

from agent.diagnosis import (
    DETAIL_MODIFIER,
    EXPOSURE_MODIFIER,
    SAFETY_MODIFIER,
    diagnose,
    is_accepted,
)
from brandloop.domain import Attempt, Candidate, Scores, Signal
from policies.agent import AgentPolicy

CAND = Candidate(
    id="c", template="t@1", prompt="p", model="procedural/draft", seed=1, width=64, height=64
)


def scored(**passes: bool) -> Attempt:
    signals = {
        name: Signal(
            name=name, value=0.9 if ok else 0.2, raw=0.0, passed=ok, threshold=0.5, explanation=""
        )
        for name, ok in passes.items()
    }
    composite = sum(s.value for s in signals.values()) / len(signals)
    return Attempt(
        id="a",
        candidate=CAND,
        outcome="pending",
        scores=Scores(signals=signals, composite=composite),
    )


def test_acceptance_needs_every_signal_and_the_composite() -> None:
    policy = AgentPolicy(accept_composite=0.6)
    assert is_accepted(scored(palette=True, sharpness=True, exposure=True), policy)
    assert not is_accepted(scored(palette=False, sharpness=True, exposure=True), policy)
    assert not is_accepted(Attempt(id="a", candidate=CAND, outcome="error"), policy)


def test_palette_miss_strengthens_the_palette_clause_then_tries_new_seeds() -> None:
    first = diagnose(
        [scored(palette=False, sharpness=True)],
        emphasis="normal",
        modifiers=[],
        model_index=0,
        ladder_size=2,
    )
    assert first.emphasis == "strong"
    assert [d.action for d in first.decisions] == ["strengthen_palette"]
    assert first.decisions[0].signals == {"palette": 0.2}
    again = diagnose(
        [scored(palette=False, sharpness=True)],
        emphasis="strong",
        modifiers=[],
        model_index=0,
        ladder_size=2,
    )
    assert [d.action for d in again.decisions] == ["new_seeds"]


def test_low_sharpness_climbs_a_tier_and_on_the_top_tier_asks_for_detail() -> None:
    plan = diagnose(
        [scored(sharpness=False)], emphasis="normal", modifiers=[], model_index=0, ladder_size=2
    )
    assert plan.model_index == 1 and plan.decisions[0].action == "upgrade_tier"
    top = diagnose(
        [scored(sharpness=False)], emphasis="normal", modifiers=[], model_index=1, ladder_size=2
    )
    assert top.model_index == 1 and DETAIL_MODIFIER in top.modifiers


def test_bad_exposure_adds_the_balanced_exposure_modifier_once() -> None:
    plan = diagnose(
        [scored(exposure=False)], emphasis="normal", modifiers=[], model_index=0, ladder_size=1
    )
    assert plan.modifiers == [EXPOSURE_MODIFIER]
    again = diagnose(
        [scored(exposure=False)],
        emphasis="normal",
        modifiers=plan.modifiers,
        model_index=0,
        ladder_size=1,
    )
    assert again.modifiers == [EXPOSURE_MODIFIER]


def test_provider_errors_fall_back_to_the_next_tier() -> None:
    error = Attempt(id="a", candidate=CAND, outcome="error", error="503")
    plan = diagnose([error], emphasis="normal", modifiers=[], model_index=0, ladder_size=3)
    assert plan.model_index == 1 and plan.decisions[0].action == "fallback_model"


def test_refusals_get_a_safety_rewrite_not_the_same_prompt() -> None:
    refused = Attempt(id="a", candidate=CAND, outcome="refused", error="moderation_blocked")
    plan = diagnose([refused], emphasis="normal", modifiers=[], model_index=0, ladder_size=1)
    assert SAFETY_MODIFIER in plan.modifiers
    assert plan.decisions[0].action == "safety_rewrite"


def test_low_composite_with_every_signal_passing_tries_new_seeds() -> None:
    plan = diagnose(
        [scored(palette=True)], emphasis="normal", modifiers=[], model_index=0, ladder_size=1
    )
    assert [d.action for d in plan.decisions] == ["new_seeds"]
