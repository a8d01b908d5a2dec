"""Diagnosis: from the failed signals of a round to the targeted change for the next round.

Pure functions over plain values so each rule is easy to read and to test:

- palette miss            -> strengthen the palette clause (strict palette first, off-brand
                             colours of the brief moved to the negative prompt); if it is
                             already strong, new seeds
- low sharpness           -> the next model tier up, when there is one; else a detail modifier
- bad exposure            -> a "balanced exposure, even lighting" modifier
- provider errors         -> fall back to the next model tier
- provider refusal / moderation block -> a safety rewrite (never the same prompt again)
- anything else           -> new seeds
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from brandloop.domain import Attempt, Decision
from policies.agent import AgentPolicy

EXPOSURE_MODIFIER = "balanced exposure, even lighting"
DETAIL_MODIFIER = "crisp detail, sharp focus"
SAFETY_MODIFIER = "family-friendly, brand-safe, no people in revealing clothing"


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


def _signal_means(attempts: list[Attempt], name: str) -> float:
    values = [
        a.scores.signals[name].value for a in attempts if a.scores and name in a.scores.signals
    ]
    return round(sum(values) / len(values), 4) if values else 0.0


def diagnose(
    rejected: list[Attempt],
    *,
    emphasis: Literal["normal", "strong"],
    modifiers: list[str],
    model_index: int,
    ladder_size: int,
) -> Replan:
    """Decide the next round's changes from this round's rejected attempts."""
    plan = Replan(emphasis=emphasis, modifiers=list(modifiers), model_index=model_index)
    failed = Counter(name for a in rejected if a.scores for name in a.scores.failed)
    outcomes = Counter(a.outcome for a in rejected)
    can_climb = model_index + 1 < ladder_size

    if outcomes["error"]:
        if can_climb:
            plan.model_index += 1
            plan.decisions.append(
                Decision(
                    node="observe",
                    action="fallback_model",
                    reason=f"{outcomes['error']} provider error(s); falling back to the next model tier",
                )
            )
        else:
            plan.decisions.append(
                Decision(
                    node="observe",
                    action="retry_new_seeds",
                    reason=f"{outcomes['error']} provider error(s) and no higher tier; trying again",
                )
            )
    if outcomes["refused"] or outcomes["blocked"]:
        if SAFETY_MODIFIER not in plan.modifiers:
            plan.modifiers.append(SAFETY_MODIFIER)
        plan.decisions.append(
            Decision(
                node="observe",
                action="safety_rewrite",
                reason=f"{outcomes['refused']} refusal(s), {outcomes['blocked']} moderation block(s); "
                "rewriting the prompt for safety, never retrying it as it was",
            )
        )
    if failed["palette"]:
        signals = {"palette": _signal_means(rejected, "palette")}
        if emphasis == "normal":
            plan.emphasis = "strong"
            plan.decisions.append(
                Decision(
                    node="observe",
                    action="strengthen_palette",
                    reason=f"{failed['palette']} image(s) missed the brand palette; putting a strict "
                    "palette clause first and moving off-brand colours to the negative prompt",
                    signals=signals,
                )
            )
        else:
            plan.decisions.append(
                Decision(
                    node="observe",
                    action="new_seeds",
                    reason=f"{failed['palette']} image(s) missed the palette with the strict clause; new seeds",
                    signals=signals,
                )
            )
    if failed["sharpness"]:
        signals = {"sharpness": _signal_means(rejected, "sharpness")}
        if can_climb and plan.model_index == model_index:
            plan.model_index += 1
            plan.decisions.append(
                Decision(
                    node="observe",
                    action="upgrade_tier",
                    reason=f"{failed['sharpness']} image(s) too soft; moving to a higher-tier model",
                    signals=signals,
                )
            )
        elif DETAIL_MODIFIER not in plan.modifiers:
            plan.modifiers.append(DETAIL_MODIFIER)
            plan.decisions.append(
                Decision(
                    node="observe",
                    action="add_detail",
                    reason=f"{failed['sharpness']} image(s) too soft on the top tier; asking for detail",
                    signals=signals,
                )
            )
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
    if not plan.decisions:
        plan.decisions.append(
            Decision(
                node="observe",
                action="new_seeds",
                reason=f"{len(rejected)} image(s) below the acceptance bar; trying new seeds",
                signals={name: _signal_means(rejected, name) for name in sorted(failed)},
            )
        )
    return plan
