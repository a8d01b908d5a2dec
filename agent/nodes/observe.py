"""observe: accept what meets the bar, then stop, or diagnose and set up the next round."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from brandloop.agent.context import RunContext
from brandloop.agent.diagnosis import diagnose, is_accepted, quality_index
from brandloop.agent.repairs import (
    failed_twice,
    judge,
    quality_pays,
    record,
    repairs_of,
    signal_pass_rates,
)
from brandloop.agent.state import RunState
from brandloop.domain import Attempt, Decision, ModelSpec
from brandloop.policies.catalog import image_price
from brandloop.registry import crud
from brandloop.registry.types import usd
from brandloop.tools.providers.resilience import circuit_open


def _duplicates(state: RunState, batch: list[Attempt]) -> int:
    """Images of this round whose bytes another attempt of the run already produced."""
    batch_ids = {a.id for a in batch}
    seen = {
        a.artifact_sha256
        for a in state.get("attempts", {}).values()
        if a.id not in batch_ids and a.artifact_sha256
    }
    count = 0
    for attempt in batch:
        if attempt.artifact_sha256 is None:
            continue
        if attempt.artifact_sha256 in seen:
            count += 1
        seen.add(attempt.artifact_sha256)
    return count


def _sharpness_outlook(
    ctx: RunContext, state: RunState, rejected: list[Attempt]
) -> tuple[bool, float]:
    """For a soft image's model, this brand's record: does its next quality setting buy more
    sharp images per dollar than a new seed on the current one, and how often is it sharp
    (Laplace-smoothed; this round's images included)?"""
    soft = [a for a in rejected if a.scores is not None and "sharpness" in a.scores.failed]
    brand_id = state.get("brand_id")
    if not soft or brand_id is None:
        return False, 0.0
    spec = ctx.model(soft[0].candidate.model)
    with ctx.db.session() as session:
        rates = signal_pass_rates(session, brand_id=brand_id, model=spec.id, signal="sharpness")
    passed = sum(p for p, _ in rates.values())
    seen = sum(n for _, n in rates.values())
    sharp_rate = (passed + 1) / (seen + 2)
    higher = quality_index(spec, state.get("quality_boost", 0) + 1)
    if higher is None:
        return False, sharp_rate
    current = soft[0].candidate.params.get("quality") or spec.default_quality
    width, height = soft[0].candidate.width, soft[0].candidate.height
    pays, _now, _up = quality_pays(
        rates,
        current=current,
        higher=spec.qualities[higher],
        price_current=image_price(spec, width=width, height=height, quality=current),
        price_higher=image_price(spec, width=width, height=height, quality=spec.qualities[higher]),
    )
    return pays, sharp_rate


async def observe(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    run_id = state["run_id"]
    request = state["request"]
    batch = [state["attempts"][c.id] for c in state.get("candidates", [])]
    accepted = list(state.get("accepted", []))
    judged: dict[str, Attempt] = {}
    rejected: list[Attempt] = []
    for attempt in batch:
        if is_accepted(attempt, ctx.policy) and len(accepted) < request.count:
            judged[attempt.id] = attempt.model_copy(update={"outcome": "accepted"})
            accepted.append(attempt.id)
        else:
            outcome = attempt.outcome if attempt.outcome != "pending" else "rejected"
            judged[attempt.id] = attempt.model_copy(update={"outcome": outcome})
            rejected.append(judged[attempt.id])
    iteration = state.get("iteration", 0)
    repairs = judge(state.get("repairs", []), batch, round_=iteration)
    with ctx.db.session() as session:
        for attempt in judged.values():
            crud.upsert_attempt(session, run_id=run_id, attempt=attempt)
        fresh = [r for r in repairs if r["round"] == iteration - 1 and r["fixed"] is not None]
        record(
            session,
            run_id=run_id,
            tenant=ctx.tenant,
            brand_id=state.get("brand_id"),
            repairs=fresh,
        )
    for repair in fresh:
        ctx.emit(run_id, "observe", "repair_outcome", dict(repair))

    ctx.emit(run_id, "observe", "accepted", {"accepted": len(accepted), "wanted": request.count})
    update: dict[str, Any] = {"attempts": judged, "accepted": accepted, "repairs": repairs}
    spent = state.get("spent_usd", 0.0)
    cheapest = _cheapest_image(ctx, state)
    if len(accepted) >= request.count:
        decisions = [
            Decision(
                node="observe",
                action="finalize",
                reason=f"{len(accepted)} of {request.count} accepted",
            )
        ]
    elif state.get("iteration", 0) >= ctx.policy.max_iterations:
        reason = f"stopped after {state['iteration']} rounds with {len(accepted)} of {request.count} accepted"
        decisions = [Decision(node="observe", action="stop_iterations", reason=reason)]
        update.update(reason=reason, stop_cause="iterations")
    elif ctx.budget_usd - spent + 1e-9 < cheapest:
        reason = f"budget spent ({usd(spent)} of {usd(ctx.budget_usd)}) with {len(accepted)} of {request.count} accepted"
        decisions = [Decision(node="observe", action="stop_budget", reason=reason)]
        update.update(reason=reason, stop_cause="budget")
    else:
        quality_pays_off, sharp_rate = _sharpness_outlook(ctx, state, rejected)
        replan = diagnose(
            rejected,
            emphasis=state.get("emphasis", "normal"),
            modifiers=state.get("modifiers", []),
            model_index=state.get("model_index", 0),
            ladder_size=len(ctx.models),
            higher=[
                m.id
                for m in ctx.models[state.get("model_index", 0) + 1 :]
                if m.provider in ctx.providers and not circuit_open(ctx.providers[m.provider])
            ],
            excluded_models=state.get("excluded_models", []),
            duplicates=_duplicates(state, batch),
            quality_boost=state.get("quality_boost", 0),
            can_raise_quality=quality_pays_off,
            sharp_rate=sharp_rate,
            exhausted=failed_twice(repairs),
            accept_composite=ctx.policy.accept_composite,
        )
        decisions = replan.decisions
        update.update(
            emphasis=replan.emphasis,
            modifiers=replan.modifiers,
            model_index=replan.model_index,
            excluded_models=replan.excluded_models,
            quality_boost=replan.quality_boost,
        )
        if replan.stop:
            update["reason"] = replan.stop
            update["stop_cause"] = (
                "refused" if replan.decisions[-1].action == "stop_refused" else "unpromising"
            )
        model = batch[0].candidate.model if batch else ""
        update["repairs"] = repairs + repairs_of(decisions, round_=iteration, model=model)
    for decision in decisions:
        ctx.emit(run_id, "observe", "decision", decision.model_dump(mode="json"))
    update["decisions"] = decisions
    return update


def _cheapest_image(ctx: RunContext, state: RunState) -> float:
    """The least one more image could cost: any model of the ladder at the request's size, at
    any of its qualities (the planner may pick any). Not the flat ``price_per_image_usd``,
    which may be a dearer setting: a run whose calls all failed unbilled would then stop as
    "budget spent" with nothing spent instead of planning again (and ending as providers
    unavailable when they are down)."""
    width, height = state["request"].dimensions()
    return min(
        image_price(m, width=width, height=height, quality=quality)
        for m in ctx.models
        for quality in _qualities(m)
    )


def _qualities(model: ModelSpec) -> list[str | None]:
    """Every quality setting of ``model``; its default (None) when it lists none."""
    return [*model.qualities] or [None]
