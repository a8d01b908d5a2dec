"""Diagnosis: from the failed signals of a round to the targeted change for the next round.

Pure functions over plain values so each rule is easy to read and to test:

- palette miss            -> strengthen the palette clause (brand palette first, off-brand
                             colours of the brief moved to the negative prompt); if it is
                             already strong, new seeds
- low sharpness           -> the next model tier up, when there is one and the soft model is
                             not usually sharp for this brand (so the soft image was not bad
                             luck); else the model's next quality setting when that buys more
                             sharp images per dollar than a new seed on the current one; else
                             new seeds
- bad exposure            -> a "balanced exposure, even lighting" modifier
- low contrast / colour   -> a tonal-range or colour modifier
- duplicates              -> new seeds and a variant modifier (composition, angle, framing)
- provider errors / open circuit breaker -> fall back: the failing model is excluded for the
                             rest of the run; the planner ranks every other usable model, of
                             any tier and provider, by expected accepted images per dollar
- provider refusal / moderation block -> a safety rewrite (never the same prompt again)
- anything else           -> new seeds

A repair that already failed twice on the same signal in this run is not tried again; when no
repair is left for a failed signal the run stops (``stop_unpromising``) and says why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from brandloop.domain import Attempt, Decision, ModelSpec
from brandloop.policies.agent import AgentPolicy

EXPOSURE_MODIFIER = "balanced exposure, even lighting"
CONTRAST_MODIFIER = "full tonal range, clear contrast"
COLOUR_MODIFIER = "rich colour in the brand palette"
SAFETY_MODIFIER = "family-friendly, brand-safe, no people in revealing clothing"
SAFETY_MODIFIERS = (SAFETY_MODIFIER, "abstract product still life, no people, no text")
VARIANT_MODIFIERS = (
    "alternative composition",
    "different camera angle",
    "wider framing",
    "close-up framing",
)
#: A model that makes sharp images at least this often for the brand had bad luck, not a flaw.
USUALLY_SHARP = 0.5
DUPLICATE_SIGNALS = frozenset({"duplicate", "diversity", "novelty"})
BREAKER_ERRORS = ("ProviderUnavailableError", "circuit")

#: the error of an attempt whose call's outcome is unknown from an earlier process
NOT_SENT_AGAIN = "this call's outcome is unknown (it may have been billed): not paid again"


def quality_index(spec: ModelSpec, boost: int) -> int | None:
    """The index into ``spec.qualities`` ``boost`` steps above its default, if there is one."""
    if not spec.qualities or boost <= 0:
        return None
    base = (
        spec.qualities.index(spec.default_quality) if spec.default_quality in spec.qualities else 0
    )
    target = base + boost
    return target if target < len(spec.qualities) else None


def is_accepted(attempt: Attempt, policy: AgentPolicy) -> bool:
    if attempt.outcome != "pending" or attempt.scores is None:
        return False
    if policy.require_all_signals and attempt.scores.failed:
        return False
    return attempt.scores.composite >= policy.accept_composite


@dataclass
class Replan:
    emphasis: Literal["normal", "strong"]
    modifiers: list[str]
    model_index: int
    decisions: list[Decision] = field(default_factory=list)
    excluded_models: list[str] = field(default_factory=list)
    stop: str | None = None
    quality_boost: int = 0


def _signal_means(attempts: list[Attempt], name: str) -> float:
    values = [
        a.scores.signals[name].value for a in attempts if a.scores and name in a.scores.signals
    ]
    return round(sum(values) / len(values), 4) if values else 0.0


def _shortfall(
    rejected: list[Attempt], failed: Counter[str], accept_composite: float | None
) -> str:
    """What kept the images out, by name: each failed signal's mean against its threshold
    ("similarity 0.31 < 0.50"), else the composite against the bar."""
    parts = []
    for name in sorted(failed):
        thresholds = [
            a.scores.signals[name].threshold
            for a in rejected
            if a.scores and name in a.scores.signals
        ]
        bar = f" < {max(thresholds):.2f}" if thresholds else ""
        parts.append(f"{name} {_signal_means(rejected, name):.2f}{bar}")
    if parts:
        return ", ".join(parts)
    composites = [a.scores.composite for a in rejected if a.scores]
    mean = sum(composites) / len(composites) if composites else 0.0
    bar = f" < {accept_composite:.2f}" if accept_composite is not None else ""
    return f"composite {mean:.2f}{bar}"


def _decide(plan: Replan, action: str, reason: str, signals: dict[str, float]) -> None:
    plan.decisions.append(Decision(node="observe", action=action, reason=reason, signals=signals))


def _give_up(
    plan: Replan,
    signal: str,
    count: int,
    exhausted: frozenset[tuple[str, str]] | set[tuple[str, str]],
    signals: dict[str, float],
) -> None:
    """No repair left for ``signal``: stop and name what was tried."""
    tried = sorted(action for action, sig in exhausted if sig == signal)
    plan.stop = (
        f"{count} image(s) failed {signal} again; {', '.join(tried)} already failed twice on "
        f"{signal} in this run and no other repair is left for it"
    )
    plan.decisions.append(
        Decision(node="observe", action="stop_unpromising", reason=plan.stop, signals=signals)
    )


def diagnose(
    rejected: list[Attempt],
    *,
    emphasis: Literal["normal", "strong"],
    modifiers: list[str],
    model_index: int,
    ladder_size: int,
    excluded_models: list[str] | None = None,
    duplicates: int = 0,
    quality_boost: int = 0,
    can_raise_quality: bool = False,
    exhausted: frozenset[tuple[str, str]] | set[tuple[str, str]] = frozenset(),
    sharp_rate: float = 0.0,
    higher: Sequence[str] | None = None,
    accept_composite: float | None = None,
) -> Replan:
    """Decide the next round's changes from this round's rejected attempts.

    ``duplicates`` counts images of the round identical (or near-identical) to another image
    of the run; a failed signal named in ``DUPLICATE_SIGNALS`` counts as well.
    ``can_raise_quality``: the model has a higher quality setting *and* it pays (more sharp
    images per dollar than a new seed; see ``agent/repairs.py``). ``exhausted``: (action,
    signal) pairs that already failed twice in this run. ``sharp_rate``: how often the soft
    image's model makes sharp images for this brand (0 when unknown). ``higher``: the ids of
    the usable models (provider present, breaker closed) above ``model_index``; when given, a
    climb counts only if one of them is not excluded, so an upgrade is never decided onto a
    model the run cannot call. ``accept_composite``: the bar a
    new-seeds decision names when no single signal failed.
    """
    plan = Replan(
        emphasis=emphasis,
        modifiers=list(modifiers),
        model_index=model_index,
        excluded_models=list(excluded_models or []),
        quality_boost=quality_boost,
    )
    failed = Counter(name for a in rejected if a.scores for name in a.scores.failed)
    outcomes = Counter(a.outcome for a in rejected)

    # a call whose outcome was lost before this process (a run killed mid-call, then resumed)
    # is not sent again: that says nothing about the model, so it is no reason to leave it
    lost = [a for a in rejected if a.outcome == "error" and a.error == NOT_SENT_AGAIN]
    outcomes["error"] -= len(lost)
    if outcomes["error"]:
        errored = sorted(
            {a.candidate.model for a in rejected if a.outcome == "error" and a not in lost}
        )
        breaker = any(marker in (a.error or "") for a in rejected for marker in BREAKER_ERRORS)
        for model in errored:
            if model not in plan.excluded_models:
                plan.excluded_models.append(model)
        cause = "circuit breaker open" if breaker else "provider error(s)"
        plan.decisions.append(
            Decision(
                node="observe",
                action="fallback_model",
                reason=f"{outcomes['error']} attempt(s) failed ({cause}) on "
                f"{', '.join(errored)}; excluding it for this run and falling back to the "
                "usable model with the most expected accepted images per dollar",
                signals={"errors": float(outcomes["error"])},
            )
        )
    if outcomes["refused"] or outcomes["blocked"]:
        rewrite = next((m for m in SAFETY_MODIFIERS if m not in plan.modifiers), None)
        counts = {"refused": float(outcomes["refused"]), "blocked": float(outcomes["blocked"])}
        if rewrite is None:
            plan.stop = (
                f"{outcomes['refused']} refusal(s), {outcomes['blocked']} moderation block(s) "
                "after every safety rewrite; stopping rather than retrying the same prompt"
            )
            plan.decisions.append(
                Decision(node="observe", action="stop_refused", reason=plan.stop, signals=counts)
            )
        else:
            plan.modifiers.append(rewrite)
            plan.decisions.append(
                Decision(
                    node="observe",
                    action="safety_rewrite",
                    reason=f"{outcomes['refused']} refusal(s), {outcomes['blocked']} moderation "
                    f"block(s); rewriting the prompt for safety ({rewrite}), never retrying it as it was",
                    signals=counts,
                )
            )
    if failed["palette"]:
        signals = {"palette": _signal_means(rejected, "palette")}
        if emphasis == "normal" and ("strengthen_palette", "palette") not in exhausted:
            plan.emphasis = "strong"
            plan.decisions.append(
                Decision(
                    node="observe",
                    action="strengthen_palette",
                    reason=f"{failed['palette']} image(s) missed the brand palette; putting the "
                    "brand palette first and moving off-brand colours to the negative prompt",
                    signals=signals,
                )
            )
        elif ("new_seeds", "palette") not in exhausted:
            _decide(
                plan,
                "new_seeds",
                f"{failed['palette']} image(s) missed the palette with the palette first; "
                "new seeds",
                signals,
            )
        else:
            _give_up(plan, "palette", failed["palette"], exhausted, signals)
    if failed["sharpness"]:
        signals = {"sharpness": _signal_means(rejected, "sharpness")}
        can_climb = model_index + 1 < ladder_size
        if higher is not None:  # after this round's exclusions, so never onto a model just lost
            can_climb = any(m not in plan.excluded_models for m in higher)
        if (
            can_climb
            and sharp_rate < USUALLY_SHARP
            and plan.model_index == model_index
            and ("upgrade_tier", "sharpness") not in exhausted
        ):
            plan.model_index += 1
            _decide(
                plan,
                "upgrade_tier",
                f"{failed['sharpness']} image(s) too soft; moving to a higher-tier model",
                signals,
            )
        elif can_raise_quality and ("raise_quality", "sharpness") not in exhausted:
            plan.quality_boost += 1
            _decide(
                plan,
                "raise_quality",
                f"{failed['sharpness']} image(s) too soft; the model's next quality setting "
                "buys more sharp images per dollar than a new seed",
                signals,
            )
        elif ("new_seeds", "sharpness") not in exhausted:
            _decide(
                plan,
                "new_seeds",
                f"{failed['sharpness']} image(s) too soft; a higher quality setting does not "
                "pay for itself here, so new seeds on the same setting",
                signals,
            )
        else:
            _give_up(plan, "sharpness", failed["sharpness"], exhausted, signals)
    if failed["exposure"] and EXPOSURE_MODIFIER in plan.modifiers:
        signals = {"exposure": _signal_means(rejected, "exposure")}
        if ("new_seeds", "exposure") not in exhausted:
            _decide(
                plan,
                "new_seeds",
                f"{failed['exposure']} image(s) still badly exposed; new seeds",
                signals,
            )
        else:
            _give_up(plan, "exposure", failed["exposure"], exhausted, signals)
    if failed["exposure"] and EXPOSURE_MODIFIER not in plan.modifiers:
        plan.modifiers.append(EXPOSURE_MODIFIER)
        plan.decisions.append(
            Decision(
                node="observe",
                action="fix_exposure",
                reason=f"{failed['exposure']} image(s) badly exposed; asking for balanced exposure",
                signals={"exposure": _signal_means(rejected, "exposure")},
            )
        )
    for name, modifier, what in (
        ("contrast", CONTRAST_MODIFIER, "flat, low contrast"),
        ("colourfulness", COLOUR_MODIFIER, "nearly grey"),
    ):
        if failed[name] and modifier not in plan.modifiers:
            plan.modifiers.append(modifier)
            plan.decisions.append(
                Decision(
                    node="observe",
                    action=f"fix_{name}",
                    reason=f"{failed[name]} image(s) {what}; asking for {modifier}",
                    signals={name: _signal_means(rejected, name)},
                )
            )
    duplicate_count = duplicates + sum(failed[name] for name in DUPLICATE_SIGNALS)
    if duplicate_count:
        variant = next((m for m in VARIANT_MODIFIERS if m not in plan.modifiers), None)
        if variant is not None:
            plan.modifiers.append(variant)
        plan.decisions.append(
            Decision(
                node="observe",
                action="new_seeds_variant",
                reason=f"{duplicate_count} duplicate image(s); new seeds"
                + (f" and a variant modifier ({variant})" if variant else ""),
                signals={"duplicates": float(duplicate_count)},
            )
        )
    if not plan.decisions:
        plan.decisions.append(
            Decision(
                node="observe",
                action="new_seeds",
                reason=f"{len(rejected)} image(s) below the acceptance bar "
                f"({_shortfall(rejected, failed, accept_composite)}); trying new seeds",
                signals={name: _signal_means(rejected, name) for name in sorted(failed)},
            )
        )
    return plan
