"""Each replanning rule: which failed signal leads to which targeted change."""

from __future__ import annotations

from brandloop.agent.diagnosis import (
    EXPOSURE_MODIFIER,
    SAFETY_MODIFIER,
    VARIANT_MODIFIERS,
    diagnose,
    is_accepted,
    quality_index,
)
from brandloop.domain import Attempt, Candidate, ModelSpec, Scores, Signal
from brandloop.policies.agent import AgentPolicy

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


def test_low_sharpness_climbs_a_tier_and_on_the_top_tier_tries_new_seeds() -> None:
    plan = diagnose(
        [scored(sharpness=False)], emphasis="normal", modifiers=[], model_index=0, ladder_size=2
    )
    assert plan.model_index == 1 and plan.decisions[0].action == "upgrade_tier"
    top = diagnose(
        [scored(sharpness=False)], emphasis="normal", modifiers=[], model_index=1, ladder_size=2
    )
    # no quality setting that pays: a phrase would not sharpen anything, a new seed might
    assert top.model_index == 1 and top.modifiers == []
    assert [d.action for d in top.decisions] == ["new_seeds"]
    assert top.decisions[0].signals.keys() == {"sharpness"}


def test_a_soft_image_never_climbs_onto_a_tier_the_run_cannot_call() -> None:
    higher = ["procedural/studio"]
    kwargs = {"emphasis": "normal", "modifiers": [], "model_index": 0, "ladder_size": 2}
    lost = diagnose(
        [scored(sharpness=False)], **kwargs, higher=higher, excluded_models=["procedural/studio"]
    )
    assert lost.model_index == 0 and [d.action for d in lost.decisions] == ["new_seeds"]
    down = diagnose([scored(sharpness=False)], **kwargs, higher=[])  # breaker open
    assert [d.action for d in down.decisions] == ["new_seeds"]
    free = diagnose([scored(sharpness=False)], **kwargs, higher=higher)
    assert free.model_index == 1 and [d.action for d in free.decisions] == ["upgrade_tier"]


def test_a_repair_that_failed_twice_on_a_signal_is_not_tried_again() -> None:
    stuck = diagnose(
        [scored(sharpness=False)],
        emphasis="normal",
        modifiers=[],
        model_index=1,
        ladder_size=2,
        exhausted={("new_seeds", "sharpness")},
    )
    assert stuck.stop is not None and stuck.decisions[-1].action == "stop_unpromising"
    assert "new_seeds already failed twice on sharpness" in stuck.stop
    palette = diagnose(
        [scored(palette=False)],
        emphasis="strong",
        modifiers=[],
        model_index=0,
        ladder_size=1,
        exhausted={("new_seeds", "palette")},
    )
    assert palette.stop is not None and "palette" in palette.stop
    fine = diagnose(
        [scored(palette=False)],
        emphasis="strong",
        modifiers=[],
        model_index=0,
        ladder_size=1,
        exhausted={("new_seeds", "sharpness")},
    )
    assert fine.stop is None and [d.action for d in fine.decisions] == ["new_seeds"]


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


def test_provider_errors_exclude_the_model_and_leave_the_choice_to_the_planner() -> None:
    error = Attempt(id="a", candidate=CAND, outcome="error", error="503")
    plan = diagnose([error], emphasis="normal", modifiers=[], model_index=0, ladder_size=1)
    # not "the next tier up": the planner ranks every usable model, any tier, any provider
    assert plan.model_index == 0 and plan.decisions[0].action == "fallback_model"
    assert plan.excluded_models == ["procedural/draft"]


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


def test_provider_errors_exclude_the_failing_model_and_name_an_open_breaker() -> None:
    error = Attempt(
        id="a",
        candidate=CAND,
        outcome="error",
        error="ProviderUnavailableError: circuit open for procedural",
    )
    plan = diagnose([error], emphasis="normal", modifiers=[], model_index=0, ladder_size=3)
    assert plan.excluded_models == ["procedural/draft"]
    assert plan.model_index == 0
    assert "circuit breaker open" in plan.decisions[0].reason
    assert plan.decisions[0].signals == {"errors": 1.0}


def test_duplicates_get_new_seeds_and_a_variant_modifier() -> None:
    plan = diagnose(
        [scored(palette=True)],
        emphasis="normal",
        modifiers=[],
        model_index=0,
        ladder_size=1,
        duplicates=2,
    )
    assert [d.action for d in plan.decisions] == ["new_seeds_variant"]
    assert plan.modifiers == [VARIANT_MODIFIERS[0]]
    again = diagnose(
        [scored(duplicate=False)],
        emphasis="normal",
        modifiers=plan.modifiers,
        model_index=0,
        ladder_size=1,
    )
    assert again.modifiers == [VARIANT_MODIFIERS[0], VARIANT_MODIFIERS[1]]


def test_a_second_refusal_gets_a_different_rewrite_and_a_third_stops() -> None:
    refused = Attempt(id="a", candidate=CAND, outcome="refused", error="content_policy")
    first = diagnose([refused], emphasis="normal", modifiers=[], model_index=0, ladder_size=1)
    second = diagnose(
        [refused], emphasis="normal", modifiers=first.modifiers, model_index=0, ladder_size=1
    )
    assert second.modifiers != first.modifiers and second.stop is None
    third = diagnose(
        [refused], emphasis="normal", modifiers=second.modifiers, model_index=0, ladder_size=1
    )
    assert third.stop is not None and third.decisions[-1].action == "stop_refused"
    assert third.modifiers == second.modifiers


def test_low_sharpness_on_the_top_tier_raises_the_quality_setting_when_there_is_one() -> None:
    plan = diagnose(
        [scored(sharpness=False)],
        emphasis="normal",
        modifiers=[],
        model_index=1,
        ladder_size=2,
        can_raise_quality=True,
    )
    assert plan.quality_boost == 1 and plan.decisions[0].action == "raise_quality"
    assert plan.modifiers == []
    spec = ModelSpec(
        id="o/img",
        provider="o",
        model="img",
        price_per_image_usd=0.04,
        qualities=["low", "medium", "high"],
        default_quality="medium",
    )
    assert quality_index(spec, 1) == 2 and quality_index(spec, 2) is None
    assert quality_index(spec.model_copy(update={"qualities": []}), 1) is None
